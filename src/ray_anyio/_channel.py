"""``open_channel``: a memory object stream between Ray tasks, actors and the driver."""

from __future__ import annotations

import math
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from numbers import Real
from typing import Any

import ray

from ._channel_actor import ChannelActor
from ._channel_handle import Channel, forget, new_id
from ._channel_receive import ChannelReceiver
from ._channel_send import ChannelSender
from ._core import _ray
from ._core._block import Block
from ._core._checks import check_count, check_timeout

__all__ = ["ChannelReceiver", "ChannelSender", "open_channel"]

# ray.remote as a plain callable: its stubs know no actor options.
_remote: Any = ray.remote
#: Parked calls wait in the actor: no limit on them but memory.
_ACTOR: Any = _remote(num_cpus=0, max_concurrency=100_000, max_restarts=0)(ChannelActor)


def open_channel(
    max_buffer_size: float = 0,
    *,
    receive_batch: int = 4096,
    holder_timeout: float = 30.0,
) -> Block[tuple[ChannelSender[Any], ChannelReceiver[Any]]]:
    """A channel backed by one Ray actor that lives exactly as long as the block.

    ``async with open_channel(16) as (send, receive):`` gives a sender and a
    receiver with the semantics of AnyIO's memory object streams: ``send``
    waits while ``max_buffer_size`` items are buffered (``0``: until a
    receiver takes the item; ``math.inf``: never), ``EndOfStream`` once every
    sender is closed and the buffer is empty, ``BrokenResourceError`` for a
    sender once every receiver is closed. Both handles pickle into Ray tasks
    and actors; each copy (and each ``clone()``) must be closed by its holder.
    Synchronous code uses ``send_sync`` and ``receive_sync``.

    Nothing is lost or delivered twice under cancellation; see
    :meth:`ChannelSender.send` and :meth:`ChannelReceiver.receive`.

    A handle whose holder dies without closing it is closed by the channel
    once ``holder_timeout`` seconds pass without the lease renewal that every
    process holding handles sends (a thread, every ``holder_timeout / 4``
    seconds). A receiver's items taken but not handed out die with it. A
    handle pickled into a task must reach a live process within
    ``holder_timeout``.

    Leaving the block kills the actor, whatever the exit: the items still
    buffered are dropped, and every handle left in a task or actor raises
    ``BrokenResourceError``.

    Args:
        max_buffer_size: items the channel holds before ``send`` waits.
        receive_batch: most buffered items one receive call takes; a
            receiver that gets a full batch asks for the next one ahead, so
            it holds at most twice as many (none ahead when 1).
        holder_timeout: seconds without a lease renewal before a handle
            counts as closed.

    Raises:
        TypeError: an argument is not a number (``receive_batch``: an int).
        ValueError: ``max_buffer_size`` is negative or a fraction,
            ``receive_batch`` is below 1 or ``holder_timeout`` is not positive.
        ray.exceptions.RaySystemError: Ray is not running (on entering).

    Example::

        async with ray_anyio.open_channel(16) as (send, receive):
            producer.remote(send)  # a task that calls send.send_sync(...)
            await send.aclose()
            async for item in receive:
                ...
    """
    size = _check_size(max_buffer_size)
    batch = check_count(receive_batch, "receive_batch")
    lease = check_timeout(holder_timeout, "holder_timeout")
    if lease is None or lease == 0 or math.isinf(lease):
        raise ValueError(
            "holder_timeout must be a positive, finite number of seconds, got "
            f"{holder_timeout!r}"
        )
    return Block(_block(size, batch, lease), "open_channel")


@asynccontextmanager
async def _block(
    size: float, batch: int, lease: float
) -> AsyncIterator[tuple[ChannelSender[Any], ChannelReceiver[Any]]]:
    _ray.require_ray()
    sid, rid = new_id(), new_id()
    actor = _ACTOR.remote(size, lease, sid, rid)
    channel = Channel(actor, new_id(), lease, batch)
    sender: ChannelSender[Any] = ChannelSender(channel, sid)
    receiver: ChannelReceiver[Any] = ChannelReceiver(channel, rid)
    try:
        yield sender, receiver
    finally:
        forget(sender)
        forget(receiver)
        if _ray.ray_is_running():
            _ray.kill(actor)


def _check_size(value: float) -> float:
    if isinstance(value, bool) or not isinstance(value, Real):
        raise TypeError(
            f"max_buffer_size must be an int or math.inf, got {type(value).__name__}"
        )
    if value != math.inf and (value < 0 or value != int(value)):
        raise ValueError(
            f"max_buffer_size must be a non-negative int or math.inf, got {value!r}"
        )
    return float(value) if value == math.inf else int(value)
