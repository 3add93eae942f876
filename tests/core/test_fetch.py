"""The fetch: large batches, in refs or bytes, go to the fetch lane in pieces."""

from __future__ import annotations

import threading
from collections.abc import Awaitable, Callable, Iterator
from typing import Any

import anyio
import anyio.to_thread
import pytest
import ray

import ray_anyio
from ray_anyio._core import _threads
from ray_anyio._core._fetch import (
    PIECE_BYTES,
    THREAD_CHUNK,
    _in_chunks,
    fetch,
    fetch_outcomes,
)

from ..helpers import UNPICKLED_ON, Gates, Marked, replay, sleep_then, start

pytestmark = pytest.mark.anyio

#: Enough items for three chunks on the lane.
N = 3 * THREAD_CHUNK


@pytest.fixture(scope="module")
def refs() -> list[Any]:
    """Small values in the object store, enough for three chunks."""
    return [ray.put(i) for i in range(N)]


async def test_every_chunk_in_order_on_the_fetch_lane(refs: list[Any]) -> None:
    threads: set[int] = set()

    def total(chunk: list[Any]) -> int:
        threads.add(threading.get_ident())
        return sum(ray.get(chunk))

    expected = [
        sum(range(i, min(i + THREAD_CHUNK, N))) for i in range(0, N, THREAD_CHUNK)
    ]
    assert await _in_chunks(refs, total) == expected
    assert len(threads) <= _threads.FETCH.size
    assert threading.get_ident() not in threads


async def test_a_small_batch_is_fetched_on_the_loop_thread(refs: list[Any]) -> None:
    assert await _in_chunks(refs[:2], lambda _: threading.get_ident()) == [
        threading.get_ident()
    ]


async def test_large_values_make_pieces_of_at_most_piece_bytes() -> None:
    # About 0.41 PIECE_BYTES each: two make a piece, a third would not fit.
    values = [ray.put(Marked(PIECE_BYTES // 12)) for _ in range(6)]
    assert await _in_chunks(values, len) == [2, 2, 2]
    huge = ray.put(Marked(PIECE_BYTES // 4))  # over PIECE_BYTES: a piece alone
    assert await _in_chunks([huge, *values[:2], huge], len) == [1, 2, 1]


async def test_an_error_is_raised_and_stops_the_chunks(refs: list[Any]) -> None:
    seen: list[list[Any]] = []

    def fail_on_second(chunk: list[Any]) -> int:
        seen.append(chunk)
        if len(seen) == 2:
            raise KeyError("second")
        return 0

    with pytest.raises(KeyError, match="second"):
        await _in_chunks(refs, fail_on_second)
    assert len(seen) == 2


async def test_cancel_waits_for_the_chunk_in_progress_and_runs_no_other(
    refs: list[Any],
) -> None:
    started = threading.Event()
    release = threading.Event()
    finished: list[Any] = []

    def slow(chunk: list[Any]) -> int:
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
                await _in_chunks(refs, slow)
                pytest.fail("a cancelled call returned")  # pragma: no cover
    assert scope.cancelled_caught
    # The chunk in progress was finished before the call returned; no other ran.
    assert finished == [refs[0]]


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


# --- by bytes: a large value is deserialised on the fetch lane, whatever the verb


@pytest.fixture
def unpickled() -> Iterator[list[int]]:
    """The threads that unpickle ``Marked`` values during the test."""
    UNPICKLED_ON.clear()
    yield UNPICKLED_ON
    UNPICKLED_ON.clear()


#: Over INLINE_FETCH_BYTES pickled, under PIECE_BYTES: one ref alone is large.
LARGE = 100_000


async def _by_as_completed(ref: Any) -> list[Any]:
    async with ray_anyio.as_completed([ref]) as results:
        return [value async for _, value in results]


async def _by_get_list(ref: Any) -> list[Any]:
    values: list[Any] = await ray_anyio.get([ref, ray.put(1)])
    assert values[1] == 1
    return values[:1]


async def _by_get(ref: Any) -> list[Any]:
    return [await ray_anyio.get(ref)]


async def _by_map(ref: Any) -> list[Any]:
    async with ray_anyio.map(sleep_then, [0.0], [ref]) as results:
        return [value async for value in results]


async def _by_stream(ref: Any) -> list[Any]:
    async with ray_anyio.stream(replay.remote(ref), values=True) as items:
        return [value async for value in items]


async def _by_pool(ref: Any) -> list[Any]:
    actor = start(Gates)
    try:
        await ray_anyio.get(actor.open.remote("now"))
        pool = ray_anyio.ActorPool([actor])
        one = await pool.submit(lambda a, v: a.value_after.remote("now", v), ref)
        async with pool.map(lambda a, v: a.value_after.remote("now", v), [ref]) as got:
            return [one, *[value async for value in got]]
    finally:
        ray.kill(actor)


#: Each gives the list of the values it fetched.
VERBS: dict[str, Callable[[Any], Awaitable[list[Any]]]] = {
    "get(ref)": _by_get,
    "get([ref, small])": _by_get_list,
    "as_completed": _by_as_completed,
    "map": _by_map,
    "stream(values=True)": _by_stream,
    "ActorPool": _by_pool,
}


@pytest.mark.parametrize("verb", list(VERBS))
async def test_every_verb_deserialises_a_large_value_off_the_loop_thread(
    verb: str, unpickled: list[int]
) -> None:
    value = Marked(LARGE)
    ref = ray.put(value)
    got = await VERBS[verb](ref)
    assert got and all(item == value for item in got)
    assert unpickled, "the value was not unpickled in this process"
    assert threading.get_ident() not in unpickled


async def test_a_large_value_that_was_pending_is_fetched_on_the_lane(
    gate: Any, unpickled: list[int]
) -> None:
    value = Marked(LARGE)
    alone, listed = gate.value_after(value), gate.value_after(value)
    got: dict[str, Any] = {}

    async def fetch_into(key: str, obj: Any) -> None:
        got[key] = await ray_anyio.get(obj)

    async with anyio.create_task_group() as tg:
        tg.start_soon(fetch_into, "alone", alone)  # through the loop's hub
        tg.start_soon(fetch_into, "listed", [listed])  # through a batched fetch
        await anyio.to_thread.run_sync(gate.open)
    assert got == {"alone": value, "listed": [value]}
    assert len(unpickled) == 2 and threading.get_ident() not in unpickled


async def test_a_small_value_is_still_deserialised_on_the_loop_thread(
    unpickled: list[int],
) -> None:
    in_memory_store = sleep_then.remote(0.0, Marked(10))
    in_object_store = ray.put(Marked(10))  # small, though put in the object store
    ray.wait([in_memory_store])
    assert await ray_anyio.get(in_memory_store) == Marked(10)
    assert await ray_anyio.get(in_object_store) == Marked(10)
    assert await ray_anyio.get([in_memory_store, in_object_store]) == [Marked(10)] * 2
    assert set(unpickled) == {threading.get_ident()}


async def test_the_loop_runs_while_large_values_are_fetched() -> None:
    # Each value is a piece of its own on the lane; on the loop thread, the
    # fetch would take all of them without one tick of the loop.
    values = [Marked(LARGE * 10) for _ in range(4)]
    refs = [ray.put(value) for value in values]
    ticks = 0
    fetching = True

    async def ticker() -> None:
        nonlocal ticks
        while fetching:
            await anyio.sleep(0)
            ticks += 1

    async with anyio.create_task_group() as tg:
        tg.start_soon(ticker)
        await anyio.sleep(0)
        before = ticks
        assert await ray_anyio.get(refs) == values
        during = ticks - before
        fetching = False
    assert during >= len(refs)
