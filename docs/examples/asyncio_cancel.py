"""asyncio tutorial, part 2: timeouts, cancelled tasks, tasks owned by a block."""

from __future__ import annotations

import asyncio
import time

import ray
from ray.exceptions import GetTimeoutError, TaskCancelledError

import ray_anyio

BACKENDS = ("asyncio",)


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


async def wait_for_and_task_cancel() -> None:
    ref = slow_square.remote(5, 60)
    try:
        await asyncio.wait_for(ray_anyio.get(ref), timeout=0.2)
    except asyncio.TimeoutError:
        pass
    task = asyncio.create_task(ray_anyio.get(ref))
    await asyncio.sleep(0.1)
    task.cancel()  # a plain asyncio cancellation works too
    try:
        await task
    except asyncio.CancelledError:
        pass
    ray.cancel(ref)


async def gather_of_gets() -> None:
    values = await asyncio.gather(*(ray_anyio.get(square.remote(i)) for i in range(5)))
    assert values == [i * i for i in range(5)]


async def tasks_owned_by_a_scope() -> None:
    async def work() -> ray.ObjectRef[int]:
        async with ray_anyio.open_scope() as scope:
            ref = scope.remote(slow_square, 7, 60)
            started.set_result(ref)
            await ray_anyio.get(ref)
        return ref

    started: asyncio.Future[ray.ObjectRef[int]] = (
        asyncio.get_running_loop().create_future()
    )
    task = asyncio.create_task(work())
    ref = await started
    task.cancel()  # cancelling the asyncio task cancels the Ray task too
    try:
        await task
    except asyncio.CancelledError:
        pass
    try:
        await ray_anyio.get(ref)
    except TaskCancelledError:
        pass
    else:
        raise AssertionError("expected the task to be cancelled")


async def main() -> None:
    await timeout_argument()
    await wait_for_and_task_cancel()
    await gather_of_gets()
    await tasks_owned_by_a_scope()


if __name__ == "__main__":
    # address="local" starts a new Ray; pass a cluster's address to join it.
    ray.init(address="local")
    asyncio.run(main())
