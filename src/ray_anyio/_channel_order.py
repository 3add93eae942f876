"""One sender in the channel's actor: its items, in the order they were sent.

Ray does not keep the order of calls to an async actor (a call may start
before one submitted earlier), so every put of a sender carries its sequence
number, and the items that arrive early wait here for the ones before them.
The room made for the sender's puts ahead (its credit) is counted here too.
"""

from __future__ import annotations

from typing import Any

#: In place of an item that arrived once every receiver had closed.
DROPPED = object()
#: Most slots one reply grants a sender for puts it does not wait for.
CREDIT_CAP = 16384


class SenderState:
    """A sender's sequence, its early items, its credit and its lease."""

    __slots__ = ("credit", "early", "expires", "next_seq")

    def __init__(self, expires: float) -> None:
        self.next_seq = 0  # the sequence number of the next item to go in
        self.early: dict[int, Any] = {}  # arrived before an earlier one
        self.credit = 0  # room the actor has made for puts not waited for
        self.expires = expires  # when its lease runs out (time.monotonic())

    def grant(self, room: float) -> int:
        """Make room for this sender's next puts: all of ``room``, at most the cap."""
        grant = int(min(max(room, 0), CREDIT_CAP))
        self.credit += grant
        return grant

    def arrived(self, first: int, items: list[Any], keep: bool) -> list[Any]:
        """Items numbered from ``first`` have arrived: those that may go in now.

        ``keep``: false once every receiver has closed (they are dropped).
        """
        if first == self.next_seq and not self.early and keep:
            self.next_seq += len(items)  # the common case: nothing to reorder
            return items
        for seq, item in enumerate(items, first):
            self.early[seq] = item if keep else DROPPED
        return self.in_order()

    def in_order(self) -> list[Any]:
        """Take the items that may go in now, in order (dropped ones left out)."""
        items = []
        while self.next_seq in self.early:
            item = self.early.pop(self.next_seq)
            self.next_seq += 1
            if item is not DROPPED:
                items.append(item)
        return items

    def leftovers(self) -> list[Any]:
        """Take every early item, in order, gaps and all (the sender is gone)."""
        items = [item for _, item in sorted(self.early.items()) if item is not DROPPED]
        self.early.clear()
        return items
