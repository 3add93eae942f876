"""The group that raises its first failure as itself, and loses nothing else."""

from __future__ import annotations

import anyio
import anyio.lowlevel
import pytest

import ray_anyio
from ray_anyio._core._first_error import FirstErrorGroup

pytestmark = pytest.mark.anyio


def _notes(exc: BaseException) -> list[str]:
    return list(getattr(exc, "__notes__", ()))


async def test_the_first_failure_is_raised_as_itself() -> None:
    async def fail() -> None:
        raise ValueError("first")

    with pytest.raises(ValueError, match="first"):
        async with FirstErrorGroup() as group:
            group.start_soon(fail)
            await anyio.sleep_forever()


async def test_a_keyboard_interrupt_after_a_failure_stays_one() -> None:
    failed = anyio.Event()

    async def fail() -> None:
        failed.set()
        raise ValueError("the child's")

    with pytest.raises(KeyboardInterrupt) as info:
        async with FirstErrorGroup() as group:
            group.start_soon(fail)
            with anyio.CancelScope(shield=True):
                await failed.wait()
                await anyio.lowlevel.checkpoint()  # the child has raised
            raise KeyboardInterrupt
    # Raised on its own, not in a group, and the failure is not lost.
    assert type(info.value) is KeyboardInterrupt
    assert any("the child's" in note for note in _notes(info.value))


async def test_a_later_failure_is_added_to_the_first_as_a_note() -> None:
    failed = anyio.Event()

    async def first() -> None:
        failed.set()
        raise ValueError("first")

    async def second() -> None:
        with anyio.CancelScope(shield=True):
            await failed.wait()
        raise KeyError("second")

    with pytest.raises(ValueError, match="first") as info:
        await ray_anyio.get([first(), second()])
    assert any("KeyError('second')" in note for note in _notes(info.value))
