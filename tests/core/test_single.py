"""One ref's value, and the hub: the single-ref gets of one loop share a watcher."""

from __future__ import annotations

import sys
from typing import Any

import anyio
import pytest

import ray_anyio
from ray_anyio._core import _fetch, _ray, _single
from ray_anyio.testing import live_registrations

from ..helpers import fail

pytestmark = pytest.mark.anyio


@pytest.fixture
def fetches(monkeypatch: pytest.MonkeyPatch) -> list[int]:
    """The size of every batched fetch of reported refs."""
    sizes: list[int] = []
    real = _fetch.get_values

    async def counting(refs: Any) -> list[Any]:
        sizes.append(len(refs))
        return await real(refs)

    monkeypatch.setattr(_fetch, "get_values", counting)
    return sizes


async def test_many_awaits_share_registrations_and_fetches(
    gate: Any, fetches: list[int]
) -> None:
    refs = [gate.value_after(i) for i in range(100)]
    values: dict[int, Any] = {}

    async def one(i: int) -> None:
        values[i] = await ray_anyio.get(refs[i])

    async with anyio.create_task_group() as tg:
        for i in range(len(refs)):
            tg.start_soon(one, i)
        with anyio.fail_after(30):
            while live_registrations() < len(refs):
                await anyio.sleep(0.01)
        assert live_registrations() == len(refs)  # one per ref, none per task
        await anyio.to_thread.run_sync(gate.open)
    assert values == {i: i for i in range(100)}
    assert sum(fetches) == 100
    assert len(fetches) < 100  # bursts fetched together, not one ref at a time


async def _until(condition: Any) -> None:
    with anyio.fail_after(30):  # bounded: the loop's own state, no Ray
        while not condition():
            await anyio.sleep(0)


async def test_a_cancelled_leader_hands_the_lead_on(gate: Any) -> None:
    refs = [gate.value_after(i) for i in range(3)]
    got: list[Any] = []
    hub = _single.current_hub()
    leading = anyio.CancelScope()

    async def lead() -> None:
        with leading:
            got.append(await ray_anyio.get(refs[0]))

    async def follow(ref: Any) -> None:
        got.append(await ray_anyio.get(ref))

    async with anyio.create_task_group() as tg:
        tg.start_soon(lead)
        await _until(lambda: hub.leader is not None)
        first_leader = hub.leader
        tg.start_soon(follow, refs[1])
        tg.start_soon(follow, refs[2])
        await _until(lambda: len(hub.waits) == 3)
        leading.cancel()
        await _until(lambda: hub.leader is not first_leader)
        await anyio.to_thread.run_sync(gate.open)
    assert sorted(got) == [1, 2]  # the cancelled leader's value was not taken


async def test_two_tasks_waiting_for_one_ref(gate: Any) -> None:
    ref = gate.value_after("shared")
    got: list[Any] = []

    async def get() -> None:
        got.append(await ray_anyio.get(ref))

    async with anyio.create_task_group() as tg:
        tg.start_soon(get)
        tg.start_soon(get)
        with anyio.fail_after(30):
            while live_registrations() < 1:
                await anyio.sleep(0.01)
        assert live_registrations() == 1
        await anyio.to_thread.run_sync(gate.open)
    assert got == ["shared", "shared"]


async def test_a_cancelled_wait_withdraws_its_ref(gate: Any) -> None:
    ref = gate.value_after(1)
    with anyio.move_on_after(0.2):
        await ray_anyio.get(ref)
    assert live_registrations() == 0


async def test_a_failed_burst_never_makes_the_leader_wait_for_itself(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    # A failed batch is fetched again ref by ref. A reported ref that is not
    # on this node any more (a copy evicted under memory pressure; here
    # fetch_one is told so) must not be handed back to the hub, whose leader
    # is the very task fetching it.
    real = _ray.objects

    class Evicted:
        """What fetch_one hears of a ref whose copy here was evicted."""

        def in_memory(self, ref: Any) -> bool:
            return False

        def sizes(self, refs: Any) -> list[float]:
            return [0 for _ in refs]  # not on this node

    def evicted_for_fetch_one() -> Any:
        if sys._getframe(1).f_code.co_name == "fetch_one":
            return Evicted()
        return real()

    monkeypatch.setattr(_ray, "objects", evicted_for_fetch_one)
    ref = fail.remote("burst")
    with anyio.fail_after(30), pytest.raises(ValueError, match="burst"):
        await ray_anyio.get(ref)
