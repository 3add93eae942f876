"""The backend-specific module: waking a loop from a thread, and its checkpoint."""

from __future__ import annotations

import asyncio
import os
import subprocess
import sys
import textwrap
import threading
import time
from typing import Any

import anyio
import pytest
import ray
from ray.cluster_utils import Cluster

import ray_anyio
from ray_anyio._core import _wakeup
from ray_anyio._core._wakeup import (
    SCHEDULE_INTERVAL,
    Pace,
    checkpoint,
    checkpoint_if_cancelled,
    current_loop,
    current_waker,
)

from ..helpers import remote_actor, start

pytestmark = pytest.mark.anyio


async def test_checkpoint_is_a_cancellation_point() -> None:
    with anyio.CancelScope() as scope:
        scope.cancel()
        await checkpoint()
        pytest.fail("a cancelled checkpoint returned")  # pragma: no cover
    assert scope.cancelled_caught


async def test_checkpoint_lets_other_tasks_run() -> None:
    # Two tasks that checkpoint after every step take turns; without a
    # schedule point the first would take all its steps before the second.
    log: list[str] = []

    async def steps(name: str) -> None:
        for _ in range(10):
            log.append(name)
            await checkpoint()

    async with anyio.create_task_group() as tg:
        tg.start_soon(steps, "a")
        tg.start_soon(steps, "b")
    assert set(log[:10]) == {"a", "b"}
    assert len(log) == 20


async def test_checkpoint_if_cancelled_is_a_cancellation_point() -> None:
    await checkpoint_if_cancelled()  # not cancelled: returns
    with anyio.CancelScope() as scope:
        scope.cancel()
        await checkpoint_if_cancelled()
        pytest.fail("a cancelled checkpoint returned")  # pragma: no cover
    assert scope.cancelled_caught


@pytest.mark.parametrize("scope_test", ["own", "backend's"])
async def test_every_step_of_a_pace_is_a_cancellation_point(
    scope_test: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    if scope_test != "own":
        # Where AnyIO's private names differ, the pace uses the backend's method.
        monkeypatch.setattr(_wakeup, "_asyncio_cancelled", None)
    pace = Pace()
    await pace.step()  # the first is a schedule point: the next is not
    with anyio.CancelScope() as scope:
        scope.cancel()
        await pace.step()
        pytest.fail("a cancelled step returned")  # pragma: no cover
    assert scope.cancelled_caught


async def test_a_step_inside_a_scope_sees_its_parent_cancelled() -> None:
    pace = Pace()
    await pace.step()
    with anyio.CancelScope() as outer:
        outer.cancel()
        with anyio.CancelScope():  # not cancelled itself: the walk goes on
            await pace.step()
            pytest.fail("a step under a cancelled scope returned")  # pragma: no cover
    assert outer.cancelled_caught


async def test_a_shielded_scope_keeps_a_step_from_its_parent_cancellation() -> None:
    pace = Pace()
    await pace.step()
    with anyio.CancelScope() as outer:
        outer.cancel()
        with anyio.CancelScope(shield=True):
            await pace.step()  # returns: the shield stops the walk
            steps = 1
        await pace.step()  # outside the shield, the cancellation is seen
        pytest.fail("a step under a cancelled scope returned")  # pragma: no cover
    assert steps == 1
    assert outer.cancelled_caught


def test_the_scope_test_answers_for_a_loop_without_a_running_task() -> None:
    # A pace whose loop has gone (or a coroutine driven outside a task) finds
    # no task: nothing to test, not a TypeError from the weak-keyed lookup.
    assert _wakeup._asyncio_cancelled is not None  # AnyIO's names as expected
    loop = asyncio.new_event_loop()
    try:
        assert _wakeup._asyncio_cancelled(loop) is False
    finally:
        loop.close()


async def _set(event: anyio.Event) -> None:
    event.set()


async def test_a_pace_lets_other_tasks_run_within_its_interval() -> None:
    # A loop that steps as fast as it can still lets the other task run, once
    # the interval has passed since its last schedule point.
    pace = Pace()
    steps = 0
    async with anyio.create_task_group() as tg:
        start = time.perf_counter()
        await pace.step()  # a schedule point: the next one is an interval away
        later = anyio.Event()
        tg.start_soon(_set, later)
        with anyio.fail_after(30):
            while not later.is_set():
                await pace.step()
                steps += 1
        waited = time.perf_counter() - start
    # Steps within the interval do not yield: the other task waited for it.
    assert steps > 1
    assert waited >= SCHEDULE_INTERVAL


async def test_waker_runs_a_callable_on_the_loop_from_a_thread() -> None:
    wake = current_waker()
    loop = current_loop()
    done = anyio.Event()
    seen: list[object] = []

    def on_loop() -> None:
        seen.append(current_loop())
        done.set()

    threading.Thread(target=wake, args=(on_loop,)).start()
    with anyio.fail_after(10):
        await done.wait()
    assert seen == [loop]


_IMPORT_RACE = textwrap.dedent(
    """
    import asyncio, importlib.abc, importlib.machinery, sys, threading
    import ray
    import ray_anyio

    assert "trio" not in sys.modules
    ray.init(log_to_driver=False)  # joins the cluster in RAY_ADDRESS
    ref = ray.put(1)
    inside_import = threading.Event()
    done = threading.Event()

    class Stall(importlib.abc.MetaPathFinder):
        # Holds the execution of the first trio submodule: sys.modules["trio"]
        # is then a partly initialised module, as while another thread
        # imports trio. (Finders run under the global import lock: the wait
        # is in the loader, which does not hold it.)
        def find_spec(self, name, path=None, target=None):
            if not name.startswith("trio.") or inside_import.is_set():
                return None
            spec = importlib.machinery.PathFinder.find_spec(name, path)
            real = spec.loader.exec_module

            def exec_module(module):
                inside_import.set()
                done.wait(60)
                real(module)

            spec.loader.exec_module = exec_module
            return spec

    sys.meta_path.insert(0, Stall())
    importer = threading.Thread(target=lambda: __import__("trio"))
    importer.start()
    inside_import.wait(60)

    async def main():
        for _ in range(20):
            assert await ray_anyio.get(ref) == 1
            await ray_anyio.wait([ref])

    try:
        asyncio.run(main())
        print("OK", flush=True)
    finally:
        done.set()
        importer.join(60)
    """
)


def test_an_asyncio_loop_runs_while_another_thread_imports_trio(
    ray_cluster: Cluster,
) -> None:
    env = {**os.environ, "RAY_ADDRESS": ray_cluster.address}
    proc = subprocess.run(
        [sys.executable, "-c", _IMPORT_RACE],
        capture_output=True,
        text=True,
        timeout=120,
        env=env,
    )
    assert "OK" in proc.stdout, proc.stdout + proc.stderr[-3000:]


@remote_actor(num_cpus=0, max_concurrency=4)
class _Threaded:
    """A threaded actor: each call runs a fresh event loop in its own thread."""

    def run(self, backend: str, refs: list[Any]) -> list[Any]:
        import ray_anyio

        values: list[Any] = ray_anyio.run_until_complete(
            ray_anyio.get(refs), backend=backend
        )
        return values


async def test_a_threaded_actor_runs_loops_of_both_backends_at_once() -> None:
    actor = start(_Threaded)
    try:
        refs = [ray.put(i) for i in range(3)]
        calls = [actor.run.remote(b, refs) for b in ["trio", "asyncio"] * 4]
        assert await ray_anyio.get(calls) == [[0, 1, 2]] * 8
    finally:
        ray.kill(actor)


def test_trio_runs_starting_at_once_share_one_home_for_loop_state(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    # Two trio runs in two threads ask for their loop state for the first
    # time at once. The RunVar that holds it must be made once: a second one
    # made meanwhile would replace the first, and one of the runs would then
    # find its state gone (two hubs for one loop). The RunVars made here wait
    # for each other, and the second one made waits until the first is used:
    # the order in which the race loses, made certain.
    import trio
    import trio.lowlevel

    real: Any = trio.lowlevel.RunVar
    made: list[Any] = []
    both_made = threading.Barrier(2, timeout=2)
    first_used = threading.Event()
    both_asked = threading.Barrier(2, timeout=30)

    class Racing:
        def __init__(self, name: str) -> None:
            self.real = real(name)
            made.append(self)
            try:
                both_made.wait()
            except threading.BrokenBarrierError:
                pass  # made once: nobody else came
            if len(made) == 2 and self is made[1]:
                first_used.wait(5)

        def get(self) -> Any:
            return self.real.get()

        def set(self, value: Any) -> None:
            self.real.set(value)
            first_used.set()

    monkeypatch.setattr(trio.lowlevel, "RunVar", Racing)
    monkeypatch.setattr(_wakeup, "_trio_locals", None)
    same: list[bool] = []

    async def main() -> None:
        first = _wakeup.loop_local("probe", object)
        await trio.to_thread.run_sync(both_asked.wait)
        same.append(_wakeup.loop_local("probe", object) is first)

    threads = [threading.Thread(target=trio.run, args=(main,)) for _ in range(2)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(60)
    assert same == [True, True]
