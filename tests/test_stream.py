"""``stream``: streaming generator tasks on asyncio and trio."""

from __future__ import annotations

from typing import Any

import anyio
import pytest
import ray
from ray.exceptions import TaskCancelledError

import ray_anyio
from ray_anyio.testing import live_registrations

from .helpers import (
    Track,
    count_then_spin,
    count_to,
    count_with_gate,
    new_tracker,
)

pytestmark = [pytest.mark.anyio, pytest.mark.timeout(60)]


async def test_values() -> None:
    items = ray_anyio.stream(count_to.remote(5), values=True)
    assert [value async for value in items] == [0, 1, 2, 3, 4]


async def test_refs() -> None:
    refs = [ref async for ref in ray_anyio.stream(count_to.remote(3))]
    assert all(isinstance(ref, ray.ObjectRef) for ref in refs)
    assert ray.get(refs) == [0, 1, 2]


async def test_items_arrive_while_the_task_runs(track: Track, engine_path: str) -> None:
    gen = count_with_gate.remote(track.actor, track.key, 3)
    items = ray_anyio.stream(gen, values=True)
    assert await items.__anext__() == 0
    await ray_anyio.get(track.wait_for(running=1))  # blocked before item 1
    track.release()
    assert await items.__anext__() == 1
    track.release()
    assert [value async for value in items] == [2]


async def test_error_half_way_with_values(engine_path: str) -> None:
    items = ray_anyio.stream(count_to.remote(5, fail_at=2), values=True)
    assert await items.__anext__() == 0
    assert await items.__anext__() == 1
    with pytest.raises(ValueError, match="failed at 2"):
        await items.__anext__()
    with pytest.raises(StopAsyncIteration):
        await items.__anext__()


async def test_error_half_way_with_refs() -> None:
    refs = [ref async for ref in ray_anyio.stream(count_to.remote(5, fail_at=2))]
    assert len(refs) == 3
    assert ray.get(refs[:2]) == [0, 1]
    with pytest.raises(ValueError, match="failed at 2"):
        await ray_anyio.get(refs[2])


async def test_actor_generator_method(track: Track) -> None:
    items = ray_anyio.stream(track.actor.produce.remote(track.key, 4), values=True)
    assert [value async for value in items] == [0, 1, 2, 3]


async def test_actor_generator_fails_half_way(track: Track) -> None:
    gen = track.actor.produce.remote(track.key, 4, fail_at=1)
    items = ray_anyio.stream(gen, values=True)
    assert await items.__anext__() == 0
    with pytest.raises(ValueError, match="failed at 1"):
        await items.__anext__()


async def test_leaving_async_with_cancels_the_task(track: Track) -> None:
    gen: Any = count_then_spin.remote(track.actor, track.key, 2)  # a generator
    async with ray_anyio.stream(gen, values=True) as items:
        async for value in items:
            assert value == 0
            break
    with anyio.fail_after(30):
        await ray_anyio.get(track.wait_idle())
    with pytest.raises(TaskCancelledError):
        await ray_anyio.get(gen.completed())


async def test_aclose_cancels_an_actor_generator(track: Track) -> None:
    gen = track.actor.produce_then_hold.remote(track.key, 1)
    items = ray_anyio.stream(gen)
    assert ray.get(await items.__anext__()) == 0
    await ray_anyio.get(track.wait_for(running=1))
    await items.aclose()
    with anyio.fail_after(30):
        await ray_anyio.get(track.wait_idle())
    with pytest.raises(StopAsyncIteration):
        await items.__anext__()


async def test_finished_stream_is_not_cancelled() -> None:
    gen: Any = count_to.remote(2)
    async with ray_anyio.stream(gen, values=True) as items:
        assert [value async for value in items] == [0, 1]
    assert await ray_anyio.get(gen.completed()) is None


async def test_a_stream_block_is_entered_once() -> None:
    items = ray_anyio.stream(count_to.remote(1))
    async with items:
        with pytest.raises(RuntimeError, match="entered once"):
            async with items:
                pass  # pragma: no cover


async def test_aclose_is_a_checkpoint_and_still_closes(track: Track) -> None:
    gen = track.actor.produce_then_hold.remote(track.key, 1)
    items = ray_anyio.stream(gen)
    assert ray.get(await items.__anext__()) == 0
    await ray_anyio.get(track.wait_for(running=1))
    with anyio.CancelScope() as scope:
        scope.cancel()
        await items.aclose()
    assert scope.cancelled_caught  # a checkpoint, as trio's and AnyIO's
    with anyio.fail_after(30):
        await ray_anyio.get(track.wait_idle())  # and the task was cancelled
    with pytest.raises(StopAsyncIteration):
        await items.__anext__()


async def test_cancelled_step_loses_no_item(track: Track, engine_path: str) -> None:
    gen = count_with_gate.remote(track.actor, track.key, 2)
    items = ray_anyio.stream(gen, values=True)
    assert await items.__anext__() == 0
    with anyio.move_on_after(0.1) as step:
        await items.__anext__()
    assert step.cancelled_caught
    assert live_registrations() == 0
    track.release()
    assert [value async for value in items] == [1]


async def test_outer_cancellation_while_waiting(track: Track) -> None:
    gen = count_with_gate.remote(track.actor, track.key, 2)
    with anyio.CancelScope() as outer:
        async with ray_anyio.stream(gen) as items:
            async for _ in items:
                outer.cancel()
    assert outer.cancelled_caught


async def test_dead_actor_surfaces_as_an_item(track: Track) -> None:
    doomed = new_tracker()
    gen = doomed.produce_then_hold.remote(track.key, 1)
    items = ray_anyio.stream(gen, values=True)
    assert await items.__anext__() == 0
    ray.kill(doomed)
    with pytest.raises(ray.exceptions.RayActorError):
        await items.__anext__()


async def test_not_a_generator() -> None:
    with pytest.raises(TypeError, match="num_returns='dynamic'"):
        ray_anyio.stream(ray.put(1))
    with pytest.raises(TypeError, match="gen must be the ObjectRefGenerator"):
        ray_anyio.stream([1, 2])


async def test_bad_values() -> None:
    with pytest.raises(TypeError, match="values"):
        ray_anyio.stream(count_to.remote(1), values=1)  # type: ignore[arg-type]
