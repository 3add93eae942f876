"""The fetch: large batches go to the fetch lane in chunks, stoppable between them."""

from __future__ import annotations

import threading
from typing import Any

import anyio
import anyio.to_thread
import pytest
import ray

from ray_anyio._core import _threads
from ray_anyio._core._fetch import THREAD_CHUNK, _in_chunks, fetch, fetch_outcomes

pytestmark = pytest.mark.anyio

#: Enough items for three chunks on the lane.
N = 3 * THREAD_CHUNK


async def test_every_chunk_in_order_on_the_fetch_lane() -> None:
    threads: set[int] = set()

    def total(chunk: list[int]) -> int:
        threads.add(threading.get_ident())
        return sum(chunk)

    items = list(range(N))
    expected = [sum(items[i : i + THREAD_CHUNK]) for i in range(0, N, THREAD_CHUNK)]
    assert await _in_chunks(items, total) == expected  # type: ignore[arg-type]
    assert len(threads) <= _threads.FETCH.size
    assert threading.get_ident() not in threads


async def test_a_small_batch_is_fetched_on_the_loop_thread() -> None:
    assert await _in_chunks([1, 2], lambda _: threading.get_ident()) == [  # type: ignore[list-item]
        threading.get_ident()
    ]


async def test_an_error_is_raised_and_stops_the_chunks() -> None:
    seen: list[list[int]] = []

    def fail_on_second(chunk: list[int]) -> int:
        seen.append(chunk)
        if len(seen) == 2:
            raise KeyError("second")
        return 0

    with pytest.raises(KeyError, match="second"):
        await _in_chunks(list(range(N)), fail_on_second)  # type: ignore[arg-type]
    assert len(seen) == 2


async def test_cancel_waits_for_the_chunk_in_progress_and_runs_no_other() -> None:
    started = threading.Event()
    release = threading.Event()
    finished: list[int] = []

    def slow(chunk: list[int]) -> int:
        started.set()
        # Held until the test has cancelled; bounded so a bug cannot hang.
        release.wait(30)
        finished.append(chunk[0])
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
                await _in_chunks(list(range(N)), slow)  # type: ignore[arg-type]
                pytest.fail("a cancelled call returned")  # pragma: no cover
    assert scope.cancelled_caught
    # The chunk in progress was finished before the call returned; no other ran.
    assert finished == [0]


async def test_fetch_matches_ray_get_with_repeats() -> None:
    refs = [ray.put(i) for i in range(5)]
    items = refs + refs[::-1]
    assert await fetch(items) == ray.get(items)


async def test_outcomes_keep_each_failure_at_its_place() -> None:
    @ray.remote
    def fail() -> None:
        raise ValueError("boom")

    refs: list[Any] = [ray.put(1), fail.remote(), ray.put(3)]
    outcomes = await fetch_outcomes(refs)
    assert [o.value for o in outcomes] == [1, None, 3]
    assert outcomes[0].error is None and outcomes[2].error is None
    assert isinstance(outcomes[1].error, ValueError)
