"""open_channel under cancellation: nothing lost, nothing twice.

The fuzz cancels sends and receives at random moments (seeded), from tasks
of the driver and from plain Ray tasks with random timeouts, and checks that
the items received are exactly the items whose send returned.
"""

from __future__ import annotations

import random
from collections import Counter
from typing import Any

import anyio
import pytest
import ray

import ray_anyio
from ray_anyio import ChannelReceiver, ChannelSender

pytestmark = pytest.mark.anyio

#: Deadlines of a call: none, at once, or a few moments into the round trip.
DELAYS: list[float | None] = [None, 0.0, 0.0002, 0.0005, 0.001, 0.002, 0.005]
SENDERS = 3
ITEMS_PER_SENDER = 300
SYNC_ITEMS = 200


@ray.remote(max_retries=0)
def send_with_timeouts(send: ChannelSender[int], first: int, n: int, seed: int) -> Any:
    """Send ``first..first+n-1`` with random timeouts; return the ones sent."""
    rng = random.Random(seed)
    sent = []
    with send:
        for item in range(first, first + n):
            try:
                send.send_sync(item, timeout=rng.choice([0.0, 0.001, 0.01, None]))
            except TimeoutError:
                continue
            sent.append(item)
    return sent


@ray.remote(max_retries=0)
def receive_with_timeouts(receive: ChannelReceiver[int], seed: int) -> Any:
    """Receive until the end with random timeouts; return what came."""
    rng = random.Random(seed)
    received = []
    with receive:
        while True:
            try:
                received.append(
                    receive.receive_sync(timeout=rng.choice([0.0, 0.001, 0.01, None]))
                )
            except TimeoutError:
                continue
            except anyio.EndOfStream:
                return received


async def _fuzz(seed: int, size: int, batch: int) -> tuple[list[int], list[int]]:
    rng = random.Random(seed)
    sent: list[int] = []
    received: list[int] = []

    def deadline() -> Any:
        delay = rng.choice(DELAYS)
        return anyio.CancelScope() if delay is None else anyio.move_on_after(delay)

    async def sender(send: ChannelSender[int], first: int) -> None:
        async with send:
            for item in range(first, first + ITEMS_PER_SENDER):
                with deadline():
                    await send.send(item)
                    sent.append(item)

    async def receiver(receive: ChannelReceiver[int]) -> None:
        async with receive:
            while True:
                with deadline():
                    try:
                        item = await receive.receive()
                    except anyio.EndOfStream:
                        return
                    received.append(item)

    with anyio.fail_after(240):
        async with ray_anyio.open_channel(size, receive_batch=batch) as (
            send,
            receive,
        ):
            sync_sent = send_with_timeouts.remote(send, 10**6, SYNC_ITEMS, seed)
            sync_received = receive_with_timeouts.remote(receive, seed)
            senders = [send.clone() for _ in range(SENDERS)]
            receivers = [receive.clone() for _ in range(2)]
            await send.aclose()
            await receive.aclose()
            async with anyio.create_task_group() as tg:
                for k, one in enumerate(senders):
                    tg.start_soon(sender, one, 1000 * k)
                for other in receivers:
                    tg.start_soon(receiver, other)
            sent += await ray_anyio.get(sync_sent)
            received += await ray_anyio.get(sync_received)
    return sent, received


# Seed 4: batches fill up, so receivers take the next one ahead (and cancel
# while waiting for it).
@pytest.mark.parametrize(
    ("seed", "size", "batch"), [(1, 0, 1), (2, 3, 4), (3, 16, 64), (4, 64, 4)]
)
async def test_random_cancellations_lose_nothing_and_repeat_nothing(
    seed: int, size: int, batch: int
) -> None:
    sent, received = await _fuzz(seed, size, batch)
    repeated = [item for item, n in Counter(received).items() if n > 1]
    assert not repeated, f"received twice: {repeated[:10]}"
    assert sorted(received) == sorted(sent), (
        f"lost: {sorted(set(sent) - set(received))[:10]}, "
        f"never sent: {sorted(set(received) - set(sent))[:10]}"
    )
    # Both sides were cancelled often enough for the check to mean something.
    total = SENDERS * ITEMS_PER_SENDER + SYNC_ITEMS
    assert 0 < len(sent) < total


async def test_a_cancelled_receive_leaves_its_item_in_the_channel() -> None:
    async with ray_anyio.open_channel(1) as (send, receive):
        async with anyio.create_task_group() as tg:
            tg.start_soon(receive.receive)
            with anyio.fail_after(30):
                while send.statistics().tasks_waiting_receive < 1:
                    await anyio.sleep(0.01)
            tg.cancel_scope.cancel()
        assert send.statistics().tasks_waiting_receive == 0
        await send.send(1)
        assert await receive.receive() == 1


async def test_a_cancelled_send_leaves_nothing_in_the_channel() -> None:
    async with ray_anyio.open_channel(0) as (send, receive):
        with anyio.move_on_after(0.2) as scope:
            await send.send(1)
        assert scope.cancelled_caught
        with anyio.fail_after(30):  # its wait for room is withdrawn, not waited for
            while send.statistics().tasks_waiting_send:
                await anyio.sleep(0.01)
        assert send.statistics().current_buffer_used == 0
        with pytest.raises(anyio.WouldBlock):
            receive.receive_nowait()
