"""The inputs of ``map``: plain and async iterables, zipped to the shortest.

And read a task's worth at a time (:func:`read_group`), each input taking its
place in the map's window first.
"""

from __future__ import annotations

from collections.abc import (
    AsyncGenerator,
    AsyncIterable,
    AsyncIterator,
    Iterable,
    Iterator,
)
from typing import Any

import anyio


def length(iterables: tuple[Any, ...]) -> int | None:
    """The shortest length, or None when an iterable has none."""
    lengths = [len(i) for i in iterables if hasattr(i, "__len__")]
    return min(lengths) if len(lengths) == len(iterables) else None


def plain_zipped(iterables: tuple[Any, ...]) -> Iterator[tuple[Any, ...]] | None:
    """The inputs as argument tuples when every iterable is plain, else None.

    What :func:`zipped` yields, without an ``await`` per input.
    """
    if all(isinstance(i, Iterable) for i in iterables):
        return zip(*iterables, strict=False)  # the shortest ends it
    return None


async def zipped(iterables: tuple[Any, ...]) -> AsyncGenerator[tuple[Any, ...], None]:
    """The inputs as argument tuples, from plain and async iterables alike."""
    if all(isinstance(i, Iterable) for i in iterables):
        for args in zip(*iterables, strict=False):  # the shortest ends it
            yield args
        return
    iterators = [
        aiter(i) if isinstance(i, AsyncIterable) else iter(i) for i in iterables
    ]
    while True:
        row: list[Any] = []
        for iterator in iterators:
            try:
                if isinstance(iterator, AsyncIterator):
                    row.append(await anext(iterator))
                else:
                    row.append(next(iterator))
            except (StopIteration, StopAsyncIteration):
                return
        yield tuple(row)


async def read_group(
    plain: Iterator[tuple[Any, ...]] | None,
    inputs: AsyncIterator[tuple[Any, ...]],
    size: int,
    window: anyio.Semaphore,
    whole: bool,
) -> tuple[list[tuple[Any, ...]], Exception | None, bool]:
    """The next ``size`` inputs at most, each holding a place in ``window``.

    ``plain``: :func:`plain_zipped`'s iterator, read without an ``await``
    per input, else ``inputs`` (:func:`zipped`'s). ``whole``: the group
    holds one place, not one per input. Returns the inputs, the error the
    input raised after them (not the machinery's), and whether it ended.
    """
    group: list[tuple[Any, ...]] = []
    if whole:
        await window.acquire()
    error: Exception | None = None
    ended = False
    while len(group) < size:
        try:
            args = next(plain) if plain is not None else await anext(inputs)
        except (StopIteration, StopAsyncIteration):
            ended = True
            break
        except Exception as exc:
            error = exc
            break
        if not whole:
            try:  # the common case without a coroutine (thousands a chunk)
                window.acquire_nowait()
            except anyio.WouldBlock:
                await window.acquire()
        group.append(args)
    if whole and not group:
        window.release()
    return group, error, ended
