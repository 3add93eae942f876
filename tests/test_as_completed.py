"""``as_completed``: completion order, batching, errors, timeouts, early exit."""

from __future__ import annotations

import inspect
import math
from collections.abc import Iterator
from typing import Any

import anyio
import pytest
import ray
from ray.exceptions import GetTimeoutError

import ray_anyio
from ray_anyio._core import _fetch
from ray_anyio.testing import live_registrations

from .helpers import Track, fail, new_tracker, sleep_then, square, tracker_actor

pytestmark = [pytest.mark.anyio, pytest.mark.timeout(60)]


@pytest.fixture
def track(request: pytest.FixtureRequest) -> Iterator[Track]:
    t = Track(tracker_actor(), request.node.nodeid)
    yield t
    for name in ("", "a", "b", "c"):
        (t.sub(name) if name else t).open()


async def test_yields_in_completion_order(track: Track, engine_path: str) -> None:
    a, b, c = track.sub("a"), track.sub("b"), track.sub("c")
    items = [a.hold("a"), b.hold("b"), c.hold("c")]
    seen = []
    async with ray_anyio.as_completed(items) as results:
        for held in (c, a, b):
            held.release()
            seen.append(await results.__anext__())
        with pytest.raises(StopAsyncIteration):
            await results.__anext__()
    assert seen == [(2, "c"), (0, "a"), (1, "b")]


async def test_finished_refs_come_first_in_input_order(track: Track) -> None:
    items = [track.hold("late"), ray.put("x"), ray.put("y")]
    seen = []
    async with ray_anyio.as_completed(items) as results:
        async for index, value in results:
            seen.append((index, value))
            if len(seen) == 2:
                track.release()
    assert seen == [(1, "x"), (2, "y"), (0, "late")]


@pytest.fixture
def fetch_calls(monkeypatch: pytest.MonkeyPatch) -> list[int]:
    """The size of every batched fetch the engine makes during the test."""
    calls: list[int] = []
    real_fetch = _fetch.fetch

    async def counting_fetch(refs: Any) -> list[Any]:
        calls.append(len(refs))
        return await real_fetch(refs)

    monkeypatch.setattr(_fetch, "fetch", counting_fetch)
    return calls


async def test_refs_finished_on_entry_are_fetched_in_one_batch(
    fetch_calls: list[int],
) -> None:
    refs = [ray.put(i) for i in range(5)]
    async with ray_anyio.as_completed(refs) as results:
        assert [pair async for pair in results] == [(i, i) for i in range(5)]
    assert fetch_calls == [5]


async def test_refs_ready_together_are_fetched_together(
    track: Track, fetch_calls: list[int]
) -> None:
    refs = [track.hold(i) for i in range(6)]
    async with ray_anyio.as_completed(refs) as results:
        track.open()
        # Ray reports each ref on its own callback, in no promised order and
        # after its own ray.wait may have returned: wait until this block's
        # watcher holds all six reports, so that the first pull takes them.
        watcher = results._watcher
        assert watcher is not None
        with anyio.fail_after(30):
            while len(watcher._arrived) < 6:
                await anyio.sleep(0.01)
        assert sorted([pair async for pair in results]) == [(i, i) for i in range(6)]
    assert sum(fetch_calls) == 6
    # One fetch, or two if Ray's hook reported some of the six before they
    # were on this node (the rest of the way is the poller's, in one report).
    assert len(fetch_calls) <= 2


async def test_values_from_another_node(engine_path: str) -> None:
    payload = b"y" * 300_000  # large enough to live in the other node's store
    remote = sleep_then.options(resources={"remote": 1})
    refs = [remote.remote(0.05, payload), ray.put(b"local")]
    async with ray_anyio.as_completed(refs) as results:
        seen = dict([pair async for pair in results])
    assert seen == {0: payload, 1: b"local"}
    assert ray.wait(refs[:1], timeout=0, fetch_local=True)[0] == refs[:1]


async def test_duplicate_refs_fill_every_position() -> None:
    ref = square.remote(3)
    async with ray_anyio.as_completed([ref, ref]) as results:
        assert sorted([pair async for pair in results]) == [(0, 9), (1, 9)]


async def test_awaitables_and_chains(track: Track, engine_path: str) -> None:
    async def plain() -> str:
        await anyio.sleep(0)
        return "plain"

    async def to_ref() -> ray.ObjectRef[Any]:
        await anyio.sleep(0)
        return track.hold("chained")

    async def chain_of_chain() -> Any:
        return to_ref()

    seen = []
    async with ray_anyio.as_completed([plain(), chain_of_chain()]) as results:
        async for index, value in results:
            seen.append((index, value))
            track.release()
    assert seen == [(0, "plain"), (1, "chained")]


async def test_task_error_raised_where_reached(track: Track) -> None:
    failing = track.sub("a").hold_then_fail("boom")
    items = [ray.put(0), failing, track.hold("never")]
    async with ray_anyio.as_completed(items) as results:
        assert await results.__anext__() == (0, 0)
        track.sub("a").release()
        with pytest.raises(ValueError, match="boom"):
            await results.__anext__()
    with pytest.raises(ray.exceptions.GetTimeoutError):
        ray.get(items[2], timeout=0)  # as_completed does not cancel tasks


async def test_failure_in_a_batch_stays_at_its_position() -> None:
    ok, bad = square.remote(2), fail.remote("bad one")
    await ray_anyio.wait([ok, bad], num_returns=2)
    async with ray_anyio.as_completed([ok, bad, ok]) as results:
        assert await results.__anext__() == (0, 4)
        assert await results.__anext__() == (2, 4)
        with pytest.raises(ValueError, match="bad one"):
            await results.__anext__()


async def test_awaitable_error_raised_where_reached() -> None:
    async def broken() -> ray.ObjectRef[Any]:
        await anyio.sleep(0)
        raise KeyError("awaitable failed")

    async with ray_anyio.as_completed([ray.put(1), broken()]) as results:
        assert await results.__anext__() == (0, 1)
        with pytest.raises(KeyError, match="awaitable failed"):
            await results.__anext__()


async def test_with_refs_yields_refs_and_does_not_raise(track: Track) -> None:
    bad = fail.remote("not raised")
    held = track.hold(1)
    seen = []
    async with ray_anyio.as_completed([bad, held], with_refs=True) as results:
        async for index, ref in results:
            seen.append((index, ref))
            track.release()
    assert seen == [(0, bad), (1, held)]
    assert ray.get(held) == 1


async def test_timeout_raises_after_what_is_ready(track: Track) -> None:
    items = [ray.put(0), track.hold(1)]
    async with ray_anyio.as_completed(items, timeout=0.2) as results:
        assert await results.__anext__() == (0, 0)
        with pytest.raises(TimeoutError):
            await results.__anext__()
        with pytest.raises(GetTimeoutError):
            await results.__anext__()


async def test_break_cancels_awaitables(track: Track) -> None:
    cancelled = anyio.Event()

    async def forever() -> ray.ObjectRef[Any]:
        try:
            await anyio.sleep_forever()
        finally:
            cancelled.set()
        raise AssertionError("unreachable")

    async with ray_anyio.as_completed([ray.put(1), forever(), track.hold(2)]) as it:
        async for pair in it:
            assert pair == (0, 1)
            break
    assert cancelled.is_set()


async def test_outer_cancellation_leaves_nothing(track: Track) -> None:
    refs = [track.hold(i) for i in range(5)]
    with anyio.CancelScope() as outer:
        async with ray_anyio.as_completed(refs) as results:
            await ray_anyio.get(track.wait_for(running=5))
            outer.cancel()
            await results.__anext__()
    assert outer.cancelled_caught
    assert live_registrations() == 0


async def test_cancelled_step_loses_nothing(track: Track, engine_path: str) -> None:
    refs = [track.hold(i) for i in range(3)]
    async with ray_anyio.as_completed(refs) as results:
        with anyio.move_on_after(0.05) as step:
            await results.__anext__()
        assert step.cancelled_caught
        track.open()
        assert sorted([pair async for pair in results]) == [(0, 0), (1, 1), (2, 2)]


async def test_dead_actor_raises() -> None:
    doomed = new_tracker()
    ref = doomed.hold.remote("never opened", 1)
    async with ray_anyio.as_completed([ref]) as results:
        ray.kill(doomed)
        with pytest.raises(ray.exceptions.RayActorError):
            await results.__anext__()


async def test_empty_items() -> None:
    async with ray_anyio.as_completed([]) as results:  # type: ignore[var-annotated]
        assert [pair async for pair in results] == []


async def test_iterator_only_inside_its_block() -> None:
    block = ray_anyio.as_completed([ray.put(1)])
    async with block as it:
        pass
    with pytest.raises(RuntimeError, match="inside"):
        await it.__anext__()
    with pytest.raises(RuntimeError, match="once"):
        async with block:
            pass


@pytest.mark.parametrize("items", [{1, 2}, "abc", None, iter([])])
async def test_items_not_a_list(items: Any) -> None:
    with pytest.raises(TypeError, match="items must be a list or tuple"):
        ray_anyio.as_completed(items)


async def test_single_ref_gets_a_hint() -> None:
    with pytest.raises(TypeError, match=r"as_completed\(\[ref\]\)"):
        ray_anyio.as_completed(ray.put(1))  # type: ignore[call-overload]


async def test_item_of_wrong_type() -> None:
    with pytest.raises(TypeError, match=r"items\[1\] must be an ObjectRef"):
        ray_anyio.as_completed([ray.put(1), 3])


@pytest.mark.parametrize("timeout", [-1, math.nan])
async def test_bad_timeout(timeout: float) -> None:
    with pytest.raises(ValueError, match="timeout"):
        ray_anyio.as_completed([ray.put(1)], timeout=timeout)


async def test_bad_with_refs() -> None:
    with pytest.raises(TypeError, match="with_refs"):
        ray_anyio.as_completed([ray.put(1)], with_refs=1)  # type: ignore[call-overload]


async def test_return_exceptions_yields_index_and_error() -> None:
    refs = [ray.put(1), fail.remote("boom"), ray.put(3)]
    async with ray_anyio.as_completed(refs, return_exceptions=True) as results:
        pairs = dict([pair async for pair in results])
        assert (results.completed, results.failed, results.in_flight) == (2, 1, 0)
    assert pairs[0] == 1 and pairs[2] == 3
    assert isinstance(pairs[1], ValueError)


async def test_progress_counters(gate: Any) -> None:
    refs = [ray.put(0), gate.value_after(1)]
    async with ray_anyio.as_completed(refs) as results:
        assert (results.total, results.submitted, results.in_flight) == (2, 2, 2)
        assert await results.__anext__() == (0, 0)
        assert (results.completed, results.in_flight) == (1, 1)
        gate.open()
        assert await results.__anext__() == (1, 1)
        assert (results.completed, results.failed, results.in_flight) == (2, 0, 0)


async def test_bad_return_exceptions() -> None:
    with pytest.raises(TypeError, match="return_exceptions"):
        ray_anyio.as_completed([ray.put(1)], return_exceptions=None)  # type: ignore[call-overload]


# --- add(): work added while iterating ----------------------------------------


async def test_add_crawls_until_every_page_is_delivered() -> None:
    # Each page shorter than 4 letters links to two more: 2 roots, 30 pages.
    roots = ["a", "b"]
    pages = dict(enumerate(roots))
    seen = []
    refs = [sleep_then.remote(0, page) for page in roots]
    async with ray_anyio.as_completed(refs) as results:
        async for index, page in results:
            assert page == pages[index]
            seen.append(index)
            if len(page) < 4:
                for child in (page + "0", page + "1"):
                    pages[results.add(sleep_then.remote(0, child))] = child
        progress = (results.total, results.submitted, results.completed)
    assert sorted(seen) == sorted(pages) == list(range(30))
    assert progress == (30, 30, 30)


async def test_add_while_given_items_are_pending(gate: Any, other_gate: Any) -> None:
    seen = []
    items = [ray.put("first"), gate.value_after("late")]
    async with ray_anyio.as_completed(items) as results:
        async for index, value in results:
            seen.append((index, value))
            if index == 0:
                assert results.add(other_gate.value_after("added")) == 2
                progress = (results.total, results.submitted, results.in_flight)
                assert progress == (3, 3, 2)
                other_gate.open()
            elif index == 2:
                gate.open()
    assert seen == [(0, "first"), (2, "added"), (1, "late")]


async def test_add_coroutines(gate: Any) -> None:
    released = anyio.Event()

    async def chained() -> ray.ObjectRef[Any]:
        await released.wait()
        ref: ray.ObjectRef[Any] = gate.value_after("chained")
        return ref

    async def plain() -> str:
        await anyio.sleep(0)
        return "plain"

    seen = []
    async with ray_anyio.as_completed([ray.put(0)]) as results:
        async for index, value in results:
            seen.append((index, value))
            if index == 0:
                assert results.add(chained()) == 1
                assert results.add(plain()) == 2
            elif index == 2:
                released.set()
                gate.open()
    assert seen == [(0, 0), (2, "plain"), (1, "chained")]


async def test_add_after_the_last_result_continues_the_iteration() -> None:
    seen = []
    async with ray_anyio.as_completed([ray.put("only")]) as results:
        async for index, value in results:
            seen.append((index, value))
            if index == 0:
                assert results.in_flight == 0
                results.add(square.remote(4))
    assert seen == [(0, "only"), (1, 16)]


async def test_add_from_another_task_wakes_a_waiting_step(gate: Any) -> None:
    async def adder(results: ray_anyio.AsCompleted[Any]) -> None:
        await anyio.wait_all_tasks_blocked()  # the step below waits for Ray
        results.add(ray.put("added"))

    async with ray_anyio.as_completed([gate.value_after("held")]) as results:
        async with anyio.create_task_group() as tg:
            tg.start_soon(adder, results)
            with anyio.fail_after(30):
                assert await results.__anext__() == (1, "added")
        gate.open()
        assert [pair async for pair in results] == [(0, "held")]


async def test_added_awaitable_is_cancelled_with_the_block() -> None:
    cancelled = anyio.Event()

    async def forever() -> None:
        try:
            await anyio.sleep_forever()
        finally:
            cancelled.set()

    async with ray_anyio.as_completed([ray.put(1)]) as results:
        async for _ in results:
            results.add(forever())
            break
    assert cancelled.is_set()


async def test_add_after_the_iteration_has_ended() -> None:
    async def never() -> None:
        raise AssertionError("never started")

    async with ray_anyio.as_completed([ray.put(1)]) as results:
        assert [pair async for pair in results] == [(0, 1)]
        coro = never()
        with pytest.raises(RuntimeError, match="before the iteration has ended"):
            results.add(coro)
        assert inspect.getcoroutinestate(coro) == inspect.CORO_CLOSED
        assert results.total == 1


async def test_add_after_the_block() -> None:
    async with ray_anyio.as_completed([ray.put(1)]) as results:
        pass
    with pytest.raises(RuntimeError, match="inside `async with as_completed"):
        results.add(ray.put(2))
    assert results.total == 1


@pytest.mark.parametrize(
    ("item", "match"),
    [
        (3, "item must be an ObjectRef or an awaitable, got int$"),
        ([1], "got list; add\\(\\) takes one item"),
        (square, r"got RemoteFunction; .*call its \.remote\(\.\.\.\) first"),
    ],
)
async def test_add_refuses_a_wrong_item(item: Any, match: str) -> None:
    async with ray_anyio.as_completed([ray.put(1)]) as results:
        with pytest.raises(TypeError, match=match):
            results.add(item)
        assert (results.total, results.submitted) == (1, 1)
        assert [pair async for pair in results] == [(0, 1)]


# --- batches() -------------------------------------------------------------------


async def wait_for_reports(results: ray_anyio.AsCompleted[Any], count: int) -> None:
    """Wait until the block's watcher holds ``count`` reports not taken yet."""
    watcher = results._watcher
    assert watcher is not None
    with anyio.fail_after(30):
        while len(watcher._arrived) < count:
            await anyio.sleep(0.01)


async def test_batches_deliver_every_item_once(gate: Any, other_gate: Any) -> None:
    async def coro(value: str) -> str:
        await anyio.sleep(0)
        return value

    items = [ray.put(i) for i in range(3)] + [gate.value_after(i) for i in (3, 4)]
    batches = []
    async with ray_anyio.as_completed(items) as results:
        async for batch in results.batches():
            assert batch
            batches.append(batch)
            if len(batches) == 1:
                assert batch == [(0, 0), (1, 1), (2, 2)]
                results.add(other_gate.value_after(5))
                results.add(coro("six"))
                gate.open()
            elif len(batches) == 2:
                other_gate.open()
        assert results.completed == 7
    pairs = [pair for batch in batches for pair in batch]
    assert sorted(pairs, key=str) == sorted(
        [(0, 0), (1, 1), (2, 2), (3, 3), (4, 4), (5, 5), (6, "six")], key=str
    )


async def test_a_batch_takes_every_ready_result_in_one_fetch(
    gate: Any, other_gate: Any, fetch_calls: list[int], engine_path: str
) -> None:
    async def plain() -> str:
        await anyio.sleep(0)
        return "plain"

    items = [ray.put("first")] + [gate.value_after(i) for i in (1, 2, 3)]
    async with ray_anyio.as_completed(items) as results:
        steps = results.batches()
        # Reported while a result is already waiting to be fetched: one fetch.
        gate.open()
        await wait_for_reports(results, 3)
        batch = sorted(await steps.__anext__())
        assert batch == [(0, "first"), (1, 1), (2, 2), (3, 3)]
        assert fetch_calls == [4]
        # Reported while a result is already out: they join its batch.
        refs = [other_gate.value_after(i) for i in (4, 5)]
        assert [results.add(ref) for ref in refs] == [4, 5]
        other_gate.open()
        await wait_for_reports(results, 2)
        results.add(plain())
        await anyio.wait_all_tasks_blocked()
        assert sorted(await steps.__anext__(), key=str) == [
            (4, 4),
            (5, 5),
            (6, "plain"),
        ]
        assert fetch_calls == [4, 2]
        assert [batch async for batch in steps] == []


async def test_batches_and_plain_steps_share_the_results(gate: Any) -> None:
    items = [ray.put(i) for i in range(4)] + [gate.value_after(4)]
    async with ray_anyio.as_completed(items) as results:
        assert await results.__anext__() == (0, 0)
        assert await results.batches().__anext__() == [(1, 1), (2, 2), (3, 3)]
        gate.open()
        assert await results.__anext__() == (4, 4)
        assert [batch async for batch in results.batches()] == []
        assert [pair async for pair in results] == []


async def test_batch_stops_before_a_failure() -> None:
    refs = [ray.put(0), fail.remote("bad one"), ray.put(2)]
    await ray_anyio.wait(refs, num_returns=3)

    async def broken() -> None:
        await anyio.sleep(0)
        raise KeyError("added failed")

    async with ray_anyio.as_completed(refs) as results:
        steps = results.batches()
        assert await steps.__anext__() == [(0, 0)]
        with pytest.raises(ValueError, match="bad one"):
            await steps.__anext__()
        results.add(broken())
        assert await steps.__anext__() == [(2, 2)]
        with pytest.raises(KeyError, match="added failed"):
            await steps.__anext__()
        assert [batch async for batch in steps] == []
        assert (results.completed, results.failed) == (2, 2)


async def test_batches_return_exceptions_in_place() -> None:
    refs = [ray.put(0), fail.remote("bad one"), ray.put(2)]
    await ray_anyio.wait(refs, num_returns=3)
    async with ray_anyio.as_completed(refs, return_exceptions=True) as results:
        batches = [batch async for batch in results.batches()]
    assert len(batches) == 1
    (i0, v0), (i1, v1), (i2, v2) = batches[0]
    assert (i0, v0, i1, i2, v2) == (0, 0, 1, 2, 2)
    assert isinstance(v1, ValueError)


async def test_cancelled_batch_step_loses_nothing(gate: Any) -> None:
    items = [gate.value_after(i) for i in range(3)]
    async with ray_anyio.as_completed(items) as results:
        steps = results.batches()
        with anyio.move_on_after(0.05) as step:
            await steps.__anext__()
        assert step.cancelled_caught
        gate.open()
        pairs = [pair async for batch in steps for pair in batch]
    assert sorted(pairs) == [(0, 0), (1, 1), (2, 2)]


async def test_batch_timeout_after_what_is_ready(gate: Any) -> None:
    items = [ray.put(0), gate.value_after(1)]
    async with ray_anyio.as_completed(items, timeout=0.2) as results:
        steps = results.batches()
        assert await steps.__anext__() == [(0, 0)]
        with pytest.raises(GetTimeoutError):
            await steps.__anext__()


async def test_batches_only_inside_the_block() -> None:
    async with ray_anyio.as_completed([ray.put(1)]) as results:
        pass
    with pytest.raises(RuntimeError, match="inside"):
        await results.batches().__anext__()
