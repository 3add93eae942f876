"""The backend-specific module: waking a loop from a thread, and its checkpoint."""

from __future__ import annotations

import threading

import anyio
import pytest

from ray_anyio._core._wakeup import checkpoint, current_loop, current_waker

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
