"""open_channel's handles: clones, closing, the end of the stream, statistics."""

from __future__ import annotations

import math
from typing import Any

import anyio
import pytest

import ray_anyio
from ray_anyio import ChannelSender
from ray_anyio._core import _wakeup

pytestmark = pytest.mark.anyio


async def until_buffered(handle: ChannelSender[Any], n: int) -> None:
    """Return once ``n`` items are in the channel (sends on credit travel)."""
    with anyio.fail_after(30):
        while handle.statistics().current_buffer_used < n:
            await anyio.sleep(0.01)


async def test_end_of_stream_once_every_clone_is_closed() -> None:
    async with ray_anyio.open_channel(4) as (send, receive):
        other = send.clone()
        await send.aclose()
        with pytest.raises(anyio.WouldBlock):
            receive.receive_nowait()
        await other.send(5)
        await other.aclose()
        assert await receive.receive() == 5
        with pytest.raises(anyio.EndOfStream):
            receive.receive_nowait()


async def test_broken_once_every_receiver_is_closed() -> None:
    async with ray_anyio.open_channel(4) as (send, receive):
        other = receive.clone()
        await receive.aclose()
        await send.send(1)
        await other.aclose()
        # Sends the channel had made room for ahead may still return (their
        # items are dropped); the buffer's size at most.
        with pytest.raises(anyio.BrokenResourceError):
            for i in range(5):
                await send.send(i)
        with pytest.raises(anyio.BrokenResourceError):
            send.send_nowait(2)
        assert send.statistics().current_buffer_used == 0


async def test_a_waiting_sender_is_broken_when_the_receivers_close() -> None:
    async with ray_anyio.open_channel(0) as (send, receive):
        async with anyio.create_task_group() as tg:
            tg.start_soon(receive.aclose)
            with pytest.raises(anyio.BrokenResourceError):
                with anyio.fail_after(30):
                    await send.send(1)


async def test_a_closed_handle_raises_closed() -> None:
    async with ray_anyio.open_channel(4) as (send, receive):
        await send.aclose()
        await send.aclose()  # twice is fine
        await receive.aclose()
        with pytest.raises(anyio.ClosedResourceError):
            await send.send(1)
        with pytest.raises(anyio.ClosedResourceError):
            send.send_nowait(1)
        with pytest.raises(anyio.ClosedResourceError):
            await receive.receive()
        with pytest.raises(anyio.ClosedResourceError):
            receive.receive_nowait()
        with pytest.raises(anyio.ClosedResourceError):
            send.clone()
        with pytest.raises(anyio.ClosedResourceError):
            receive.statistics()


async def test_statistics_count_handles_and_items() -> None:
    async with ray_anyio.open_channel(5) as (send, receive):
        other = receive.clone()
        await send.send(1)
        stats = send.statistics()
        assert stats.current_buffer_used == 1
        assert stats.max_buffer_size == 5
        assert stats.open_send_streams == 1
        assert stats.open_receive_streams == 2
        assert stats.tasks_waiting_send == 0
        assert stats.tasks_waiting_receive == 0
        await other.aclose()
        assert send.statistics().open_receive_streams == 1


async def test_a_closed_receiver_puts_its_batch_back() -> None:
    async with ray_anyio.open_channel(10) as (send, receive):
        for i in range(5):
            await send.send(i)
        await until_buffered(send, 5)  # sends on credit may still be on their way
        other = receive.clone()
        assert await other.receive() == 0  # takes the batch 0..4
        assert send.statistics().current_buffer_used == 0
        await other.aclose()
        assert [receive.receive_nowait() for _ in range(4)] == [1, 2, 3, 4]


async def until_buffered_at_most(handle: ChannelSender[Any], n: int) -> None:
    """Return once at most ``n`` items are left in the channel's buffer."""
    with anyio.fail_after(30):
        while handle.statistics().current_buffer_used > n:
            await anyio.sleep(0.01)


async def test_a_full_batch_takes_the_next_one_ahead() -> None:
    async with ray_anyio.open_channel(math.inf, receive_batch=4) as (send, receive):
        for i in range(20):
            await send.send(i)
        await until_buffered(send, 20)
        taker = receive.clone()
        assert await taker.receive() == 0  # 0..3 in hand, 4..7 asked for ahead
        await until_buffered_at_most(send, 12)
        # Closing puts both back, the batch in hand ahead of the one taken
        # ahead: the next receiver gets every item, in order.
        await taker.aclose()
        assert send.statistics().current_buffer_used == 19
        await send.aclose()
        assert [item async for item in receive] == list(range(1, 20))


async def test_two_tasks_share_the_last_item_in_hand(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    # Every step yields to the other tasks: both receives see the item in
    # hand, and the one that resumes second must find it gone.
    monkeypatch.setattr(_wakeup, "SCHEDULE_INTERVAL", 0.0)
    async with ray_anyio.open_channel(math.inf, receive_batch=2) as (send, receive):
        await send.send(0)
        await send.send(1)
        await until_buffered(send, 2)
        assert await receive.receive() == 0  # 1 in hand
        got: list[int] = []

        async def take() -> None:
            got.append(await receive.receive())

        with anyio.fail_after(30):
            async with anyio.create_task_group() as tg:
                tg.start_soon(take)
                tg.start_soon(take)
                await send.send(2)  # for whichever finds the one in hand gone
        assert sorted(got) == [1, 2]


async def test_batches_hand_out_what_each_call_brought() -> None:
    async with ray_anyio.open_channel(math.inf, receive_batch=4) as (send, receive):
        for i in range(10):
            await send.send(i)
        await send.aclose()
        assert await receive.receive() == 0  # mixes with receive: 1..3 in hand
        batches = [batch async for batch in receive.batches()]
        assert batches[0] == [1, 2, 3]
        assert [item for batch in batches for item in batch] == list(range(1, 10))
        assert all(0 < len(batch) <= 4 for batch in batches)
        with pytest.raises(anyio.EndOfStream):
            await receive.receive()


async def test_a_sender_on_credit_learns_that_every_receiver_closed() -> None:
    # An unbounded channel gives a sender 16,384 sends ahead and more before
    # they run out; once the receivers are gone it must stop giving them.
    async with ray_anyio.open_channel(math.inf) as (send, receive):
        await send.send(0)  # answered: room made ahead
        await receive.aclose()
        with anyio.fail_after(120), pytest.raises(anyio.BrokenResourceError):
            for i in range(1, 200_000):
                await send.send(i)
