"""The watcher: registrations, reports in batches, wake-ups, withdrawals."""

from __future__ import annotations

import threading
from typing import Any

import anyio
import anyio.to_thread
import pytest
import ray

from ray_anyio._core import _ray, _watcher

from ..helpers import sleep_then

pytestmark = pytest.mark.anyio

#: Both ways the watcher tells whether a reported object is on this node.
by_locality_check = pytest.mark.parametrize(
    "object_exists", [True, False], ids=["object_exists", "ray_wait"]
)


async def test_burst_is_reported_in_batches(gate: Any) -> None:
    refs = [gate.value_after(i) for i in range(200)]
    with _watcher.Watcher() as watcher:
        watcher.watch(refs)
        await anyio.to_thread.run_sync(gate.open)
        batches = []
        seen = 0
        while seen < len(refs):
            batch = await watcher.next_ready()
            batches.append(len(batch))
            seen += len(batch)
    assert sum(batches) == 200
    assert len(batches) < 200


@by_locality_check
async def test_a_report_of_a_remote_object_before_waiting_is_not_lost(
    object_exists: bool, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(_ray, "HAS_OBJECT_EXISTS", object_exists)
    # Ray reports the ref (it exists on the other node) before the owner
    # waits; the watcher then finds it is not local yet and hands it to the
    # shared ray.wait thread. The owner must wait for that report, not on an
    # event that nothing will set.
    ref = sleep_then.options(resources={"remote": 1}).remote(0, b"x" * 20_000_000)
    await anyio.to_thread.run_sync(lambda: ray.wait([ref], fetch_local=False))
    with anyio.fail_after(30), _watcher.Watcher(fetch_local=True) as watcher:
        watcher.watch([ref])
        while not watcher._arrived:
            await anyio.sleep(0.001)
        ready: list[Any] = []
        while not ready:
            ready = await watcher.next_ready()
    assert ready == [ref]


async def test_reports_need_no_wake_up_while_the_owner_is_busy(
    gate: Any, engine_path: str
) -> None:
    refs = [gate.value_after(i) for i in range(50)]
    wakes = 0
    with _watcher.Watcher() as watcher:
        real_wake = watcher._wake

        def counting_wake(fn: Any) -> None:
            nonlocal wakes
            wakes += 1
            real_wake(fn)

        watcher._wake = counting_wake
        watcher.watch(refs)
        await anyio.to_thread.run_sync(gate.open)
        # The owner is busy elsewhere (not in next_ready) while all arrive.
        with anyio.fail_after(30):
            while len(watcher._arrived) < len(refs):
                await anyio.sleep(0.01)
        assert wakes == 0
        batch = await watcher.next_ready()
    assert sorted(r.hex() for r in batch) == sorted(r.hex() for r in refs)
    assert wakes == 0


async def test_a_report_racing_close_leaves_nothing_behind(gate: Any) -> None:
    # Ray's thread checks that the ref is still watched, then queues it;
    # close() on the loop thread must not fall between the two.
    ref = gate.value_after(1)
    checking = threading.Event()
    go_on = threading.Event()

    class Pausing(dict):  # type: ignore[type-arg]
        def __contains__(self, key: object) -> bool:
            if threading.current_thread() is reporter:
                checking.set()
                go_on.wait(10)
            return super().__contains__(key)

    with _watcher.Watcher() as watcher:
        watcher.watch([ref])
        watcher._withdraws = Pausing(watcher._withdraws)
        reporter = threading.Thread(target=watcher._arrive, args=(ref, None))
        reporter.start()
        assert checking.wait(10)
        closer = threading.Thread(target=watcher.close)
        closer.start()
        closer.join(0.5)  # a close that waits for the report waits here
        go_on.set()
        reporter.join(10)
        closer.join(10)
        assert watcher._arrived == []
