"""Lanes: shared threads for work off the loop, never outliving a call."""

from __future__ import annotations

import threading
from collections.abc import Iterator

import anyio
import anyio.lowlevel
import anyio.to_thread
import pytest

from ray_anyio._core import _threads
from ray_anyio._core._threads import Lane, run

pytestmark = pytest.mark.anyio


@pytest.fixture
def lane() -> Iterator[Lane]:
    """A lane of two threads of the test's own, so no other job shares it."""
    yield Lane("test", 2)


async def test_a_job_runs_on_a_lane_thread(lane: Lane) -> None:
    assert await run(lane, threading.get_ident) != threading.get_ident()


async def test_an_error_is_raised(lane: Lane) -> None:
    def fail() -> None:
        raise KeyError("job")

    with pytest.raises(KeyError, match="job"):
        await run(lane, fail)


async def test_cancel_waits_for_a_running_job(lane: Lane) -> None:
    started = threading.Event()
    release = threading.Event()
    finished: list[bool] = []
    returned: list[bool] = []

    def job() -> None:
        started.set()
        release.wait(30)  # bounded so that a bug cannot hang
        finished.append(True)

    with anyio.fail_after(30):
        async with anyio.create_task_group() as tg:
            with anyio.CancelScope() as scope:

                async def cancel_when_started() -> None:
                    await anyio.to_thread.run_sync(started.wait, 30)
                    scope.cancel()
                    for _ in range(10):  # the cancelled call gets its turns
                        await anyio.lowlevel.checkpoint()
                    assert returned == []  # still waiting for the job
                    release.set()

                tg.start_soon(cancel_when_started)
                await run(lane, job)
                returned.append(True)  # pragma: no cover
    assert scope.cancelled_caught
    # The call returned only once the job had finished.
    assert finished == [True]


async def test_a_job_cancelled_before_it_starts_returns_at_once(lane: Lane) -> None:
    release = threading.Event()
    started = threading.Semaphore(0)
    held_done: list[bool] = []
    ran: list[bool] = []

    def hold() -> None:
        started.release()
        release.wait(30)
        held_done.append(True)

    try:
        async with anyio.create_task_group() as tg:
            # Every thread of the lane busy with a held job...
            for _ in range(lane.size):
                tg.start_soon(run, lane, hold)
            for _ in range(lane.size):
                await anyio.to_thread.run_sync(started.acquire, True, 30)
            # ...so this one is queued, and its cancellation (already due when
            # it first waits) is not held up by them.
            with anyio.fail_after(10), anyio.CancelScope() as scope:
                scope.cancel()
                await run(lane, lambda: ran.append(True))
            assert scope.cancelled_caught
            assert held_done == []  # it did not wait for the busy threads
            release.set()
    finally:
        release.set()
    assert ran == []


def test_threads_are_shared_by_event_loops(lane: Lane) -> None:
    # AnyIO's asyncio workers belong to one loop; a lane serves every loop.
    threads = [
        anyio.run(run, lane, threading.get_ident, backend=backend)
        for backend in ["asyncio", "trio"] * 3
    ]
    assert len(set(threads)) <= lane.size
    assert lane.threads() <= lane.size


def test_a_first_use_racing_from_many_threads_starts_at_most_size_threads(
    lane: Lane,
) -> None:
    barrier = threading.Barrier(8)
    release = threading.Event()
    futures = []

    def submit() -> None:
        barrier.wait(30)
        futures.append(lane.submit(lambda: release.wait(30)))

    racers = [threading.Thread(target=submit) for _ in range(8)]
    for racer in racers:
        racer.start()
    for racer in racers:
        racer.join(30)
    try:
        assert lane.threads() == lane.size
    finally:
        release.set()
    assert all(future.result(30) for future in futures)


def test_idle_threads_exit(lane: Lane, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(_threads, "IDLE_EXIT", 0.05)
    assert lane.submit(lambda: 1).result(30) == 1
    exited = threading.Event()

    def watch() -> None:
        # Bounded polling of a condition nothing signals: the thread's exit.
        for _ in range(600):
            if lane.threads() == 0:
                exited.set()
                return
            threading.Event().wait(0.05)

    watch()
    assert exited.is_set()
    assert lane.submit(lambda: 2).result(30) == 2  # a new thread starts
