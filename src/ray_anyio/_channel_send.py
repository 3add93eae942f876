"""``ChannelSender``: the sending handle of a channel."""

from __future__ import annotations

import threading
from typing import Any, Generic, TypeVar

import anyio

from ._channel_calls import MUST, WAIT, Steps, run_async, run_sync
from ._channel_handle import ChannelHandle, new_id
from ._channel_outbox import FLUSH_AT, flush_soon
from ._channel_status import BROKEN, CLOSED, IN
from ._core._checks import check_timeout
from ._core._wakeup import Pace, checkpoint

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
        # Items sent on credit, not yet on their way (see _channel_outbox);
        # the lock guards it against the flushing thread.
        self._outbox: list[tuple[int, T]] = []
        self._lock = threading.Lock()
        self._pace = Pace()  # the checkpoints of sends on credit

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
        else:
            await checkpoint()
        self._check_open()
        if not self._send_ahead(item):
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
        self._check_open()
        if not self._send_ahead(item):
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
        self._check_open()
        if not self._send_ahead(item):
            run_sync(self._send_steps(item, wait=True), seconds)

    def _send_steps(self, item: T, wait: bool) -> Steps[None]:
        actor = self._channel.actor
        while True:
            if self._send_ahead(item):
                return
            seq = self._seq
            self._seq += 1
            self._flush()
            ref = actor.put.remote(self._id, seq, item, self._take_opened())
            status, grant = yield MUST, ref
            if status == IN:
                self._credit += grant
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
        """Put ``item`` in the outbox if the channel has made room for it."""
        if self._credit <= 0:
            return False
        # Room made for this sender: the put cannot be refused.
        self._credit -= 1
        seq = self._seq
        self._seq += 1
        with self._lock:
            self._outbox.append((seq, item))
            size = len(self._outbox)
        if size >= FLUSH_AT:
            self._flush()
        elif size == 1:
            flush_soon(self._flush)
        return True

    def _flush(self) -> None:
        """Send the outbox to the channel in one call, not waited for."""
        with self._lock:
            items, self._outbox = self._outbox, []
        if items:
            # The outbox's numbers follow each other: the first and the items
            # go as plain lists (Ray pickles each tuple of a list on its own).
            first = items[0][0]
            values = [item for _, item in items]
            actor = self._channel.actor
            actor.put_many.remote(self._id, first, values, self._take_opened())

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
