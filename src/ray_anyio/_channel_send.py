"""``ChannelSender``: the sending handle of a channel."""

from __future__ import annotations

import threading
from functools import partial
from typing import TYPE_CHECKING, Any, Generic, TypeVar

import anyio

from ._channel_calls import MUST, WAIT, Steps, run_async, run_sync
from ._channel_handle import ChannelHandle, new_id
from ._channel_outbox import FLUSH_AT, flush_soon
from ._channel_status import BROKEN, CLOSED, IN
from ._core._checks import check_timeout
from ._core._wakeup import Pace, checkpoint

if TYPE_CHECKING:
    from ._channel_calls import Ref

T = TypeVar("T")


class ChannelSender(ChannelHandle, Generic[T]):
    """Sends items into a channel made by :func:`open_channel`.

    As AnyIO's ``MemoryObjectSendStream``, across processes: it pickles into
    Ray tasks and actors (each copy is a clone, to be closed by its holder).
    """

    _kind = "send"

    def __init__(self, channel: Any, hid: str) -> None:
        super().__init__(channel, hid)
        self._seq = 0  # the sequence number of this handle's next put
        self._credit = 0  # puts the actor has made room for, not waited for
        # Items sent on credit, not yet on their way (see _channel_outbox),
        # and the sequence number of the first; the lock guards both against
        # the flushing thread.
        self._outbox: list[T] = []
        self._first = 0
        self._flushes = 0  # outboxes sent so far: which one a delayed flush is for
        self._lock = threading.Lock()
        self._pace = Pace()  # the checkpoints of sends on credit
        # The credit at which to ask for more ahead (-1: never), and the
        # answer to that request, not waited for yet (see _granted).
        self._top_up_at = -1
        self._top_up: Ref | None = None

    async def send(self, item: T) -> None:
        """Send ``item``, waiting while the channel's buffer is full.

        A checkpoint (one on credit yields to other tasks once its last yield
        is a millisecond old, as ``map``'s steps). Cancellation is exact: if
        ``send`` raises the cancellation, the item is not in the channel; if
        it returns, the item is in the channel (a cancellation that arrived
        while the channel was taking it is then raised at the caller's next
        checkpoint).

        Raises:
            anyio.BrokenResourceError: every receiver is closed, or the channel
                has gone.
            anyio.ClosedResourceError: this sender is closed.
        """
        if self._credit > 0:
            await self._pace.step()
            if self._send_ahead(item):
                return
        else:
            await checkpoint()
        self._check_open()
        await run_async(self._send_steps(item, wait=True))

    def send_nowait(self, item: T) -> None:
        """Send ``item`` if the buffer has room (or a receiver waits), else raise.

        Blocks for at most one round trip to the channel's actor (none while
        the channel has made room for this sender ahead).

        Raises:
            anyio.WouldBlock: the buffer is full; the item was not sent.
            anyio.BrokenResourceError: every receiver is closed, or the channel
                has gone.
            anyio.ClosedResourceError: this sender is closed.
        """
        if not self._send_ahead(item):
            self._check_open()
            run_sync(self._send_steps(item, wait=False), None)

    def send_sync(self, item: T, *, timeout: float | None = None) -> None:
        """Send ``item`` from synchronous code (a plain Ray task), blocking.

        Waits at most ``timeout`` seconds (``None``: for ever) for room. On
        ``TimeoutError`` the item was not sent.

        Raises:
            TimeoutError: no room within ``timeout`` seconds.
            anyio.BrokenResourceError: every receiver is closed, or the channel
                has gone.
            anyio.ClosedResourceError: this sender is closed.
            TypeError, ValueError: ``timeout`` is not a non-negative number.
        """
        seconds = check_timeout(timeout)
        if not self._send_ahead(item):
            self._check_open()
            run_sync(self._send_steps(item, wait=True), seconds)

    def _send_steps(self, item: T, wait: bool) -> Steps[None]:
        actor = self._channel.actor
        while True:
            if self._send_ahead(item):
                return
            if self._top_up is not None:
                ref, self._top_up = self._top_up, None
                self._granted((yield MUST, ref))  # asked for long ago: here
                continue
            seq = self._seq
            self._seq += 1
            self._flush()
            ref = actor.put.remote(self._id, seq, item, self._take_opened())
            status, grant = yield MUST, ref
            if status == IN:
                self._granted(grant)
                return
            _raise_for(status)
            if not wait:
                raise anyio.WouldBlock
            ticket = new_id()
            try:
                status = yield WAIT, actor.wait_room.remote(self._id, ticket)
            except BaseException:
                actor.withdraw.remote(ticket)  # no item waits with it
                raise
            _raise_for(status)

    def _send_ahead(self, item: T) -> bool:
        """Put ``item`` in the outbox if the channel has made room for it.

        False if it has not, or if this handle is closed (the caller's slow
        path says which). The one path of every send on credit: kept short.
        """
        if self._credit <= 0 or self._closed:
            return False
        # Room made for this sender: the put cannot be refused.
        self._credit -= 1
        if self._credit == self._top_up_at and self._top_up is None:
            self._top_up = self._channel.actor.top_up.remote(
                self._id, self._take_opened()
            )
        with self._lock:
            outbox = self._outbox
            if not outbox:
                self._first = self._seq
            outbox.append(item)
            self._seq += 1
            size = len(outbox)
            flushes = self._flushes
        if size >= FLUSH_AT:
            self._flush()
        elif size == 1:
            flush_soon(partial(self._flush_later, flushes))
        return True

    def _granted(self, grant: int) -> None:
        """The channel made room for ``grant`` more sends ahead.

        A large credit (as an unbounded buffer grants) asks for more once
        half of it is used, not waited for: the answer is there when the
        credit runs out, and a long stream of sends never stops for a round
        trip. A small one (a small buffer) does not: each such call would
        cost the channel's actor as much as the puts it saves.
        """
        self._credit += grant
        self._top_up_at = self._credit // 2 if self._credit >= FLUSH_AT else -1

    def _flush_later(self, outbox: int, last: bool) -> bool:
        """The delayed flush of the ``outbox``-th outbox (see _channel_outbox).

        Nothing if that outbox has gone already; not yet if this sender is busy.
        """
        with self._lock:
            if outbox != self._flushes:
                return True
            busy = len(self._outbox) >= FLUSH_AT // 4
        if busy and not last:
            return False
        self._flush()
        return True

    def _flush(self) -> None:
        """Send the outbox to the channel in one call, not waited for."""
        with self._lock:
            items, self._outbox = self._outbox, []
            first = self._first
            if items:
                self._flushes += 1
        if items:
            actor = self._channel.actor
            actor.put_many.remote(self._id, first, items, self._take_opened())

    def _close_steps(self) -> Steps[None]:
        self._flush()
        yield (
            MUST,
            self._channel.actor.close.remote(
                self._id, self._kind, self._take_opened(), [], [], self._seq
            ),
        )


def _raise_for(status: str) -> None:
    if status == BROKEN:
        raise anyio.BrokenResourceError("every receiver of the channel is closed")
    if status == CLOSED:
        raise anyio.ClosedResourceError("this channel sender is closed")
