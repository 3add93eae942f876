"""The state ``wait`` leaves on ``remaining``: linear drain loops, safely forgotten."""

from __future__ import annotations

import pickle
from typing import Any

import anyio
import pytest
import ray

import ray_anyio
from ray_anyio._core._wait_state import Remaining, WaitState
from ray_anyio.testing import live_registrations

pytestmark = pytest.mark.anyio


async def test_drain_loop_yields_every_slot_in_order(gate: Any) -> None:
    done = [ray.put(i) for i in range(5)]
    later = [gate.value_after(i) for i in range(5, 8)]
    refs = done[:2] + later + done[2:]
    drained: list[ray.ObjectRef[Any]] = []
    remaining: list[Any] = refs
    while len(drained) < len(done):
        ready, remaining = await ray_anyio.wait(remaining, num_returns=1)
        drained.extend(ready)
    assert drained == done
    assert remaining == later
    assert live_registrations() > 0  # the remembered state is live
    await anyio.to_thread.run_sync(gate.open)
    while remaining:
        ready, remaining = await ray_anyio.wait(remaining, num_returns=1)
        drained.extend(ready)
    assert drained[:5] == done
    # Gated refs finish in any order; each comes out exactly once.
    assert sorted(r.hex() for r in drained[5:]) == sorted(r.hex() for r in later)


async def test_remaining_is_a_list_that_forgets_on_mutation(gate: Any) -> None:
    pending = gate.value_after(1)
    _, remaining = await ray_anyio.wait([ray.put(0), pending], timeout=0)
    assert isinstance(remaining, list)
    assert isinstance(remaining, Remaining)
    assert remaining._state is not None
    extra = ray.put(2)
    remaining.append(extra)
    assert remaining._state is None
    ready2, remaining2 = await ray_anyio.wait(remaining, timeout=5)
    assert ready2 == [extra]
    assert remaining2 == [pending]


async def test_dropping_remaining_withdraws_registrations(gate: Any) -> None:
    _, remaining = await ray_anyio.wait(
        [gate.value_after(i) for i in range(3)], timeout=0
    )
    assert live_registrations() == 3
    del remaining
    assert live_registrations() == 0


def test_state_is_not_reused_on_another_loop(gate: Any) -> None:
    pending = gate.value_after(1)

    async def first() -> list[Any]:
        done: tuple[list[Any], list[Any]] = await ray_anyio.wait(
            [ray.put(0), pending], timeout=0
        )
        return done[1]

    remaining = anyio.run(first, backend="asyncio")
    gate.open()

    async def second() -> tuple[list[Any], list[Any]]:
        done: tuple[list[Any], list[Any]] = await ray_anyio.wait(remaining, timeout=10)
        return done

    ready, rest = anyio.run(second, backend="trio")
    assert (ready, rest) == ([pending], [])


async def test_pickles_as_a_plain_list() -> None:
    ref = ray.put(1)
    _, remaining = await ray_anyio.wait([ref, ref], num_returns=1)
    copy = pickle.loads(pickle.dumps(remaining))
    assert type(copy) is list
    assert copy == [ref]


async def test_mixed_items_do_not_keep_state(gate: Any) -> None:
    async def plain() -> int:
        return 7

    _, remaining = await ray_anyio.wait([plain(), gate.value_after(1)], timeout=5)
    assert remaining == [remaining[0]]
    assert isinstance(remaining, Remaining) and remaining._state is None


async def test_mutating_remaining_while_a_wait_uses_it(gate: Any) -> None:
    pending = gate.value_after(1)
    _, remaining = await ray_anyio.wait([ray.put(0), pending], timeout=0)
    assert isinstance(remaining, Remaining) and remaining._state is not None
    results: list[tuple[list[Any], list[Any]]] = []

    async def waiter() -> None:
        results.append(await ray_anyio.wait(remaining, timeout=10))

    async with anyio.create_task_group() as tg:
        tg.start_soon(waiter)
        await anyio.wait_all_tasks_blocked()
        remaining.append(ray.put(2))  # the waiting call keeps its snapshot
        assert remaining._state is None
        await anyio.to_thread.run_sync(gate.open)
    assert results == [([pending], [])]


async def test_two_tasks_waiting_on_one_remaining_list(gate: Any) -> None:
    pending = gate.value_after(1)
    _, remaining = await ray_anyio.wait([ray.put(0), pending], timeout=0)
    results: list[tuple[list[Any], list[Any]]] = []

    async def waiter() -> None:
        results.append(await ray_anyio.wait(remaining, timeout=10))

    async with anyio.create_task_group() as tg:
        tg.start_soon(waiter)
        tg.start_soon(waiter)
        await anyio.wait_all_tasks_blocked()
        await anyio.to_thread.run_sync(gate.open)
    assert results == [([pending], []), ([pending], [])]


class _CountingList(list):  # type: ignore[type-arg]
    """A list that counts deletions of single items."""

    deletions = 0

    def __delitem__(self, key: Any) -> None:
        type(self).deletions += 1
        super().__delitem__(key)


async def test_a_batch_of_slots_is_taken_in_one_pass() -> None:
    refs = [ray.put(i) for i in range(300)]
    state = WaitState(list(refs), fetch_local=True)
    try:
        state.start(range(len(refs)))
        state.entries = _CountingList(state.entries)
        _CountingList.deletions = 0
        ready, remaining = state.take(100)
    finally:
        state.close()
    # Deleting slot by slot moves the tail once per slot: quadratic in a drain.
    assert _CountingList.deletions == 1  # one run of neighbours: one deletion
    assert ready == refs[:100]
    assert remaining == refs[100:]


async def test_batches_drain_every_slot_in_input_order() -> None:
    refs = [ray.put(i) for i in range(1000)]
    drained: list[Any] = []
    remaining: list[Any] = refs
    while remaining:
        ready, remaining = await ray_anyio.wait(
            remaining, num_returns=min(70, len(remaining))
        )
        assert len(ready) == min(70, len(refs) - len(drained))
        drained.extend(ready)
    assert drained == refs
