"""``put``: ``ray.put`` inline for small values, off the loop for large ones."""

from __future__ import annotations

import threading
from collections.abc import Callable
from typing import Any

import anyio
import pytest
import ray

import ray_anyio
from ray_anyio import _put
from ray_anyio._core import _threads

pytestmark = [pytest.mark.anyio, pytest.mark.timeout(60)]


@pytest.fixture
def thread_calls(monkeypatch: pytest.MonkeyPatch) -> list[Any]:
    """Records the jobs ``put`` hands to a lane of threads."""
    calls: list[Any] = []
    real = _threads.run

    async def recording(
        lane: _threads.Lane, fn: Callable[[], Any], stop: Any = None
    ) -> Any:
        calls.append(lane.name)
        return await real(lane, fn, stop)

    monkeypatch.setattr(_threads, "run", recording)
    return calls


class Sized:
    """Anything that states its size the way NumPy arrays do."""

    def __init__(self, nbytes: int) -> None:
        self.nbytes = nbytes

    def __eq__(self, other: object) -> bool:
        return isinstance(other, Sized) and other.nbytes == self.nbytes

    __hash__ = None  # type: ignore[assignment]


@pytest.mark.parametrize(
    "value", [None, True, 7, 2.5, "text", b"bytes", bytearray(10), Sized(100)]
)
async def test_small_values_are_put_inline(value: Any, thread_calls: list[Any]) -> None:
    ref = await ray_anyio.put(value)
    assert isinstance(ref, ray.ObjectRef)
    assert await ray_anyio.get(ref) == value
    assert thread_calls == []


@pytest.mark.parametrize(
    "value",
    [
        b"x" * (_put.INLINE_PUT_MAX + 1),
        "y" * _put.INLINE_PUT_MAX,
        Sized(_put.INLINE_PUT_MAX + 1),
        {"unknown": "size"},
        [1, 2, 3],
    ],
)
async def test_large_or_unknown_values_go_to_a_thread(
    value: Any, thread_calls: list[Any]
) -> None:
    ref = await ray_anyio.put(value)
    assert len(thread_calls) == 1  # the put's job (a large get has its own)
    assert await ray_anyio.get(ref) == value


async def test_loop_runs_while_a_large_value_is_stored(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    # The put's job waits until the loop has gone round ten times: an inline
    # put, or a loop blocked by the job, never lets it (however busy the
    # machine, which counting ticks during a real put could not tell apart).
    looped = threading.Event()
    waited: list[bool] = []
    real = _threads.run

    async def held(lane: _threads.Lane, fn: Callable[[], Any], stop: Any = None) -> Any:
        def job() -> Any:
            waited.append(looped.wait(timeout=30))
            return fn()

        return await real(lane, job, stop)

    monkeypatch.setattr(_threads, "run", held)

    async def loop_round() -> None:
        for _ in range(10):
            await anyio.sleep(0)
        looped.set()

    async with anyio.create_task_group() as tg:
        tg.start_soon(loop_round)
        ref = await ray_anyio.put(b"z" * (64 << 20))
    assert waited == [True]
    assert len(await ray_anyio.get(ref)) == 64 << 20


async def test_cancelled_before_it_starts_puts_nothing(thread_calls: list[Any]) -> None:
    with anyio.CancelScope() as scope:
        scope.cancel()
        await ray_anyio.put(1)
        raise AssertionError("put must be a checkpoint")
    assert scope.cancelled_caught
    assert thread_calls == []


async def test_put_of_a_ref_is_refused() -> None:
    with pytest.raises(TypeError):
        await ray_anyio.put(ray.put(1))
