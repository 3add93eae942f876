"""open_channel: handles held by tasks and actors that die without closing them.

A dead holder stops renewing its handles' leases; the channel closes them
``holder_timeout`` seconds later, so receivers see ``EndOfStream`` (or
senders ``BrokenResourceError``) instead of waiting for ever.
"""

from __future__ import annotations

import os
import time
from typing import Any

import anyio
import pytest
import ray

import ray_anyio
from ray_anyio import ChannelReceiver, ChannelSender

from .helpers import remote_actor, start

pytestmark = pytest.mark.anyio

LEASE = 1.0


@ray.remote(max_retries=0)
def send_then_die(send: ChannelSender[int], n: int) -> None:
    for i in range(n):
        send.send_sync(i)
    os._exit(1)


@ray.remote(max_retries=0)
def receive_one_then_die(receive: ChannelReceiver[int]) -> None:
    receive.receive_sync()
    os._exit(1)


@ray.remote(max_retries=0)
def idle_then_send(send: ChannelSender[int], seconds: float) -> None:
    """Hold a sender for several leases without using it, then send."""
    with send:
        time.sleep(seconds)  # the work of this task: being slow
        send.send_sync(42)


@remote_actor(num_cpus=0)
class Holder:
    """An async actor that keeps a sender, sending on asyncio."""

    def __init__(self) -> None:
        self.send: ChannelSender[int] | None = None

    async def take(self, send: ChannelSender[int]) -> None:
        self.send = send
        await send.send(7)


async def test_a_task_that_dies_with_a_sender_ends_the_stream() -> None:
    async with ray_anyio.open_channel(8, holder_timeout=LEASE) as (send, receive):
        ref = send_then_die.remote(send, 3)
        await send.aclose()
        with anyio.fail_after(60):
            items = [item async for item in receive]
        # The first send waited for its answer; the ones sent on credit
        # after it may still have been in the process when it died.
        assert items == list(range(len(items)))
        assert items[:1] == [0]
        with pytest.raises(ray.exceptions.WorkerCrashedError):
            await ray_anyio.get(ref)


async def test_an_actor_killed_with_a_sender_ends_the_stream() -> None:
    actor = start(Holder)
    async with ray_anyio.open_channel(8, holder_timeout=LEASE) as (send, receive):
        await ray_anyio.get(actor.take.remote(send))
        await send.aclose()
        assert await receive.receive() == 7
        assert receive.statistics().open_send_streams == 1
        ray.kill(actor)
        with anyio.fail_after(60), pytest.raises(anyio.EndOfStream):
            await receive.receive()


async def test_a_task_that_dies_with_a_receiver_breaks_the_senders() -> None:
    async with ray_anyio.open_channel(0, holder_timeout=LEASE) as (send, receive):
        ref = receive_one_then_die.remote(receive)
        await receive.aclose()
        await send.send(1)  # a rendezvous: the task has it
        with anyio.fail_after(60), pytest.raises(anyio.BrokenResourceError):
            await send.send(2)
        with pytest.raises(ray.exceptions.WorkerCrashedError):
            await ray_anyio.get(ref)


async def test_a_live_holder_keeps_its_handle_for_many_leases() -> None:
    async with ray_anyio.open_channel(1, holder_timeout=LEASE) as (send, receive):
        ref = idle_then_send.remote(send, 4 * LEASE)
        await send.aclose()
        with anyio.fail_after(60):
            assert [item async for item in receive] == [42]
        await ray_anyio.get(ref)


async def test_a_pickled_handle_counts_until_its_copy_is_closed() -> None:
    async with ray_anyio.open_channel(4) as (send, receive):
        copy: Any = ray.put(send)  # pickled once: one more open sender
        assert send.statistics().open_send_streams == 2
        del copy
        await send.aclose()
        with pytest.raises(anyio.WouldBlock):
            receive.receive_nowait()


async def test_a_short_lease_is_renewed_beside_a_long_one() -> None:
    async with ray_anyio.open_channel(holder_timeout=60):
        async with ray_anyio.open_channel(1, holder_timeout=LEASE) as (send, _):
            await anyio.sleep(4 * LEASE)  # several leases of the second channel
            stats = send.statistics()
            assert (stats.open_send_streams, stats.open_receive_streams) == (1, 1)
