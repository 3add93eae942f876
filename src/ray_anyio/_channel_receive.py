"""``ChannelReceiver``: the receiving handle of a channel."""

from __future__ import annotations

from collections import deque
from typing import TYPE_CHECKING, Any, Generic, TypeVar

import anyio

from ._channel_calls import MUST, WAIT, Steps, run_async, run_sync
from ._channel_handle import ChannelHandle, new_id
from ._channel_status import CLOSED, EMPTY, END, ITEMS
from ._core._checks import check_timeout
from ._core._results import Batches
from ._core._wakeup import Pace, checkpoint

if TYPE_CHECKING:
    from ._channel_calls import Ref

T = TypeVar("T")


class ChannelReceiver(ChannelHandle, Generic[T]):
    """Receives items from a channel made by :func:`open_channel`.

    As AnyIO's ``MemoryObjectReceiveStream``, across processes: it pickles
    into Ray tasks and actors (each copy is a clone, to be closed by its
    holder). One call to the channel takes up to ``receive_batch`` buffered
    items; the ones not handed out yet wait in this handle and are handed out
    first by its next receives, or go back to the channel when it is closed.
    """

    _kind = "receive"

    def __init__(self, channel: Any, hid: str) -> None:
        super().__init__(channel, hid)
        self._stash: deque[T] = deque()
        self._acks: list[str] = []  # replies this handle has, to acknowledge
        # The ticket and reply of the call made ahead (see _handed), if any.
        self._ahead: tuple[str, Ref] | None = None
        self._pace = Pace()  # the checkpoints of receives the stash answers

    async def receive(self) -> T:
        """The next item, waiting until there is one.

        A checkpoint (one that finds an item in this handle yields to other
        tasks once its last yield is a millisecond old, as ``map``'s steps).
        Cancellation loses nothing: an item taken for a cancelled call is put
        back at the head of the channel's buffer.

        Raises:
            anyio.EndOfStream: every sender is closed and the buffer is empty.
            anyio.ClosedResourceError: this receiver is closed.
            anyio.BrokenResourceError: the channel has gone.
        """
        if self._stash:
            await self._pace.step()
            # Another task of this loop may have taken the last one meanwhile.
            if self._stash and not self._closed:
                return self._stash.popleft()
        else:
            await checkpoint()
        self._check_open()
        return await run_async(self._receive_steps(park=True))

    def receive_nowait(self) -> T:
        """The next item if there is one at once, else raise ``WouldBlock``.

        Blocks for at most one round trip to the channel's actor.

        Raises:
            anyio.WouldBlock: the buffer is empty and senders are open.
            anyio.EndOfStream: every sender is closed and the buffer is empty.
            anyio.ClosedResourceError: this receiver is closed.
            anyio.BrokenResourceError: the channel has gone.
        """
        self._check_open()
        if self._stash:
            return self._stash.popleft()
        return run_sync(self._receive_steps(park=False), None)

    def receive_sync(self, *, timeout: float | None = None) -> T:
        """The next item, for synchronous code (a plain Ray task), blocking.

        Waits at most ``timeout`` seconds (``None``: for ever). On
        ``TimeoutError`` no item was taken.

        Raises:
            TimeoutError: no item within ``timeout`` seconds.
            anyio.EndOfStream: every sender is closed and the buffer is empty.
            anyio.ClosedResourceError: this receiver is closed.
            anyio.BrokenResourceError: the channel has gone.
            TypeError, ValueError: ``timeout`` is not a non-negative number.
        """
        seconds = check_timeout(timeout)
        self._check_open()
        if self._stash:
            return self._stash.popleft()
        return run_sync(self._receive_steps(park=True), seconds)

    def _receive_steps(self, park: bool) -> Steps[T]:
        ahead, self._ahead = self._ahead, None
        if ahead is not None:
            status, items = yield from self._reply(*ahead)
            # Empty when it was made: items may have come since; ask again.
            if status != EMPTY:
                return self._handed(status, items)
        ticket = new_id()
        status, items = yield from self._reply(ticket, self._call(ticket, park))
        return self._handed(status, items)

    def _call(self, ticket: str, park: bool) -> Ref:
        """Ask the channel for up to a batch of items, reserved under ``ticket``."""
        channel = self._channel
        acks, self._acks = self._acks, []
        ref: Ref = channel.actor.receive.remote(
            self._id, ticket, acks, channel.batch, park, self._take_opened()
        )
        return ref

    def _reply(self, ticket: str, ref: Ref) -> Steps[tuple[str, list[Any]]]:
        """The reply of the call ``ticket``; taken back if the wait is interrupted."""
        try:
            reply: tuple[str, list[Any]] = yield WAIT, ref
        except BaseException:
            # Whatever the actor took for this call goes back to its buffer.
            yield MUST, self._channel.actor.withdraw.remote(ticket)
            raise
        if reply[0] == ITEMS:
            self._acks.append(ticket)
        return reply

    def _handed(self, status: str, items: list[Any]) -> T:
        """The first of a reply's items; the rest wait in the stash.

        A full batch (of more than one item) says more may be waiting in the
        channel: the next batch is asked for at once, without parking (a
        ``receive_nowait`` made ahead), so that its round trip overlaps
        handing this one out.
        """
        if status == ITEMS:
            self._stash.extend(items[1:])
            if len(items) >= self._channel.batch > 1:
                ticket = new_id()
                self._ahead = ticket, self._call(ticket, park=False)
            first: T = items[0]
            return first
        if status == END:
            raise anyio.EndOfStream
        if status == EMPTY:
            raise anyio.WouldBlock
        assert status == CLOSED
        raise anyio.ClosedResourceError("this channel receiver is closed")

    def _close_steps(self) -> Steps[None]:
        ahead, self._ahead = self._ahead, None
        if ahead is not None:
            # Back to the buffer first: the stash goes back ahead of them.
            yield MUST, self._channel.actor.withdraw.remote(ahead[0])
        stash = list(self._stash)
        self._stash.clear()
        acks, self._acks = self._acks, []
        yield (
            MUST,
            self._channel.actor.close.remote(
                self._id, self._kind, self._take_opened(), acks, stash, 0
            ),
        )

    def batches(self) -> Batches[T]:
        """Iterate in lists: each step hands out every item in hand, at least one.

        ``async for batch in receive.batches():`` takes one checkpoint a list
        instead of one an item: a list is what one call to the channel brought
        (up to ``receive_batch`` items), or what is left of it. It ends at
        ``EndOfStream`` and mixes with :meth:`receive`. Cancellation is
        :meth:`receive`'s: a cancelled step leaves its items in the channel.

        Raises:
            anyio.ClosedResourceError: this receiver is closed.
            anyio.BrokenResourceError: the channel has gone.
        """
        return Batches(self)

    async def _next_batch(self) -> list[T]:
        try:
            first = await self.receive()
        except anyio.EndOfStream:
            raise StopAsyncIteration from None
        batch = [first, *self._stash]
        self._stash.clear()
        return batch

    def __aiter__(self) -> ChannelReceiver[T]:
        return self

    async def __anext__(self) -> T:
        """:meth:`receive`, ending the iteration at ``EndOfStream``."""
        # receive()'s path for an item in hand, repeated: one frame fewer for
        # the step every item of an ``async for`` takes.
        if self._stash:
            await self._pace.step()
            if self._stash and not self._closed:
                return self._stash.popleft()
        try:
            return await self.receive()
        except anyio.EndOfStream:
            raise StopAsyncIteration from None

    def __iter__(self) -> ChannelReceiver[T]:
        return self

    def __next__(self) -> T:
        """:meth:`receive_sync`, ending the iteration at ``EndOfStream``."""
        try:
            return self.receive_sync()
        except anyio.EndOfStream:
            raise StopIteration from None
