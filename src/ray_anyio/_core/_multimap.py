"""The one key → values structure: positions by ref, waits by ref, callbacks by ref.

A call hands out results by position and learns from Ray by ref; the same ref
may fill several positions.
"""

from __future__ import annotations

from collections.abc import Hashable, Iterator, Sequence
from typing import Any, Generic, TypeVar

K = TypeVar("K", bound=Hashable)
V = TypeVar("V")


class MultiMap(Generic[K, V]):
    """Values by distinct key, keys in the order they were first added.

    Only repeats get a list: a pending ref stays small, a cancelled call
    quick to free.
    """

    __slots__ = ("_first", "_more")

    def __init__(self) -> None:
        self._first: dict[K, V] = {}
        self._more: dict[K, list[V]] = {}

    def add(self, key: K, value: V) -> bool:
        """Record ``value`` under ``key``; True if ``key`` is new."""
        first = self._first
        if key in first:
            self._more.setdefault(key, []).append(value)
            return False
        first[key] = value
        return True

    def add_all(self, key: K, values: list[V]) -> bool:
        """Record ``values`` (at least one) under ``key``; True if ``key`` is new."""
        if key in self._first:
            self._more.setdefault(key, []).extend(values)
            return False
        self._first[key] = values[0]
        if len(values) > 1:
            self._more[key] = values[1:]
        return True

    def pop(self, key: K) -> list[V]:
        """Remove ``key``; return its values (``[]`` if absent)."""
        if key not in self._first:
            return []
        first = self._first.pop(key)
        more = self._more.pop(key, None) if self._more else None
        return [first] if more is None else [first, *more]

    def remove(self, key: K, value: V) -> bool:
        """Remove one ``value`` of ``key`` (by identity); True if ``key`` went."""
        first = self._first
        if key not in first:
            return False
        more = self._more.get(key)
        if first[key] is value:
            if not more:
                del first[key]
                return True
            first[key] = more.pop(0)
        elif more:
            for index, item in enumerate(more):
                if item is value:
                    del more[index]
                    break
        if more is not None and not more:
            del self._more[key]
        return False

    def fill(
        self, values: list[Any], keys: Sequence[K], fetched: Sequence[Any]
    ) -> None:
        """Put each fetched item at every position of its key; forget the keys."""
        first, more = self._first, self._more
        for key, item in zip(keys, fetched, strict=True):
            values[first.pop(key)] = item  # type: ignore[call-overload]
            if more:
                for position in more.pop(key, ()):
                    values[position] = item  # type: ignore[call-overload]

    def values(self) -> Iterator[V]:
        """Every value, key by key."""
        more = self._more
        for key, first in self._first.items():
            yield first
            if more:
                yield from more.get(key, ())

    def __contains__(self, key: object) -> bool:
        return key in self._first

    def __len__(self) -> int:
        """How many distinct keys."""
        return len(self._first)

    def __iter__(self) -> Iterator[K]:
        return iter(self._first)

    def keys(self) -> list[K]:
        """The distinct keys, in the order they were first added."""
        return list(self._first)

    def clear(self) -> None:
        self._first.clear()
        self._more.clear()
