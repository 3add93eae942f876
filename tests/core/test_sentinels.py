"""Large ``get`` calls watch their refs in groups, through one sentinel each."""

from __future__ import annotations

from typing import Any

import anyio
import anyio.abc
import pytest
import ray

import ray_anyio
from ray_anyio._core._sentinels import GROUP_FROM, GROUP_SIZE, Groups
from ray_anyio.testing import live_registrations

from ..helpers import square

pytestmark = pytest.mark.anyio


def _finished(n: int) -> list[ray.ObjectRef[Any]]:
    refs = [square.remote(i) for i in range(n)]
    ray.wait(refs, num_returns=n, fetch_local=True)
    return refs


def test_split_registers_the_last_ref_of_each_group(gate: Any) -> None:
    refs = [gate.value_after(i) for i in range(GROUP_SIZE * 2 + 3)]
    groups = Groups(fetch_local=True)
    sentinels = groups.split(refs)
    assert sentinels == [refs[GROUP_SIZE - 1], refs[2 * GROUP_SIZE - 1], refs[-1]]
    assert len(groups) == len(refs) - 3


def test_a_productive_group_gets_a_new_sentinel(gate: Any) -> None:
    # Half the members are done when the sentinel is reported.
    done = _finished(GROUP_SIZE // 2)
    waiting = [gate.value_after(i) for i in range(GROUP_SIZE // 2)]
    groups = Groups(fetch_local=True)
    [sentinel] = groups.split(done + waiting)
    ready, to_register = groups.expand([sentinel])
    assert set(ready) == set(done) and len(ready) == len(done)
    assert to_register == [waiting[-2]]  # the last member still pending
    assert len(groups) == len(waiting) - 2


def test_an_unproductive_group_is_watched_ref_by_ref(gate: Any) -> None:
    # The sentinel finishes first: its neighbours do not finish with it.
    waiting = [gate.value_after(i) for i in range(GROUP_SIZE - 1)]
    groups = Groups(fetch_local=True)
    [sentinel] = groups.split([*waiting, *_finished(1)])
    ready, to_register = groups.expand([sentinel])
    assert ready == []
    assert to_register == waiting
    assert len(groups) == 0
    assert not groups


async def test_sweep_takes_ready_members_without_their_sentinel(gate: Any) -> None:
    done = _finished(GROUP_SIZE // 2)
    waiting = [gate.value_after(i) for i in range(GROUP_SIZE // 2)]
    groups = Groups(fetch_local=True)
    groups.split(waiting[: GROUP_SIZE // 4] + done + waiting[GROUP_SIZE // 4 :])
    swept = await groups.sweep()
    assert set(swept) == set(done) and len(swept) == len(done)
    assert len(groups) == len(waiting) - 1
    assert await groups.sweep() == []


class _Getting:
    """A ``get`` running in a task group, with its result or its failure."""

    def __init__(self, refs: list[ray.ObjectRef[Any]]) -> None:
        self.refs = refs
        self.result: list[Any] = []
        self.errors: list[ValueError] = []

    async def start(self, tg: anyio.abc.TaskGroup) -> None:
        """Start the ``get``; return once it is registered with Ray."""
        tg.start_soon(self._run)
        while live_registrations() == 0:
            await anyio.sleep(0.01)

    async def _run(self) -> None:
        try:
            self.result.extend(await ray_anyio.get(self.refs))
        except ValueError as exc:
            self.errors.append(exc)


async def test_a_large_get_registers_one_sentinel_per_group(gate: Any) -> None:
    n = GROUP_FROM * 2
    getting = _Getting([gate.value_after(i) for i in range(n)])
    with anyio.fail_after(60):
        async with anyio.create_task_group() as tg:
            await getting.start(tg)
            assert live_registrations() == n // GROUP_SIZE
            await anyio.to_thread.run_sync(gate.open)
    assert getting.result == list(range(n))


async def test_members_done_in_reverse_order_are_all_fetched(
    gate: Any, other_gate: Any
) -> None:
    # Every sentinel finishes before its members: each group is broken up.
    n = GROUP_FROM
    getting = _Getting(
        [
            other_gate.value_after(i)
            if i % GROUP_SIZE == GROUP_SIZE - 1
            else gate.value_after(i)
            for i in range(n)
        ]
    )
    with anyio.fail_after(60):
        async with anyio.create_task_group() as tg:
            await getting.start(tg)
            await anyio.to_thread.run_sync(other_gate.open)
            while live_registrations() < n - n // GROUP_SIZE:
                await anyio.sleep(0.01)
            await anyio.to_thread.run_sync(gate.open)
    assert getting.result == list(range(n))


async def test_a_failed_member_raises_while_its_sentinel_still_runs(
    gate: Any, other_gate: Any
) -> None:
    # Half of the members fail; every sentinel stays blocked. The sweep of
    # all members sees the failure: ``get`` raises it, as ray.get would,
    # instead of waiting for the sentinels.
    n = GROUP_FROM
    getting = _Getting(
        [
            other_gate.fail_after(f"member {i}") if i % 2 == 0 else gate.value_after(i)
            for i in range(n)
        ]
    )
    with anyio.fail_after(60):
        async with anyio.create_task_group() as tg:
            await getting.start(tg)
            await anyio.to_thread.run_sync(other_gate.open)
    assert len(getting.errors) == 1
    assert "member" in str(getting.errors[0])
