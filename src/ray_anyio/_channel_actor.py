"""The actor behind one channel: its buffer, its open handles, its parked calls.

Every method returns a status and never raises: a call nobody waits for (a
``put_many``, a ``withdraw``) leaves no unhandled error in Ray.

Invariants the handles rely on (see ``docs/channels.md``):

* A receive reply is *reserved* under its ticket until the handle acknowledges
  it (on its next call) or withdraws it (its caller was cancelled): a
  withdrawn reservation goes back to the head of the buffer, in order.
* A ``put`` never parks: it answers ``IN`` or ``FULL`` at once, so that its
  caller may wait for the answer shielded and know where its item is.
* A sender's items enter the buffer in its sequence order, whatever order
  Ray runs its calls in; credited puts (space reserved for that sender) wait
  in ``early`` until the ones before them arrive.
* A handle whose lease runs out is closed as its holder would have closed it,
  except that a receiver's reservations are dropped with it.
"""

from __future__ import annotations

import asyncio
import time
from collections import deque
from typing import Any

from anyio.streams.memory import MemoryObjectStreamStatistics

from ._channel_order import SenderState
from ._channel_status import BROKEN, CLOSED, EMPTY, END, FULL, IN, ITEMS

#: Seconds a withdrawn ticket is remembered in case its call is still to come.
TOMBSTONE = 600.0


class ChannelActor:
    """The state of one channel; made by ``open_channel``, killed by its exit."""

    def __init__(
        self, max_buffer_size: float, lease: float, sender: str, receiver: str
    ) -> None:
        self.max = max_buffer_size
        self.lease = lease
        self.buffer: deque[Any] = deque()
        expires = time.monotonic() + lease
        self.senders: dict[str, SenderState] = {sender: SenderState(expires)}
        self.receivers: dict[str, float] = {receiver: expires}
        self.closed: set[str] = set()
        self.parked: dict[str, tuple[str, int, asyncio.Future[Any]]] = {}
        self.reserved: dict[str, tuple[str, list[Any]]] = {}
        self.room_waiters: dict[str, asyncio.Future[str]] = {}
        self.withdrawn: dict[str, float] = {}  # ticket -> when, for late calls
        self.sweeper: asyncio.Task[None] | None = None

    # --- handles -----------------------------------------------------------------
    def _open(self, hid: str, kind: str) -> None:
        self._start_sweeper()
        if hid in self.closed:
            return
        expires = time.monotonic() + self.lease
        if kind == "send":
            self.senders.setdefault(hid, SenderState(expires))
        else:
            self.receivers.setdefault(hid, expires)

    def _known(self, hid: str, kind: str, opened: list[tuple[str, str]]) -> bool:
        """Register ``opened`` and ``hid``; False if ``hid`` was closed."""
        for other, other_kind in [*opened, (hid, kind)]:
            self._open(other, other_kind)
        return hid not in self.closed

    async def open(self, opened: list[tuple[str, str]]) -> None:
        for hid, kind in opened:
            self._open(hid, kind)

    async def renew(self, ids: list[str]) -> None:
        expires = time.monotonic() + self.lease
        for hid in ids:
            if hid in self.senders:
                self.senders[hid].expires = expires
            elif hid in self.receivers:
                self.receivers[hid] = expires

    async def close(
        self,
        hid: str,
        kind: str,
        opened: list[tuple[str, str]],
        acks: list[str],
        stash: list[Any],
        sent: int,
    ) -> None:
        """Close ``hid``: a receiver's ``stash`` goes back to the buffer's head.

        A sender's close waits for its ``sent`` items still on their way.
        """
        self._known(hid, kind, opened)
        self._ack(acks)
        sender = self.senders.get(hid)
        while sender is not None and sender.next_seq < sent and hid in self.senders:
            await asyncio.sleep(0.001)
        self.buffer.extendleft(reversed(stash))
        self._drop(hid, dead=False)
        self._settle()

    def _drop(self, hid: str, dead: bool) -> None:
        self.closed.add(hid)
        sender = self.senders.pop(hid, None)
        if sender is not None and self.receivers:
            self.buffer.extend(sender.leftovers())
        if self.receivers.pop(hid, None) is not None:
            if not self.receivers:
                self.buffer.clear()
            for ticket, (rid, _, future) in list(self.parked.items()):
                if rid == hid:
                    del self.parked[ticket]
                    future.set_result((CLOSED, []))
            if dead:
                for ticket, (rid, _) in list(self.reserved.items()):
                    if rid == hid:
                        del self.reserved[ticket]

    def _start_sweeper(self) -> None:
        if self.sweeper is None:
            self.sweeper = asyncio.get_running_loop().create_task(self._sweep())

    async def _sweep(self) -> None:
        while True:
            await asyncio.sleep(self.lease / 4)
            now = time.monotonic()
            # A withdrawal whose call finished before it came stays here: kept
            # long past any delivery delay, in case the call is still to come.
            old = [t for t, at in self.withdrawn.items() if at < now - TOMBSTONE]
            for ticket in old:
                del self.withdrawn[ticket]
            dead = [h for h, s in self.senders.items() if s.expires < now]
            dead += [h for h, e in self.receivers.items() if e < now]
            for hid in dead:
                self._drop(hid, dead=True)
            if dead:
                self._settle()

    # --- sending -----------------------------------------------------------------
    def _room(self) -> float:
        if self.max == 0:  # a rendezvous: room for each parked receiver
            return len(self.parked) - len(self.buffer)
        held = sum(s.credit + len(s.early) for s in self.senders.values())
        return self.max - len(self.buffer) - held

    async def put_many(
        self, sid: str, first: int, items: list[Any], opened: list[tuple[str, str]]
    ) -> None:
        """Put items sent on credit in: those of ``sid`` numbered from ``first``."""
        if not self._known(sid, "send", opened):
            return
        sender = self.senders[sid]
        sender.credit -= len(items)
        # Every receiver closed: dropped, as the buffer was (AnyIO's rule).
        self.buffer.extend(sender.arrived(first, items, keep=bool(self.receivers)))
        self._settle()

    async def put(
        self, sid: str, seq: int, item: Any, opened: list[tuple[str, str]]
    ) -> tuple[str, int]:
        """Put ``item`` (the ``seq``-th of ``sid``) in; ``(IN, credit granted)``."""
        if not self._known(sid, "send", opened):
            return CLOSED, 0
        sender = self.senders[sid]
        # Every put takes its sequence number, whatever its answer: wait for
        # the calls before it that Ray runs after it.
        while sender.next_seq < seq:
            await asyncio.sleep(0.001)
            if sid not in self.senders:
                return CLOSED, 0
        sender.next_seq += 1
        answer, grant = self._put_now(sender, item)
        self.buffer.extend(sender.in_order())
        self._settle()
        return answer, grant

    def _put_now(self, sender: SenderState, item: Any) -> tuple[str, int]:
        if not self.receivers:
            return BROKEN, 0
        if self._room() <= 0:
            return FULL, 0
        self.buffer.append(item)
        self._settle()
        return IN, self._grant(sender)

    def _grant(self, sender: SenderState) -> int:
        # A rendezvous has no room to make ahead.
        return 0 if self.max == 0 else sender.grant(self._room())

    async def top_up(self, sid: str, opened: list[tuple[str, str]]) -> int:
        """More room for ``sid`` ahead; none once every receiver has closed."""
        # Then the sender's next put, waited for, tells it so (BROKEN).
        if not self._known(sid, "send", opened) or not self.receivers:
            return 0
        return self._grant(self.senders[sid])

    async def wait_room(self, sid: str, ticket: str) -> str:
        """Return once a ``put`` may fit (``IN``), or ``BROKEN``/``CLOSED``."""
        if self.withdrawn.pop(ticket, None) is not None:
            return CLOSED
        if sid in self.closed:
            return CLOSED
        if not self.receivers:
            return BROKEN
        if self._room() > 0:
            return IN
        future: asyncio.Future[str] = asyncio.get_running_loop().create_future()
        self.room_waiters[ticket] = future
        try:
            return await future
        finally:
            self.room_waiters.pop(ticket, None)

    # --- receiving ---------------------------------------------------------------
    def _ack(self, acks: list[str]) -> None:
        for ticket in acks:
            self.reserved.pop(ticket, None)

    async def receive(
        self,
        rid: str,
        ticket: str,
        acks: list[str],
        batch: int,
        park: bool,
        opened: list[tuple[str, str]],
    ) -> tuple[str, list[Any]]:
        """Up to ``batch`` items, reserved under ``ticket``; parks if ``park``."""
        self._ack(acks)
        if not self._known(rid, "receive", opened):
            return CLOSED, []
        if self.withdrawn.pop(ticket, None) is not None:
            return CLOSED, []
        if self.buffer:
            items = [self.buffer.popleft() for _ in range(min(batch, len(self.buffer)))]
            self.reserved[ticket] = (rid, items)
            self._settle()
            return ITEMS, items
        if not self.senders:
            return END, []
        if not park:
            return EMPTY, []
        future: asyncio.Future[Any] = asyncio.get_running_loop().create_future()
        self.parked[ticket] = (rid, batch, future)
        self._settle()  # a sender waiting on a rendezvous may now put
        result: tuple[str, list[Any]] = await future
        return result

    async def withdraw(self, ticket: str) -> None:
        """Take back a cancelled call: its parked wait, or its reserved items."""
        if (room := self.room_waiters.pop(ticket, None)) is not None:
            return room.set_result(CLOSED)
        parked = self.parked.pop(ticket, None)
        if parked is not None:
            parked[2].set_result((CLOSED, []))
        reserved = self.reserved.pop(ticket, None)
        if reserved is not None:
            self.buffer.extendleft(reversed(reserved[1]))
            self._settle()
        elif parked is None:
            self.withdrawn[ticket] = time.monotonic()

    def _settle(self) -> None:
        """Hand buffered items to parked receivers; wake what may go on."""
        for ticket, (rid, batch, future) in list(self.parked.items()):
            if not self.buffer:
                break
            del self.parked[ticket]
            items = [self.buffer.popleft() for _ in range(min(batch, len(self.buffer)))]
            self.reserved[ticket] = (rid, items)
            future.set_result((ITEMS, items))
        if not self.senders and not self.buffer:
            for _, _, future in self.parked.values():
                future.set_result((END, []))
            self.parked.clear()
        if self.room_waiters and (not self.receivers or self._room() > 0):
            answer = BROKEN if not self.receivers else IN
            for future in self.room_waiters.values():
                if not future.done():
                    future.set_result(answer)
            self.room_waiters.clear()

    async def statistics(
        self, opened: list[tuple[str, str]]
    ) -> MemoryObjectStreamStatistics:
        await self.open(opened)
        early = sum(len(s.early) for s in self.senders.values())
        return MemoryObjectStreamStatistics(
            current_buffer_used=len(self.buffer) + early,
            max_buffer_size=self.max,
            open_send_streams=len(self.senders),
            open_receive_streams=len(self.receivers),
            tasks_waiting_send=len(self.room_waiters),
            tasks_waiting_receive=len(self.parked),
        )
