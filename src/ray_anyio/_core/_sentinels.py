"""Watching many refs through one sentinel per group of neighbours.

A ``get`` of a list needs every ref, not news of each one as it finishes, and
each registration with Ray costs CPU on Ray's callback thread, taken from the
cores the tasks run on. So :class:`Groups` cuts a large set into groups of
neighbouring refs (calls submitted together tend to finish together) and
only the last ref of each group, its *sentinel*, is registered. When a
sentinel is reported, one ``ray.wait(timeout=0)`` over its group
(:meth:`Groups.expand`) finds the members that are ready too; the members
still pending form a smaller group under a new sentinel.

Two rules bound the cost when neighbours do not finish together:

* a group whose sweep finds few of its members ready is broken up and its
  members are watched one by one from then on, so refs that finish in
  reverse order cost one sweep more, not a sweep per ref;
* the owner sweeps every member when ``sweep_at`` has passed
  (:meth:`Groups.sweep`), whether or not other groups are reporting, so a
  failed member is seen even while its sentinel is still running. The
  interval grows with the cost of a sweep, so sweeping stays a small share
  of one core.

The figures behind the constants are on the performance page.
"""

from __future__ import annotations

import math
import time
from collections.abc import Sequence
from typing import TYPE_CHECKING, Any

import anyio
import anyio.lowlevel

from ._readiness import split_ready

if TYPE_CHECKING:
    import ray

    Ref = ray.ObjectRef[Any]

#: Sets of at least this many refs are watched in groups (smaller ones ref by ref).
GROUP_FROM = 256
#: Refs per group.
GROUP_SIZE = 128
#: A group whose sweep finds more than this share still pending is broken up.
BREAK_UP_ABOVE = 0.75
#: The shortest time between two sweeps of every member, in seconds.
SWEEP_EVERY_MIN = 0.5
#: A sweep of all members may take this share of the time between sweeps.
SWEEP_SHARE = 0.02
#: Refs per ``ray.wait`` in a sweep; the loop gets a turn between chunks.
SWEEP_CHUNK = 1000


class Groups:
    """The members of each group, by sentinel; all bookkeeping, no registrations.

    The owner registers the sentinels that :meth:`split` and :meth:`expand`
    return, and hands every reported sentinel to :meth:`expand`.
    """

    __slots__ = ("_fetch_local", "_members", "sweep_at", "sweep_every")

    def __init__(self, *, fetch_local: bool) -> None:
        self._fetch_local = fetch_local
        self._members: dict[Ref, list[Ref]] = {}
        #: Seconds between two sweeps of all members.
        self.sweep_every = SWEEP_EVERY_MIN
        #: When the next sweep is due, in the loop's clock; set by :meth:`due`.
        self.sweep_at = math.inf

    def __len__(self) -> int:
        """How many members (sentinels not counted) are still pending."""
        return sum(map(len, self._members.values()))

    def __bool__(self) -> bool:
        return any(self._members.values())

    def split(self, refs: Sequence[Ref]) -> list[Ref]:
        """Group distinct ``refs``; return the sentinels to register."""
        sentinels = []
        for start in range(0, len(refs), GROUP_SIZE):
            members = list(refs[start : start + GROUP_SIZE])
            sentinel = members.pop()
            self._members[sentinel] = members
            sentinels.append(sentinel)
        return sentinels

    def expand(self, reported: list[Ref]) -> tuple[list[Ref], list[Ref]]:
        """Return (members ready with the ``reported`` sentinels, refs to register).

        The second list holds the new sentinels, and the members of groups
        broken up for being unproductive.
        """
        groups = [
            members for ref in reported if (members := self._members.pop(ref, None))
        ]
        if not groups:
            return [], []
        candidates = [ref for members in groups for ref in members]
        ready, still = split_ready(candidates, fetch_local=self._fetch_local)
        if not still:
            return ready, []
        pending = set(still)
        to_register = []
        for members in groups:
            left = [ref for ref in members if ref in pending]
            if not left:
                continue
            if len(left) > BREAK_UP_ABOVE * len(members):
                to_register.extend(left)  # watched one by one from now on
            else:
                sentinel = left.pop()
                if left:
                    self._members[sentinel] = left
                to_register.append(sentinel)
        return ready, to_register

    def due(self) -> bool:
        """Whether members are pending and their sweep is due."""
        now = anyio.current_time()
        if self.sweep_at == math.inf:
            self.sweep_at = now + self.sweep_every
        return now >= self.sweep_at and bool(self)

    async def sweep(self) -> list[Ref]:
        """Take every member that is ready now, in chunks with checkpoints between.

        The checkpoints are shielded: a cancellation is taken later, by the
        caller, never between taking members and returning them.
        """
        started = time.perf_counter()
        ready: list[Ref] = []
        candidates = [ref for members in self._members.values() for ref in members]
        for start in range(0, len(candidates), SWEEP_CHUNK):
            if start:
                await anyio.lowlevel.cancel_shielded_checkpoint()
            chunk = candidates[start : start + SWEEP_CHUNK]
            ready += split_ready(chunk, fetch_local=self._fetch_local)[0]
        if ready:
            taken = set(ready)
            for sentinel, members in self._members.items():
                self._members[sentinel] = [ref for ref in members if ref not in taken]
        elapsed = time.perf_counter() - started
        self.sweep_every = max(SWEEP_EVERY_MIN, elapsed / SWEEP_SHARE)
        self.sweep_at = anyio.current_time() + self.sweep_every
        return ready
