"""``open_scope``: the block owns its tasks; nothing outlives it."""

from __future__ import annotations

import math
from typing import Any

import anyio
import pytest
import ray
from ray.exceptions import RayActorError, TaskCancelledError, WorkerCrashedError

import ray_anyio

from .helpers import (
    Busy,
    Track,
    Tracker,
    count_then_spin,
    deaf,
    fail,
    new_tracker,
    pair,
    spin,
    square,
    start,
    stubborn,
)

pytestmark = [pytest.mark.anyio, pytest.mark.timeout(60)]


def assert_cancelled(ref: ray.ObjectRef[Any]) -> None:
    with pytest.raises(TaskCancelledError):
        ray.get(ref, timeout=30)


async def test_normal_exit_waits_for_every_task(track: Track) -> None:
    exited = False

    async def release_once_running() -> None:
        await ray_anyio.get(track.wait_for(running=2))
        assert not exited
        track.open()

    async with anyio.create_task_group() as tg:
        tg.start_soon(release_once_running)
        async with ray_anyio.open_scope() as scope:
            a = scope.remote(track.actor.hold, track.key, "a")
            b = scope.remote(square, 4)
            c = scope.remote(track.actor.hold.options(name="held"), track.key, "c")
        exited = True
    assert ray.get([a, b, c], timeout=0) == ["a", 16, "c"]


async def test_first_task_error_cancels_the_others(track: Track) -> None:
    with pytest.raises(ValueError, match="task failed"):
        async with ray_anyio.open_scope() as scope:
            running = scope.remote(spin, track.actor, track.key)
            held = [scope.remote(track.actor.hold, track.key, i) for i in range(2)]
            await ray_anyio.get(track.wait_for(running=3))
            scope.remote(fail, "task failed")
    assert track.stats()["running"] == 0
    for ref in [running, *held]:
        assert_cancelled(ref)


async def test_exception_in_block_cancels_unfinished(track: Track) -> None:
    with pytest.raises(KeyError, match="body"):
        async with ray_anyio.open_scope() as scope:
            done = scope.remote(square, 3)
            assert await ray_anyio.get(done) == 9
            running = scope.remote(spin, track.actor, track.key)
            held = scope.remote(track.actor.hold, track.key, 1)
            await ray_anyio.get(track.wait_for(running=2))
            raise KeyError("body")
    assert track.stats()["running"] == 0
    assert_cancelled(running)
    assert_cancelled(held)
    assert ray.get(done) == 9


async def test_queued_tasks_are_cancelled_too(track: Track) -> None:
    with pytest.raises(KeyError):
        async with ray_anyio.open_scope() as scope:
            refs = [scope.remote(spin, track.actor, track.key) for _ in range(6)]
            await ray_anyio.get(track.wait_for(running=1))
            raise KeyError("stop")
    assert track.stats()["running"] == 0
    for ref in refs:
        assert_cancelled(ref)
    assert track.stats()["started"] < 6  # some never ran: 3 CPUs in the cluster


async def test_outer_cancellation_cancels_tasks(track: Track) -> None:
    with anyio.CancelScope() as outer:
        async with ray_anyio.open_scope() as scope:
            held = scope.remote(track.actor.hold, track.key, 1)
            await ray_anyio.get(track.wait_for(running=1))
            outer.cancel()
            await anyio.sleep_forever()
    assert outer.cancelled_caught
    assert track.stats()["running"] == 0
    assert_cancelled(held)


async def test_cancel_while_waiting_at_exit(track: Track) -> None:
    with anyio.move_on_after(0.3) as outer:
        async with ray_anyio.open_scope() as scope:
            held = scope.remote(track.actor.hold, track.key, 1)
    assert outer.cancelled_caught
    assert track.stats()["running"] == 0
    assert_cancelled(held)


async def test_scope_cancel_exits_quietly(track: Track) -> None:
    reached = False
    async with ray_anyio.open_scope() as scope:
        held = scope.remote(track.actor.hold, track.key, 1)
        await ray_anyio.get(track.wait_for(running=1))
        scope.cancel()
        assert scope.cancel_called
        await anyio.sleep(0)
        reached = True
    assert not reached
    assert track.stats()["running"] == 0
    assert_cancelled(held)


async def test_cancel_from_another_task(track: Track) -> None:
    async with anyio.create_task_group() as tg, ray_anyio.open_scope() as scope:
        held = scope.remote(track.actor.hold, track.key, 1)

        async def cancel_when_running() -> None:
            await ray_anyio.get(track.wait_for(running=1))
            scope.cancel()

        tg.start_soon(cancel_when_running)
    assert track.stats()["running"] == 0
    assert_cancelled(held)


async def test_force_stops_a_blocked_task_and_spares_actor_tasks(track: Track) -> None:
    with pytest.raises(KeyError):
        async with ray_anyio.open_scope(force=True) as scope:
            blocked = scope.remote(stubborn, track.actor, track.key)
            held = scope.remote(track.actor.hold, track.key, 1)
            await ray_anyio.get(track.wait_for(running=2))
            raise KeyError("stop")
    with pytest.raises((TaskCancelledError, ray.exceptions.WorkerCrashedError)):
        ray.get(blocked, timeout=30)
    assert_cancelled(held)


async def test_generator_task_is_owned(track: Track) -> None:
    with pytest.raises(KeyError):
        async with ray_anyio.open_scope() as scope:
            gen = scope.remote(count_then_spin, track.actor, track.key, 2)
            assert await ray_anyio.stream(gen, values=True).__anext__() == 0
            await ray_anyio.get(track.wait_for(running=1))
            raise KeyError("stop")
    assert track.stats()["running"] == 0


async def test_options_and_multiple_returns() -> None:
    async with ray_anyio.open_scope() as scope:
        one = scope.remote(square.options(num_cpus=0), 5)
        two = scope.remote(pair, 3)
    assert ray.get(one) == 25
    assert ray.get(two) == [3, -3]  # type: ignore[comparison-overlap]


async def test_dead_actor_error_at_exit() -> None:
    doomed = new_tracker()
    with pytest.raises(RayActorError):
        async with ray_anyio.open_scope() as scope:
            scope.remote(doomed.hold, "never", 1)
            ray.kill(doomed)


async def test_cancel_timeout_zero_does_not_wait(track: Track) -> None:
    with pytest.raises(KeyError):
        async with ray_anyio.open_scope(cancel_timeout=0) as scope:
            held = scope.remote(track.actor.hold, track.key, 1)
            await ray_anyio.get(track.wait_for(running=1))
            raise KeyError("stop")
    assert_cancelled(held)


@pytest.mark.parametrize("make", [lambda: len, lambda: Tracker, lambda: ray.put(1)])
async def test_fn_must_be_remote(make: Any) -> None:
    fn = make()
    async with ray_anyio.open_scope() as scope:
        with pytest.raises(TypeError, match=r"fn must be a @ray\.remote function"):
            scope.remote(fn)


async def test_remote_only_inside_the_block() -> None:
    block = ray_anyio.open_scope()
    async with block as scope:
        pass
    with pytest.raises(RuntimeError, match="inside"):
        scope.remote(square, 1)
    with pytest.raises(RuntimeError, match="once"):
        async with block:
            pass


async def test_bad_arguments() -> None:
    with pytest.raises(TypeError, match="force"):
        ray_anyio.open_scope(force=1)  # type: ignore[arg-type]
    with pytest.raises(ValueError, match="cancel_timeout"):
        ray_anyio.open_scope(cancel_timeout=-1)
    with pytest.raises(ValueError, match="cancel_timeout"):
        ray_anyio.open_scope(cancel_timeout=math.nan)


async def test_a_task_deaf_to_a_polite_cancel_is_forced_after_cancel_timeout(
    track: Track, caplog: pytest.LogCaptureFixture
) -> None:
    cancel_timeout = 1.0
    with pytest.raises(KeyError):
        async with ray_anyio.open_scope(cancel_timeout=cancel_timeout) as scope:
            ref = scope.remote(deaf, track.actor, track.key)
            await ray_anyio.get(track.wait_for(running=1))
            started = anyio.current_time()
            raise KeyError("stop")
    elapsed = anyio.current_time() - started
    # Within cancel_timeout + 1 s (a generous margin for a loaded machine).
    assert elapsed < cancel_timeout + 1 + 1.5
    with pytest.raises((TaskCancelledError, WorkerCrashedError)):
        ray.get(ref, timeout=30)
    assert any("force=True" in r.getMessage() for r in caplog.records)
    assert all(r.name == "ray_anyio" for r in caplog.records if "force" in r.message)


async def test_an_actor_task_that_goes_on_is_left_with_a_warning(
    caplog: pytest.LogCaptureFixture,
) -> None:
    actor = start(Busy)
    try:
        with anyio.fail_after(20), pytest.raises(KeyError):
            async with ray_anyio.open_scope(cancel_timeout=0.5) as scope:
                ref = scope.remote(actor.work, 5)
                assert await ray_anyio.get(actor.wait_started.remote())
                started = anyio.current_time()
                raise KeyError("stop")
        assert anyio.current_time() - started < 0.5 + 1 + 1.5
        assert any("actor task" in r.getMessage() for r in caplog.records)
        ready, _ = ray.wait([ref], timeout=0)
        assert ready == []  # Ray cannot force it: it still runs
    finally:
        ray.kill(actor)
