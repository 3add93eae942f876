"""The inputs of ``map``: plain and async iterables, zipped to the shortest."""

from __future__ import annotations

from collections.abc import (
    AsyncGenerator,
    AsyncIterable,
    AsyncIterator,
    Iterable,
    Iterator,
)
from typing import Any


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
