"""asyncio tutorial, part 1: values, several values, the first to finish."""

from __future__ import annotations

import asyncio
import time

import ray

import ray_anyio

BACKENDS = ("asyncio",)


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


async def refs_and_coroutines() -> None:
    async def make_ref() -> ray.ObjectRef[int]:
        await asyncio.sleep(0.01)
        return square.remote(5)  # a coroutine that ends in a ref: a chain

    values = await ray_anyio.get({"direct": square.remote(3), "chained": make_ref()})
    assert values == {"direct": 9, "chained": 25}


async def first_to_finish() -> None:
    fast = square.remote(2)
    slow = slow_square.remote(3, 60)
    ready, remaining = await ray_anyio.wait([slow, fast], num_returns=1, timeout=30)
    assert ready == [fast]
    assert remaining == [slow]
    ray.cancel(slow)  # wait() never cancels tasks; see open_scope() for that


async def main() -> None:
    await one_value()
    await many_values()
    await refs_and_coroutines()
    await first_to_finish()


if __name__ == "__main__":
    # address="local" starts a new Ray; pass a cluster's address to join it.
    ray.init(address="local")
    asyncio.run(main())
