"""The slots of one ``wait``: which are ready, in input order, and what remains.

The state stays on the ``remaining`` list (a :class:`Remaining`): the next
``wait`` on it, on the same loop, reuses its registrations and ready slots,
until the list is mutated or collected.
"""

from __future__ import annotations

import heapq
import weakref
from array import array
from bisect import bisect_left
from collections.abc import Callable, Iterable
from typing import TYPE_CHECKING, Any, TypeVar

import ray

from ._multimap import MultiMap
from ._readiness import split_ready
from ._reports import take_reports
from ._wakeup import current_loop
from ._watcher import Watcher

if TYPE_CHECKING:
    Ref = ray.ObjectRef[Any]

S = TypeVar("S", list[Any], "array[int]")

#: Up to this many runs of neighbouring slots taken are deleted in place (one
#: move of the tail per run); more, and the lists are rebuilt from slices.
RUNS_IN_PLACE_MAX = 16


class WaitState:
    """Ready slots of one list of slots, by original position.

    ``alive[p]`` is the original index of ``entries[p]``; ``ready`` is a heap
    of the original indices of ready slots not yet returned, so they come out
    in input order, as ``ray.wait`` returns them.
    """

    def __init__(self, entries: list[Any], fetch_local: bool) -> None:
        # A plain list like the ``remaining`` handed out: copying it is one
        # memcpy, while copying a list subclass goes element by element.
        self.entries = entries
        # Once handed over, the Remaining list owns this state: refer back to
        # it weakly, so that dropping the list frees both at once (no cycle).
        self._owner: weakref.ref[Remaining] | None = None
        self.fetch_local = fetch_local
        self.loop = current_loop()
        # True while a ``wait`` uses this state: a mutation of the list then
        # only detaches it, and that call closes it or hands it on.
        self.busy = False
        # Plain machine ints: moving them costs no reference counting.
        self.alive = array("q", range(len(entries)))
        self.ready: list[int] = []
        self.slots: MultiMap[Ref, int] = MultiMap()
        self.known_ready: set[Ref] = set()
        self.unresolved: set[int] = set()
        self.watcher = Watcher(fetch_local=fetch_local)

    def start(self, ref_slots: Iterable[int]) -> None:
        """Ask Ray once which refs are ready; watch the others."""
        entries = self.entries
        for index in ref_slots:
            self.slots.add(entries[index], index)
        ready, pending = split_ready(self.slots.keys(), fetch_local=self.fetch_local)
        self.absorb(ready)
        self.watcher.watch(pending)

    def matches(self, items: object, fetch_local: bool) -> bool:
        """Whether ``items`` is the list this state describes, on this loop."""
        return (
            self._owner is not None
            and items is self._owner()
            and fetch_local == self.fetch_local
            and current_loop() is self.loop
        )

    @property
    def attached(self) -> bool:
        """Whether a ``remaining`` list still carries this state."""
        return self._owner is not None and self._owner() is not None

    def detach(self) -> None:
        """The list was mutated or dropped: close, unless a call still runs."""
        self._owner = None
        if not self.busy:
            self.close()

    def absorb(self, refs: Iterable[Ref]) -> None:
        """Mark the slots of refs that Ray reported ready."""
        for ref in refs:
            self.known_ready.add(ref)
            for index in self.slots.pop(ref):
                heapq.heappush(self.ready, index)

    def resolved(self, index: int, value: Any) -> None:
        """An awaitable slot produced ``value`` (a ref, or a plain ready value)."""
        self.unresolved.discard(index)
        self.entries[bisect_left(self.alive, index)] = value
        if not isinstance(value, ray.ObjectRef) or value in self.known_ready:
            heapq.heappush(self.ready, index)
        elif self.slots.add(value, index):
            self.watcher.watch((value,))

    @property
    def count(self) -> int:
        return len(self.ready)

    async def wait_for(self, num_returns: int) -> None:
        """Take Ray's reports until ``num_returns`` slots are ready."""
        await take_reports(
            self.watcher, self.absorb, until=lambda: self.count >= num_returns
        )

    def take(self, num_returns: int) -> tuple[list[Any], Remaining]:
        """Remove the first ``num_returns`` ready slots: ``(ready, remaining)``."""
        self.absorb(self.watcher.take_arrived())
        heap = self.ready
        chosen = [heapq.heappop(heap) for _ in range(min(num_returns, len(heap)))]
        alive = self.alive
        positions = [bisect_left(alive, index) for index in chosen]
        entries = self.entries
        ready = [entries[p] for p in positions]
        runs = _runs(positions)
        if len(runs) <= RUNS_IN_PLACE_MAX:
            for start, stop in reversed(runs):
                del entries[start:stop]
                del alive[start:stop]
        else:
            self.entries = entries = _without(entries, runs)
            self.alive = alive = _without(alive, runs)
        for index in self.unresolved:
            entries[bisect_left(alive, index)] = None
        return ready, Remaining(entries)

    def hand_out(self, num_returns: int, keep: bool) -> tuple[list[Any], list[Any]]:
        """:meth:`take`, then keep this state on ``remaining`` or close it."""
        ready, remaining = self.take(num_returns)
        self._hand_over(remaining, keep)
        return ready, remaining

    def _hand_over(self, remaining: Remaining, keep: bool) -> None:
        previous = self._owner() if self._owner is not None else None
        if previous is not None and previous._state is self:
            previous._state = None
        if keep and remaining and not self.unresolved:
            self._owner = weakref.ref(remaining)
            remaining._state = self
        else:
            self._owner = None
            self.close()

    def forget(self) -> None:
        """Detach from the ``remaining`` list and close."""
        owner = self._owner() if self._owner is not None else None
        if owner is not None and owner._state is self:
            owner._state = None
        self._owner = None
        self.close()

    def close(self) -> None:
        self.watcher.close()


def _runs(positions: list[int]) -> list[tuple[int, int]]:
    """Ascending distinct ``positions`` as ``(start, stop)`` runs of neighbours."""
    runs: list[tuple[int, int]] = []
    for p in positions:
        if runs and runs[-1][1] == p:
            runs[-1] = (runs[-1][0], p + 1)
        else:
            runs.append((p, p + 1))
    return runs


def _without(items: S, runs: list[tuple[int, int]]) -> S:
    """``items`` without the ``runs``, built from slices in one pass."""
    kept = items[:0]
    start = 0
    for run_start, run_stop in runs:
        kept += items[start:run_start]
        start = run_stop
    kept += items[start:]
    return kept


def state_of(items: object) -> WaitState | None:
    """The state a ``remaining`` list carries, if ``items`` is one."""
    return items._state if isinstance(items, Remaining) else None


class Remaining(list):  # type: ignore[type-arg]
    """The ``remaining`` list of a ``wait``: a plain list that remembers readiness.

    Any mutation forgets that (and withdraws its registrations with Ray).
    """

    _state: WaitState | None = None

    def _forget(self) -> None:
        state, self._state = self._state, None
        if state is not None:
            state.detach()

    def __del__(self) -> None:
        try:
            self._forget()
        except Exception:  # interpreter shutdown: Ray may already be gone
            pass

    def __reduce__(self) -> Any:
        return (list, (list(self),))


def _forgetting(name: str) -> Callable[..., Any]:
    plain = getattr(list, name)

    def method(self: Remaining, *args: Any, **kwargs: Any) -> Any:
        self._forget()
        return plain(self, *args, **kwargs)

    method.__name__ = method.__qualname__ = name
    return method


# Every method of list that changes the list forgets the state first.
for _name in (
    *("__setitem__", "__delitem__", "__iadd__", "__imul__", "append", "extend"),
    *("insert", "pop", "remove", "clear", "sort", "reverse"),
):
    setattr(Remaining, _name, _forgetting(_name))
