"""Trio tutorial, part 2: timeouts, cancellation and tasks that belong to a block."""

from __future__ import annotations

import time

import ray
import trio
from ray.exceptions import GetTimeoutError, TaskCancelledError

import ray_anyio

BACKENDS = ("trio",)


@ray.remote
def square(x: int) -> int:
    return x * x


@ray.remote
def slow_square(x: int, seconds: float) -> int:
    for _ in range(int(seconds * 10)):
        time.sleep(0.1)
    return x * x


async def timeout_argument() -> None:
    ref = slow_square.remote(5, 60)
    try:
        await ray_anyio.get(ref, timeout=0.2)
    except GetTimeoutError:  # also a TimeoutError
        pass
    else:
        raise AssertionError("expected a timeout")
    ray.cancel(ref)  # get() stopped waiting; the task itself kept running


async def trio_cancel_scope() -> None:
    ref = slow_square.remote(5, 60)
    with trio.move_on_after(0.2) as cancel_scope:
        await ray_anyio.get(ref)
    assert cancel_scope.cancelled_caught
    ray.cancel(ref)


async def a_nursery_of_gets() -> None:
    results: dict[int, int] = {}

    async def fetch(i: int) -> None:
        results[i] = await ray_anyio.get(square.remote(i))

    async with trio.open_nursery() as nursery:
        for i in range(5):
            nursery.start_soon(fetch, i)
    assert results == {i: i * i for i in range(5)}


async def tasks_owned_by_a_scope() -> None:
    with trio.move_on_after(0.5):
        async with ray_anyio.open_scope() as scope:
            ref = scope.remote(slow_square, 7, 60)
            await ray_anyio.get(ref)
    # The block was cancelled, so the scope cancelled its Ray task as well.
    try:
        await ray_anyio.get(ref)
    except TaskCancelledError:
        pass
    else:
        raise AssertionError("expected the task to be cancelled")


async def main() -> None:
    await timeout_argument()
    await trio_cancel_scope()
    await a_nursery_of_gets()
    await tasks_owned_by_a_scope()


if __name__ == "__main__":
    # address="local" starts a new Ray; pass a cluster's address to join it.
    ray.init(address="local")
    trio.run(main)
