"""Trio tutorial, part 1: values, several values, the first to finish."""

from __future__ import annotations

import time

import ray
import trio

import ray_anyio

BACKENDS = ("trio",)


@ray.remote
def square(x: int) -> int:
    return x * x


@ray.remote
def slow_square(x: int, seconds: float) -> int:
    for _ in range(int(seconds * 10)):
        time.sleep(0.1)  # short sleeps: a cancelled task stops between them
    return x * x


async def one_value() -> None:
    value = await ray_anyio.get(square.remote(4))
    assert value == 16


async def many_values() -> None:
    refs = [square.remote(i) for i in range(100)]
    values = await ray_anyio.get(refs)  # in order, fetched in batches
    assert values == [i * i for i in range(100)]


async def a_structure() -> None:
    config = {"small": square.remote(2), "pair": (square.remote(3), 10)}
    assert await ray_anyio.get(config) == {"small": 4, "pair": (9, 10)}


async def first_to_finish() -> None:
    fast = square.remote(2)
    slow = slow_square.remote(3, 60)
    ready, remaining = await ray_anyio.wait([slow, fast], num_returns=1, timeout=30)
    assert ready == [fast]
    assert remaining == [slow]
    ray.cancel(slow)  # wait() never cancels tasks; see open_scope() for that


async def put_a_large_value() -> None:
    ref = await ray_anyio.put(bytes(10_000_000))  # stored off the event loop
    assert len(await ray_anyio.get(ref)) == 10_000_000


async def main() -> None:
    await one_value()
    await many_values()
    await a_structure()
    await first_to_finish()
    await put_a_large_value()


if __name__ == "__main__":
    # address="local" starts a new Ray; pass a cluster's address to join it.
    ray.init(address="local")
    trio.run(main)
