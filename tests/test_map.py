"""``map``: bounded in-flight tasks, order, errors, early exit."""

from __future__ import annotations

import math
import os
import signal
import subprocess
import sys
import textwrap
import threading
from collections.abc import AsyncGenerator, AsyncIterator, Iterator
from typing import Any

import anyio
import numpy as np
import pytest
import ray
from ray.exceptions import TaskCancelledError

import ray_anyio
from ray_anyio._core import _watcher

from .helpers import Track, add, deaf, fail, pair, spin, square

pytestmark = [pytest.mark.anyio, pytest.mark.timeout(60)]


async def test_remote_function_in_input_order() -> None:
    async with ray_anyio.map(square, range(10)) as results:
        assert [value async for value in results] == [x * x for x in range(10)]


async def test_at_most_max_in_flight_and_refilled_one_by_one(
    track: Track, engine_path: str
) -> None:
    inputs = [(track.key, i) for i in range(9)]
    seen = []
    async with ray_anyio.map(
        track.actor.take, inputs, max_in_flight=3, ordered=False
    ) as results:
        await ray_anyio.get(track.wait_for(running=3))
        for started in range(4, 10):
            track.release()  # one task finishes: exactly one more starts
            seen.append(await results.__anext__())
            await ray_anyio.get(track.wait_for(running=3, started=started))
            assert track.stats() == {"running": 3, "started": started, "peak": 3}
        track.release(3)
        seen.extend([value async for value in results])
    assert sorted(seen) == list(range(9))
    assert track.stats()["peak"] == 3


async def test_finished_results_wait_for_a_slow_consumer(track: Track) -> None:
    track.open()
    inputs = [(track.key, i) for i in range(10)]
    async with ray_anyio.map(track.actor.take, inputs, max_in_flight=2) as results:
        await ray_anyio.get(track.wait_for(running=0, started=4))
        await ray_anyio.get(track.wait_idle())
        await anyio.sleep(0.2)  # room for a fifth start, which must not come
        assert track.stats()["started"] == 4  # 2 * max_in_flight not yet yielded
        assert [value async for value in results] == list(range(10))


async def test_a_slow_task_does_not_hold_back_the_others(
    track: Track, engine_path: str
) -> None:
    slow = track.sub("slow")

    def start(x: int) -> ray.ObjectRef[Any]:
        if x == 0:
            return slow.hold(0)
        return square.remote(x)

    seen = []
    async with ray_anyio.map(start, range(8), max_in_flight=2, ordered=False) as it:
        async for value in it:
            seen.append(value)
            if len(seen) == 7:
                slow.open()
    assert sorted(seen[:7]) == [x * x for x in range(1, 8)]  # before the slow one
    assert seen[7] == 0


async def test_ordered_waits_for_the_slow_head(track: Track) -> None:
    slow = track.sub("slow")

    def start(x: int) -> ray.ObjectRef[Any]:
        return slow.hold(0) if x == 0 else square.remote(x)

    async with ray_anyio.map(start, range(6), max_in_flight=2) as results:
        async with anyio.create_task_group() as tg:

            async def open_when_the_rest_is_done() -> None:
                await ray_anyio.get(slow.wait_for(running=1))
                slow.open()

            tg.start_soon(open_when_the_rest_is_done)
            assert [value async for value in results] == [x * x for x in range(6)]


async def test_actor_method_options(track: Track) -> None:
    track.open()
    take = track.actor.take.options(name="mapped")
    inputs = [(track.key, i) for i in range(5)]
    async with ray_anyio.map(take, inputs, max_in_flight=2, ordered=False) as results:
        assert sorted([v async for v in results]) == list(range(5))


async def test_plain_callables_and_awaitables() -> None:
    async def later(x: int) -> Any:
        await anyio.sleep(0)
        return square.remote(x) if x % 2 else x

    async with ray_anyio.map(later, range(6), max_in_flight=2) as results:
        assert [v async for v in results] == [0, 1, 2, 9, 4, 25]


async def test_async_iterable_input() -> None:
    async def numbers() -> AsyncIterator[int]:
        for x in range(5):
            await anyio.sleep(0)
            yield x

    async with ray_anyio.map(square, numbers(), ordered=False) as results:
        assert sorted([v async for v in results]) == [x * x for x in range(5)]


async def test_each_step_is_a_checkpoint() -> None:
    # A result that is ready still takes a cancellation first.
    refs = [ray.put(0), ray.put(1)]
    await ray_anyio.wait(refs, num_returns=2)
    async with ray_anyio.map(refs.__getitem__, range(2)) as results:
        assert await results.__anext__() == 0
        with anyio.fail_after(30):
            while results._next_finished() is None:  # the collector's turn
                await anyio.sleep(0.01)
        with anyio.CancelScope() as scope:
            scope.cancel()
            await results.__anext__()
        assert scope.cancelled_caught
        assert await results.__anext__() == 1
        with anyio.CancelScope() as scope:  # and so does the end
            scope.cancel()
            await results.__anext__()
        assert scope.cancelled_caught


async def test_empty_input() -> None:
    async with ray_anyio.map(square, []) as results:
        assert [v async for v in results] == []


async def test_task_error_at_its_item_cancels_the_rest(track: Track) -> None:
    def start(x: int) -> ray.ObjectRef[Any]:
        if x == 2:
            return fail.remote("item 2")
        if x < 2:
            return square.remote(x)
        return track.hold(x)

    seen = []
    with pytest.raises(ValueError, match="item 2"):
        async with ray_anyio.map(start, range(5), max_in_flight=5) as results:
            await ray_anyio.get(track.wait_for(running=2))
            async for value in results:
                seen.append(value)
    assert seen == [0, 1]
    assert track.stats()["running"] == 0


async def test_break_cancels_outstanding_tasks(track: Track) -> None:
    async with ray_anyio.map(
        lambda x: spin.remote(track.actor, track.key) if x else square.remote(7),
        range(3),
        max_in_flight=3,
    ) as results:
        await ray_anyio.get(track.wait_for(running=2))
        async for value in results:
            assert value == 49
            break
    assert track.stats()["running"] == 0


async def test_outer_cancellation_cancels_tasks(track: Track) -> None:
    refs: list[ray.ObjectRef[Any]] = []

    def start(x: int) -> ray.ObjectRef[Any]:
        refs.append(track.hold(x))
        return refs[-1]

    with anyio.CancelScope() as outer:
        async with ray_anyio.map(start, range(4), max_in_flight=4) as results:
            await ray_anyio.get(track.wait_for(running=4))
            outer.cancel()
            await results.__anext__()
    assert outer.cancelled_caught
    assert track.stats()["running"] == 0
    for ref in refs:
        with pytest.raises(TaskCancelledError):
            ray.get(ref, timeout=30)


async def test_fn_errors_are_raised_in_order() -> None:
    def start(x: int) -> Any:
        if x == 3:
            raise LookupError("no task for 3")
        return square.remote(x)

    seen = []
    with pytest.raises(LookupError, match="no task for 3"):
        async with ray_anyio.map(start, range(6)) as results:
            async for value in results:
                seen.append(value)
    assert seen == [0, 1, 4]


async def test_fn_must_return_a_ref_or_awaitable() -> None:
    with pytest.raises(TypeError, match="fn returned int"):
        async with ray_anyio.map(lambda x: x, range(3)) as results:
            async for _ in results:
                pass


async def test_iterable_error_after_earlier_results() -> None:
    def numbers() -> Iterator[int]:
        yield 1
        yield 2
        raise OSError("input broke")

    seen = []
    with pytest.raises(OSError, match="input broke"):
        async with ray_anyio.map(square, numbers()) as results:
            async for value in results:
                seen.append(value)
    assert seen == [1, 4]


async def test_iterator_only_inside_its_block() -> None:
    async with ray_anyio.map(square, range(2)) as results:
        assert [value async for value in results] == [0, 1]
    with pytest.raises(RuntimeError, match="inside"):
        await results.__anext__()


@pytest.mark.parametrize("max_in_flight", [0, -3])
async def test_max_in_flight_at_least_one(max_in_flight: int) -> None:
    with pytest.raises(ValueError, match="max_in_flight"):
        ray_anyio.map(square, range(3), max_in_flight=max_in_flight)


async def test_bad_arguments() -> None:
    with pytest.raises(TypeError, match="max_in_flight"):
        ray_anyio.map(square, range(3), max_in_flight=2.5)  # type: ignore[call-overload]
    with pytest.raises(TypeError, match="fn must be"):
        ray_anyio.map(3, range(3))  # type: ignore[call-overload]
    with pytest.raises(TypeError, match="iterable must be"):
        ray_anyio.map(square, 5)  # type: ignore[call-overload]
    with pytest.raises(TypeError, match="ordered"):
        ray_anyio.map(square, range(3), ordered=None)  # type: ignore[call-overload]


# --- several iterables, rate limits, errors as values, progress -------------------


async def test_several_iterables_are_zipped_to_the_shortest() -> None:
    async def tens() -> AsyncGenerator[int, None]:
        for x in range(0, 100, 10):
            yield x

    tenths = tens()
    async with ray_anyio.map(add, range(5), [1, 2, 3], tenths) as results:
        assert [v async for v in results] == [0 + 1 + 0, 1 + 2 + 10, 2 + 3 + 20]
    await tenths.aclose()  # the zip stopped it early; it is ours to close


async def test_max_per_second_spaces_the_starts() -> None:
    n, rate = 8, 20.0
    start = anyio.current_time()
    async with ray_anyio.map(square, range(n), max_per_second=rate) as results:
        assert [v async for v in results] == [x * x for x in range(n)]
    # n starts, at most `rate` in any second: the last cannot come before this.
    assert anyio.current_time() - start >= (n - 1) / rate


async def test_return_exceptions_yields_errors_in_place() -> None:
    def start(x: int) -> Any:
        if x == 1:
            return fail.remote("task 1")
        if x == 3:
            raise LookupError("no task for 3")
        return square.remote(x)

    async with ray_anyio.map(start, range(5), return_exceptions=True) as results:
        values = [v async for v in results]
        assert (results.completed, results.failed) == (3, 2)
    assert values[0::2] == [0, 4, 16]
    assert isinstance(values[1], ValueError) and "task 1" in str(values[1])
    assert isinstance(values[3], LookupError)


async def test_return_exceptions_still_raises_an_input_error() -> None:
    def numbers() -> Iterator[int]:
        yield 1
        raise OSError("input broke")

    seen = []
    with pytest.raises(OSError, match="input broke"):
        async with ray_anyio.map(square, numbers(), return_exceptions=True) as results:
            async for value in results:
                seen.append(value)
    assert seen == [1]


async def test_progress_counters(track: Track) -> None:
    inputs = [(track.key, i) for i in range(4)]
    async with ray_anyio.map(
        track.actor.take, inputs, max_in_flight=2, ordered=False
    ) as results:
        assert results.total == 4
        await ray_anyio.get(track.wait_for(running=2))
        assert (results.submitted, results.completed, results.in_flight) == (2, 0, 2)
        track.release()  # one of the two running calls finishes
        assert await results.__anext__() in (0, 1)
        assert (results.completed, results.failed) == (1, 0)
        track.release(3)
        assert len([v async for v in results]) == 3
        assert (results.submitted, results.completed, results.in_flight) == (4, 4, 0)


async def test_total_is_none_for_an_input_without_length() -> None:
    async with ray_anyio.map(square, iter(range(3))) as results:
        assert results.total is None
        assert [v async for v in results] == [0, 1, 4]


async def test_a_deadline_holds_over_tasks_deaf_to_cancel(track: Track) -> None:
    started = anyio.current_time()
    with anyio.move_on_after(30) as outer:
        async with ray_anyio.map(
            lambda _: deaf.remote(track.actor, track.key),
            range(2),
            cancel_timeout=1,
        ) as results:
            await ray_anyio.get(track.wait_for(running=2))
            started = anyio.current_time()
            outer.cancel()
            await results.__anext__()
    assert outer.cancelled_caught
    assert anyio.current_time() - started < 1 + 1 + 1.5  # cancel_timeout + 1 s


async def test_a_failure_of_the_machinery_reaches_the_caller(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    def broken(self: Any, refs: Any, **kwargs: Any) -> None:
        raise RuntimeError("cannot register")

    monkeypatch.setattr(_watcher.Watcher, "watch", broken)
    with anyio.fail_after(30), pytest.raises(RuntimeError, match="cannot register"):
        async with ray_anyio.map(square, range(3)) as results:
            async for _ in results:
                pass


async def test_ctrl_c_during_a_failing_map_stays_a_keyboard_interrupt(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    failed = anyio.Event()
    watch = _watcher.Watcher.watch

    def broken_once(self: Any, refs: Any, **kwargs: Any) -> None:
        if failed.is_set():  # the scope's cancellation watches as usual
            return watch(self, refs, **kwargs)
        failed.set()
        raise RuntimeError("cannot register")

    monkeypatch.setattr(_watcher.Watcher, "watch", broken_once)
    with anyio.fail_after(30), pytest.raises(KeyboardInterrupt) as info:
        async with ray_anyio.map(square, range(3)):
            with anyio.CancelScope(shield=True):
                await failed.wait()  # the block's machinery has failed
            raise KeyboardInterrupt  # Ctrl-C, here, in the body
    assert type(info.value) is KeyboardInterrupt
    notes = getattr(info.value, "__notes__", [])
    assert any("cannot register" in note for note in notes)


async def test_a_call_with_several_returns_gives_the_list_of_its_values() -> None:
    async with ray_anyio.map(pair, range(4), max_in_flight=2) as results:
        assert [list(v) async for v in results] == [[x, -x] for x in range(4)]
        assert (results.submitted, results.completed) == (4, 4)


async def test_a_plain_function_never_runs_on_the_loop_thread() -> None:
    loop_thread = threading.get_ident()
    threads: list[int] = []

    def start(x: int) -> Any:
        threads.append(threading.get_ident())
        return square.remote(x)

    async with ray_anyio.map(start, range(3)) as results:
        assert [v async for v in results] == [0, 1, 4]
    assert threads and loop_thread not in threads


async def test_async_for_over_the_block_says_to_use_async_with() -> None:
    block = ray_anyio.map(square, range(3))
    with pytest.raises(TypeError, match=r"async with map\(\.\.\.\) as results"):
        async for _ in block:
            pass  # pragma: no cover


async def test_a_numpy_rate_is_a_rate() -> None:
    async with ray_anyio.map(square, range(3), max_per_second=np.int64(1000)) as it:
        assert [value async for value in it] == [0, 1, 4]


async def test_an_iterable_error_leaves_nothing_in_flight() -> None:
    def inputs() -> Iterator[int]:
        yield 1
        yield 2
        raise KeyError("the input's")

    got: list[int] = []
    async with ray_anyio.map(square, inputs()) as results:
        with pytest.raises(KeyError, match="the input's"):
            async for value in results:
                got.append(value)
        assert got == [1, 4]
        # The iterable's error is no item: neither submitted nor failed.
        assert (results.submitted, results.completed, results.failed) == (2, 2, 0)
        assert results.in_flight == 0


@pytest.mark.parametrize(
    ("kwargs", "error", "match"),
    [
        ({"max_per_second": 0}, ValueError, "max_per_second"),
        ({"max_per_second": -1.5}, ValueError, "max_per_second"),
        ({"max_per_second": math.nan}, ValueError, "max_per_second"),
        ({"max_per_second": math.inf}, ValueError, "max_per_second"),
        ({"max_per_second": "10"}, TypeError, "max_per_second"),
        ({"max_per_second": True}, TypeError, "max_per_second"),
        ({"max_in_flight": True}, TypeError, "max_in_flight"),
        ({"return_exceptions": 1}, TypeError, "return_exceptions"),
        ({"force": "yes"}, TypeError, "force"),
        ({"cancel_timeout": -1}, ValueError, "cancel_timeout"),
    ],
)
async def test_bad_new_arguments(
    kwargs: dict[str, Any], error: type, match: str
) -> None:
    with pytest.raises(error, match=match):
        ray_anyio.map(square, range(3), **kwargs)


async def test_no_iterable() -> None:
    with pytest.raises(TypeError, match="at least one iterable"):
        ray_anyio.map(square)


_CTRL_C = textwrap.dedent(
    """
    import os, signal, socket, sys, tempfile, time
    import anyio, ray
    import ray_anyio

    ray.init(address=os.environ["RAY_ADDRESS"], log_to_driver=False)
    marks = tempfile.mkdtemp()

    def count(what):
        return sum(name.startswith(what) for name in os.listdir(marks))

    @ray.remote(num_cpus=0, max_retries=0)
    def hold(i, marks):
        open(os.path.join(marks, f"running-{i}"), "w").close()
        try:
            for _ in range(6000):  # a polite cancel lands between two sleeps
                time.sleep(0.1)
        finally:  # a polite cancel is a KeyboardInterrupt in the task
            open(os.path.join(marks, f"stopped-{i}"), "w").close()

    async def main():
        async with ray_anyio.map(hold, range(3), [marks] * 3) as results:
            with anyio.fail_after(60):
                while count("running") < 3:  # another process's files
                    await anyio.sleep(0.02)
            print("STARTED", flush=True)
            async for _ in results:
                pass

    async def woken_by_signals(coro):
        # CPython runs a signal's handler only when the loop's thread runs
        # Python code. A SIGINT that comes just before the loop sleeps in
        # epoll_wait is seen at its next wake-up, and this loop has none for
        # 10 minutes: the test hung so in CI. A wakeup fd the loop watches
        # (as loop.add_signal_handler sets) wakes it; trio sets one itself.
        import asyncio
        loop = asyncio.get_running_loop()
        wake_r, wake_w = socket.socketpair()
        wake_r.setblocking(False)
        wake_w.setblocking(False)
        loop.add_reader(wake_r, wake_r.recv, 64)
        old = signal.set_wakeup_fd(wake_w.fileno(), warn_on_full_buffer=False)
        try:
            return await coro
        finally:
            signal.set_wakeup_fd(old)
            loop.remove_reader(wake_r)
            wake_r.close()
            wake_w.close()

    def run():
        # asyncio.run and trio.run, as an application calls them (on Python
        # 3.10, anyio.run's asyncio backend cannot turn Ctrl-C back into a
        # KeyboardInterrupt: its tasks have no uncancel()).
        if sys.argv[1] == "trio":
            import trio
            trio.run(main)
        else:
            import asyncio
            asyncio.run(woken_by_signals(main()))

    try:
        run()
    except KeyboardInterrupt:
        print("CAUGHT", count("stopped"), flush=True)
    """
)


@pytest.mark.timeout(180)
@pytest.mark.parametrize("backend", ["asyncio", "trio"])
def test_ctrl_c_during_map_is_a_plain_keyboard_interrupt(
    backend: str, ray_cluster: Any
) -> None:
    env = {**os.environ, "RAY_ADDRESS": ray_cluster.address}
    proc = subprocess.Popen(
        [sys.executable, "-c", _CTRL_C, backend],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        env=env,
    )
    try:
        assert proc.stdout is not None
        started = proc.stdout.readline()  # blocks until the block has begun
        assert started.strip() == "STARTED", (
            started + (proc.stderr.read() if proc.stderr else "")[-3000:]
        )
        proc.send_signal(signal.SIGINT)
        out, err = proc.communicate(timeout=150)
    finally:
        proc.kill()
    # `except KeyboardInterrupt` around the run caught it, and the block's
    # three tasks had stopped before it left.
    assert "CAUGHT 3" in out, out + err[-3000:]
    assert proc.returncode == 0, out + err[-3000:]


# --- item_timeout -------------------------------------------------------------------


def _stuck_first(track: Track) -> Any:
    """``fn`` for map: input 0 spins until cancelled (30 s at most), others square."""
    return lambda x: spin.remote(track.actor, track.key) if x == 0 else square.remote(x)


async def test_an_item_past_item_timeout_fails_and_its_task_stops(track: Track) -> None:
    async with ray_anyio.map(
        _stuck_first(track),
        range(3),
        max_in_flight=1,  # the others can only run once its place is free
        # Long enough for the others to get a worker (a new one takes seconds).
        item_timeout=3.0,
        return_exceptions=True,
    ) as results:
        got = [value async for value in results]
    assert isinstance(got[0], TimeoutError)
    assert "item 0" in str(got[0]) and "item_timeout=3.0" in str(got[0])
    assert got[1:] == [1, 4]
    await ray_anyio.get(track.wait_idle())  # the stuck task was cancelled
    assert track.stats()["started"] == 1


async def test_an_item_timeout_is_retried_when_the_policy_covers_it(
    track: Track,
) -> None:
    policy = ray_anyio.Retry(2, on=TimeoutError, delay=0)
    async with ray_anyio.map(
        _stuck_first(track), range(1), item_timeout=0.5, retry=policy
    ) as results:
        with pytest.raises(TimeoutError, match="item 0"):
            await anext(results)
        assert results.retried == 1
    await ray_anyio.get(track.wait_idle())
    assert track.stats()["started"] == 2


@pytest.mark.parametrize(
    ("value", "error"), [(-1, ValueError), (math.nan, ValueError), ("1", TypeError)]
)
async def test_item_timeout_must_be_seconds(value: Any, error: type[Exception]) -> None:
    with pytest.raises(error, match="item_timeout"):
        ray_anyio.map(square, [1], item_timeout=value)


# --- batches ----------------------------------------------------------------------


async def test_batches_hand_out_every_result_once_in_order() -> None:
    async with ray_anyio.map(square, range(50), max_in_flight=8) as results:
        first = await results.__anext__()  # plain steps and batches mix
        batches = [batch async for batch in results.batches()]
    assert all(batches) and [first] + [v for b in batches for v in b] == [
        x * x for x in range(50)
    ]
    assert (results.completed, results.in_flight) == (50, 0)


async def test_a_batch_ends_before_an_error_which_the_next_step_raises() -> None:
    async def value_or_error(x: int) -> int:
        if x == 3:
            raise ValueError("three")
        return x

    async with ray_anyio.map(value_or_error, range(6)) as results:
        got: list[int] = []
        with pytest.raises(ValueError, match="three"):
            async for batch in results.batches():
                got.extend(batch)
        assert got == [0, 1, 2]
        assert [v async for b in results.batches() for v in b] == [4, 5]
    async with ray_anyio.map(
        value_or_error, range(6), return_exceptions=True
    ) as results:
        flat = [v async for b in results.batches() for v in b]
    assert isinstance(flat[3], ValueError) and flat[:3] + flat[4:] == [0, 1, 2, 4, 5]


async def test_an_iterable_error_is_raised_alone_after_the_batches() -> None:
    def inputs() -> Iterator[int]:
        yield from range(3)
        raise KeyError("input")

    async with ray_anyio.map(square, inputs(), return_exceptions=True) as results:
        got: list[int] = []
        with pytest.raises(KeyError, match="input"):
            async for batch in results.batches():
                got.extend(batch)
    assert got == [0, 1, 4]
