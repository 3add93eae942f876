"""One fetch-thread job over the chunks of a long list, stoppable between chunks."""

from __future__ import annotations

import threading

import anyio
import pytest

from ray_anyio import _offload
from ray_anyio._offload import run_chunks_in_thread

pytestmark = pytest.mark.anyio


async def test_every_chunk_in_order_in_one_fetch_thread() -> None:
    threads: set[int] = set()

    def total(chunk: list[int]) -> int:
        threads.add(threading.get_ident())
        return sum(chunk)

    items = list(range(10))
    assert await run_chunks_in_thread(items, 3, total) == [3, 12, 21, 9]
    assert len(threads) == 1
    assert threading.get_ident() not in threads


async def test_an_error_is_raised_and_stops_the_chunks() -> None:
    seen: list[list[int]] = []

    def fail_on_second(chunk: list[int]) -> int:
        seen.append(chunk)
        if len(seen) == 2:
            raise KeyError("second")
        return 0

    with pytest.raises(KeyError, match="second"):
        await run_chunks_in_thread(list(range(10)), 2, fail_on_second)
    assert seen == [[0, 1], [2, 3]]


async def test_cancel_waits_for_the_chunk_in_progress_and_runs_no_other() -> None:
    started = threading.Event()
    release = threading.Event()
    finished: list[list[int]] = []

    def slow(chunk: list[int]) -> int:
        started.set()
        # Held until the test has cancelled; bounded so a bug cannot hang.
        release.wait(30)
        finished.append(chunk)
        return 0

    async def cancel_then_release(scope: anyio.CancelScope) -> None:
        await anyio.to_thread.run_sync(started.wait, 30)
        scope.cancel()
        await anyio.sleep(0)
        assert finished == []  # the call is still waiting for the chunk
        release.set()

    with anyio.fail_after(30):
        async with anyio.create_task_group() as tg:
            with anyio.CancelScope() as scope:
                tg.start_soon(cancel_then_release, scope)
                await run_chunks_in_thread(list(range(10)), 2, slow)
                pytest.fail("a cancelled call returned")  # pragma: no cover
    assert scope.cancelled_caught
    # The chunk in progress was finished before the call returned; no other ran.
    assert finished == [[0, 1]]


async def test_a_job_cancelled_before_it_starts_returns_at_once() -> None:
    release = threading.Event()
    started = threading.Semaphore(0)
    ran: list[list[int]] = []

    held_done: list[bool] = []

    def hold(chunk: list[int]) -> int:
        started.release()
        release.wait(30)
        held_done.append(True)
        return 0

    def record(chunk: list[int]) -> int:
        ran.append(chunk)
        return 0

    try:
        async with anyio.create_task_group() as tg:
            # Every fetch thread busy with a held job...
            for _ in range(_offload.MAX_THREADS):
                tg.start_soon(run_chunks_in_thread, [0], 1, hold)
            for _ in range(_offload.MAX_THREADS):
                await anyio.to_thread.run_sync(started.acquire, True, 30)
            # ...so this one is queued, and its cancellation (already due when
            # it first waits) is not held up by them.
            with anyio.fail_after(10), anyio.CancelScope() as scope:
                scope.cancel()
                await run_chunks_in_thread([1, 2], 1, record)
            assert scope.cancelled_caught
            assert held_done == []  # it did not wait for the busy threads
            release.set()
    finally:
        release.set()
    assert ran == []


def test_the_fetch_threads_are_shared_by_event_loops() -> None:
    # AnyIO's asyncio workers belong to one loop; these serve every loop.
    threads: list[int] = []

    def note(chunk: list[int]) -> int:
        threads.append(threading.get_ident())
        return 0

    for backend in ["asyncio", "trio"] * 3:
        anyio.run(run_chunks_in_thread, [0], 1, note, backend=backend)
    assert len(threads) == 6
    assert len(set(threads)) <= _offload.MAX_THREADS
