"""Every example of the seed document (``async_api.rst``), translated to this API.

The 2018 document used milliseconds and an asyncio-only event loop; here
timeouts are seconds and each example runs on asyncio and on trio. Durations
are scaled down, and "still running" tasks are gated rather than slept.
"""

from __future__ import annotations

from typing import Any

import anyio
import pytest
import ray

import ray_anyio

from .helpers import sleep_then

pytestmark = pytest.mark.anyio


async def test_single_object_id(gate: Any) -> None:
    # "Get one object ID. The async get will return immediately."
    ref = gate.value_after({"key1": ["value"]})
    coroutine_object = ray_anyio.get(ref)
    gate.open()
    assert await coroutine_object == {"key1": ["value"]}


async def test_single_coroutine_that_contains_an_object_id() -> None:
    async def f() -> ray.ObjectRef[Any]:
        return ray.put({"key1": ["value"]})

    assert await ray_anyio.get(f()) == {"key1": ["value"]}


async def test_chain_of_coroutines_ending_in_object_ids() -> None:
    obj_id: Any = {"key1": ["value"]}
    for _ in range(7):
        obj_id = ray.put([obj_id])

    async def recurrent_get(obj_id: Any) -> Any:
        if isinstance(obj_id, dict):
            return obj_id
        obj_id = await ray_anyio.get(obj_id)
        if isinstance(obj_id, list):
            return await recurrent_get(obj_id[0])
        return obj_id

    assert await recurrent_get(obj_id) == {"key1": ["value"]}


async def test_list_composed_of_the_above(gate: Any) -> None:
    async def coro() -> ray.ObjectRef[Any]:
        return ray.put(2)

    ref = gate.value_after(1)
    gate.open()
    assert await ray_anyio.get([ref, coro(), ray.put(3)]) == [1, 2, 3]


async def test_wait_for_two_of_three(gate: Any) -> None:
    # "Start 3 tasks with different durations. Block until 2 of them finished."
    results = [sleep_then.remote(0, 0), sleep_then.remote(0.05, 1), gate.value_after(2)]
    ready_ids, remaining_ids = await ray_anyio.wait(results, num_returns=2)
    assert ready_ids == results[:2]
    assert remaining_ids == results[2:]


async def test_wait_four_of_five_or_timeout(gate: Any) -> None:
    # "Block until 4 of them have finished or 2.5 seconds pass" (2500 ms in 2018).
    results = [sleep_then.remote(0, i) for i in range(3)]
    results += [gate.value_after(3), gate.value_after(4)]
    # The quick three are done before the timeout, even on a loaded machine.
    await anyio.to_thread.run_sync(lambda: ray.wait(results[:3], num_returns=3))
    ready_ids, remaining_ids = await ray_anyio.wait(results, num_returns=4, timeout=0.5)
    assert ready_ids == results[:3]
    assert remaining_ids == results[3:]


async def test_wait_on_coroutines_that_do_not_return_in_time() -> None:
    # "a passing in future/coroutine fails to return an ObjectID before timeout.
    # In this case, we will return None"
    def delayed_gen_tasks(delay: float, time_scale: float = 0.1) -> list[Any]:
        async def _gen(n: int) -> ray.ObjectRef[Any]:
            await anyio.sleep(delay)
            return sleep_then.remote(n * time_scale, n)

        return [_gen(i) for i in range(5)]

    tasks = delayed_gen_tasks(100, 5)
    results, pendings = await ray_anyio.wait(tasks, timeout=0.2, num_returns=len(tasks))
    assert results == []
    assert pendings == [None] * 5


def test_run_until_complete_on_both_backends(gate: Any) -> None:
    for backend in ("asyncio", "trio"):
        ref = sleep_then.remote(0, {"key1": ["value"]})
        result = ray_anyio.run_until_complete(ray_anyio.get(ref), backend=backend)
        assert result == {"key1": ["value"]}
    results = [sleep_then.remote(0, i) for i in range(3)]
    ready, remaining = ray_anyio.run_until_complete(
        ray_anyio.wait(results, num_returns=2), backend="trio"
    )
    assert len(ready) == 2
    assert len(remaining) == 1
