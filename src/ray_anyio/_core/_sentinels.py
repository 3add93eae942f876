"""Watching many refs through one sentinel per group of neighbours.

Each registration costs CPU on Ray's callback thread (the tasks' cores), and
a ``get`` of a list needs every ref anyway. So only the last ref of each group
of neighbours (they tend to finish together), its *sentinel*, is registered;
once it is reported, one ``ray.wait(timeout=0)`` finds the ready members.
A group whose sweep finds few ready is broken up (refs finishing in reverse
order cost one sweep more). Every member is swept when ``sweep_at`` has passed,
so a failed one is seen while its sentinel runs. Figures: the performance page.
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
    """The members of each group, by sentinel; all bookkeeping, no registrations."""

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
        """Return (members ready with the ``reported`` sentinels, refs to register)."""
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
        """Take every member ready now, in chunks with shielded checkpoints between.

        A cancellation is taken by the caller, never between taking and returning.
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
