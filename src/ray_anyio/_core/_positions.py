"""Where each ref goes: the one ref → positions structure of every verb.

A call hands out results by position (a slot of ``wait``, an index of
``as_completed``, an input number of ``map``, a place in ``get``'s list) and
learns from Ray by ref; the same ref may fill several positions.
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator, Sequence
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    import ray

    Ref = ray.ObjectRef[Any]


class Positions:
    """Positions by distinct ref, in the order the refs were first added.

    Most refs fill one position: the first position of each is a plain int,
    and only repeats get a list, which keeps a pending ref small and a
    cancelled call quick to free.
    """

    __slots__ = ("_first", "_more")

    def __init__(self) -> None:
        self._first: dict[Ref, int] = {}
        self._more: dict[Ref, list[int]] = {}

    def add(self, ref: Ref, position: int) -> bool:
        """Record that ``ref`` fills ``position``; True if ``ref`` is new."""
        first = self._first
        if ref in first:
            self._more.setdefault(ref, []).append(position)
            return False
        first[ref] = position
        return True

    def add_all(self, refs: Sequence[Ref], positions: Iterable[int]) -> None:
        """:meth:`add` for each pair."""
        for ref, position in zip(refs, positions, strict=True):
            self.add(ref, position)

    def pop(self, ref: Ref) -> list[int]:
        """Remove ``ref``; return the positions it fills (``[]`` if absent)."""
        first = self._first.pop(ref, None)
        if first is None:
            return []
        more = self._more.pop(ref, None) if self._more else None
        return [first] if more is None else [first, *more]

    def fill(
        self, values: list[Any], refs: Sequence[Ref], fetched: Sequence[Any]
    ) -> None:
        """Put each fetched value at every position of its ref; forget the refs."""
        first, more = self._first, self._more
        for ref, value in zip(refs, fetched, strict=True):
            values[first.pop(ref)] = value
            if more:
                for position in more.pop(ref, ()):
                    values[position] = value

    def __contains__(self, ref: object) -> bool:
        return ref in self._first

    def __len__(self) -> int:
        """How many distinct refs."""
        return len(self._first)

    def __iter__(self) -> Iterator[Ref]:
        return iter(self._first)

    def refs(self) -> list[Ref]:
        """The distinct refs, in the order they were first added."""
        return list(self._first)

    def clear(self) -> None:
        self._first.clear()
        self._more.clear()
