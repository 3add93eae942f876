"""The seed document's ``async_api.wait`` examples, on any AnyIO backend."""

from __future__ import annotations

import time
from typing import Any

import anyio
import ray

import ray_anyio


@ray.remote
def f(n: float) -> float:
    for _ in range(int(n * 10)):
        time.sleep(0.1)  # short sleeps: a cancelled task stops between them
    return n


async def wait_for_some() -> None:
    # Start 3 tasks of different durations; wait until 2 of them have finished.
    results = [f.remote(i) for i in range(3)]
    ready_ids, remaining_ids = await ray_anyio.wait(results, num_returns=2)
    assert len(ready_ids) == 2
    assert len(remaining_ids) == 1


async def wait_with_timeout() -> None:
    # Wait until 4 of 5 tasks have finished or 2.5 seconds have passed.
    # The timeout is in seconds (the 2018 document used milliseconds: 2500).
    results = [f.remote(i) for i in range(5)]
    ready_ids, remaining_ids = await ray_anyio.wait(results, num_returns=4, timeout=2.5)
    assert len(ready_ids) <= 4
    assert len(ready_ids) + len(remaining_ids) == 5
    await ray_anyio.get(remaining_ids)  # the others are still running: wait


async def awaitables_that_produce_no_ref_in_time() -> None:
    # Coroutines that would only produce their ref after the timeout: their
    # slots come back as None, and the coroutines are cancelled.
    def delayed_gen_tasks(delay: float) -> list[Any]:
        async def _gen(n: int) -> ray.ObjectRef[float]:
            await anyio.sleep(delay)
            return f.remote(n)

        return [_gen(i) for i in range(5)]

    tasks = delayed_gen_tasks(100)
    results, pendings = await ray_anyio.wait(tasks, timeout=0.5, num_returns=len(tasks))
    assert results == []
    assert pendings == [None] * 5


async def main() -> None:
    await wait_for_some()
    await wait_with_timeout()
    await awaitables_that_produce_no_ref_in_time()


if __name__ == "__main__":
    # address="local" starts a new Ray; pass a cluster's address to join it.
    ray.init(address="local")
    anyio.run(main)  # or anyio.run(main, backend="trio")
