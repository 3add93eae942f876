"""What a channel's two kinds of handle share: identity, clones, pickling, close.

A handle is one id registered with the channel's actor. Cloning, or pickling
into a Ray task or actor, makes a new id: each copy counts as an open sender
(or receiver) until it is closed or its lease runs out.
"""

from __future__ import annotations

import uuid
from types import TracebackType
from typing import Any, ClassVar, TypeVar

import anyio
from anyio.streams.memory import MemoryObjectStreamStatistics

from . import _channel_lease
from ._channel_calls import MUST, Steps, run_async, run_sync
from ._core._wakeup import checkpoint

H = TypeVar("H", bound="ChannelHandle")


class Channel:
    """What every handle of one channel knows: its actor and its settings."""

    __slots__ = ("actor", "batch", "key", "lease")

    def __init__(self, actor: Any, key: str, lease: float, batch: int) -> None:
        self.actor = actor
        self.key = key
        self.lease = lease
        self.batch = batch

    def __reduce__(self) -> Any:
        return Channel, (self.actor, self.key, self.lease, self.batch)


def new_id() -> str:
    """A new id of a handle, a ticket or a channel."""
    return uuid.uuid4().hex


def forget(handle: ChannelHandle) -> None:
    """Close ``handle`` without telling its channel (whose actor is killed)."""
    handle._mark_closed()


class ChannelHandle:
    """The base of :class:`ChannelSender` and :class:`ChannelReceiver`."""

    _kind: ClassVar[str]

    def __init__(self, channel: Channel, hid: str) -> None:
        self._channel = channel
        self._id = hid
        self._closed = False
        #: Clones made from this handle, told to the actor with its next call.
        self._opened: list[tuple[str, str]] = []
        _channel_lease.hold(channel.key, channel.actor, channel.lease, hid)

    def _take_opened(self) -> list[tuple[str, str]]:
        opened, self._opened = self._opened, []
        return opened

    def _check_open(self) -> None:
        if self._closed:
            raise anyio.ClosedResourceError(f"this channel {self._kind}er is closed")

    def _new_clone_id(self) -> str:
        self._check_open()
        hid = new_id()
        self._opened.append((hid, self._kind))
        # Told at once too, not waited for: the copy's holder may call first.
        self._channel.actor.open.remote([(hid, self._kind)])
        return hid

    def clone(self: H) -> H:
        """A new handle of the same kind, open until closed itself.

        Every clone must be closed before receivers see ``EndOfStream`` (for
        senders) or senders ``BrokenResourceError`` (for receivers). Pickling a
        handle into a Ray task or actor clones it the same way.

        Raises:
            anyio.ClosedResourceError: this handle is closed.
        """
        return type(self)(self._channel, self._new_clone_id())

    def __reduce__(self) -> Any:
        return type(self), (self._channel, self._new_clone_id())

    # --- closing -----------------------------------------------------------------
    def _close_steps(self) -> Steps[None]:
        """The steps that close this handle (each kind of handle has its own)."""
        raise NotImplementedError

    def _mark_closed(self) -> bool:
        """Close locally; False if it was closed already."""
        if self._closed:
            return False
        self._closed = True
        _channel_lease.release(self._channel.key, self._id)
        return True

    async def aclose(self) -> None:
        """Close this handle; a checkpoint, done even if cancelled.

        Closing an already closed handle does nothing. The handle tells the
        channel (shielded, one round trip); a channel that has gone is fine.
        """
        if self._mark_closed():
            try:
                await run_async(self._close_steps())
            except anyio.BrokenResourceError:
                pass
        await checkpoint()

    def close(self) -> None:
        """Close this handle, blocking for one round trip to the channel.

        For synchronous code (a plain Ray task); see :meth:`aclose`.
        """
        if self._mark_closed():
            try:
                run_sync(self._close_steps(), None)
            except anyio.BrokenResourceError:
                pass

    def statistics(self) -> MemoryObjectStreamStatistics:
        """The channel's counters, as AnyIO's memory streams report them.

        Blocks for one round trip to the channel's actor. Items a receiver has
        taken in a batch and not handed out yet are not in the buffer count.

        Raises:
            anyio.ClosedResourceError: this handle is closed.
            anyio.BrokenResourceError: the channel has gone.
        """
        self._check_open()
        stats: MemoryObjectStreamStatistics = run_sync(self._statistics_steps(), None)
        return stats

    def _statistics_steps(self) -> Steps[MemoryObjectStreamStatistics]:
        stats = yield MUST, self._channel.actor.statistics.remote(self._take_opened())
        result: MemoryObjectStreamStatistics = stats
        return result

    def __enter__(self: H) -> H:
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.close()

    async def __aenter__(self: H) -> H:
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        await self.aclose()
