"""open_channel: AnyIO's memory object stream semantics, across Ray processes."""

from __future__ import annotations

import math
from typing import Any

import anyio
import pytest
import ray

import ray_anyio
from ray_anyio import ChannelReceiver, ChannelSender

from .helpers import remote_actor, start

pytestmark = pytest.mark.anyio


@ray.remote(max_retries=0)
def produce(send: ChannelSender[int], n: int, first: int) -> int:
    with send:
        for i in range(first, first + n):
            send.send_sync(i)
    return n


@ray.remote(max_retries=0)
def consume(receive: ChannelReceiver[int]) -> list[int]:
    with receive:
        return list(receive)


@ray.remote(max_retries=0)
def receive_with_timeout(receive: ChannelReceiver[int], timeout: float) -> str:
    with receive:
        try:
            receive.receive_sync(timeout=timeout)
        except TimeoutError:
            return "timeout"
        return "item"


@ray.remote(max_retries=0)
def send_with_timeout(send: ChannelSender[int], item: int, timeout: float) -> str:
    with send:
        try:
            send.send_sync(item, timeout=timeout)
        except TimeoutError:
            return "timeout"
        return "sent"


@ray.remote(max_retries=0)
def wait_for_the_channel(receive: ChannelReceiver[int], ready: Any) -> str:
    ray.get(ready.open.remote("waiting"))
    try:
        receive.receive_sync(timeout=60)
    except anyio.BrokenResourceError:
        return "broken"
    return "no error"


@remote_actor(num_cpus=0)
class Doubler:
    """An async actor that receives, doubles and sends on (on asyncio)."""

    async def run(self, receive: ChannelReceiver[int], send: ChannelSender[int]) -> int:
        n = 0
        async with receive, send:
            async for item in receive:
                await send.send(2 * item)
                n += 1
        return n


async def test_items_in_order_then_end_of_stream() -> None:
    async with ray_anyio.open_channel(4) as (send, receive):
        async with send:
            for i in range(3):
                await send.send(i)
        assert [item async for item in receive] == [0, 1, 2]
        with pytest.raises(anyio.EndOfStream):
            await receive.receive()


async def test_a_task_sends_to_the_driver() -> None:
    async with ray_anyio.open_channel(8) as (send, receive):
        ref = produce.remote(send, 100, 0)
        await send.aclose()
        assert [item async for item in receive] == list(range(100))
        assert await ray_anyio.get(ref) == 100


async def test_a_long_stream_stays_in_order_across_credit_top_ups() -> None:
    # 40,000 sends on credit: the sender asks for more room ahead every
    # 8,192 (half of a grant), and never waits for an answer to a put.
    n = 40_000
    async with ray_anyio.open_channel(math.inf) as (send, receive):
        ref = produce.remote(send, n, 0)
        await send.aclose()
        got = [batch async for batch in receive.batches()]
        assert [item for batch in got for item in batch] == list(range(n))
        assert await ray_anyio.get(ref) == n


async def test_the_driver_sends_to_a_task_on_the_other_node() -> None:
    async with ray_anyio.open_channel(0) as (send, receive):
        ref = consume.options(resources={"remote": 1}).remote(receive)
        await receive.aclose()
        async with send:
            for i in range(20):
                await send.send(i)
        assert await ray_anyio.get(ref) == list(range(20))


async def test_an_actor_between_two_channels() -> None:
    actor = start(Doubler)
    try:
        async with ray_anyio.open_channel(4) as (send, receive):
            async with ray_anyio.open_channel(4) as (out_send, out_receive):
                ref = actor.run.remote(receive, out_send)
                await receive.aclose()
                await out_send.aclose()

                async def feed() -> None:
                    async with send:
                        for i in range(10):
                            await send.send(i)

                async with anyio.create_task_group() as tg:
                    tg.start_soon(feed)
                    got = [x async for x in out_receive]
                assert got == [2 * i for i in range(10)]
                assert await ray_anyio.get(ref) == 10
    finally:
        ray.kill(actor)


async def test_several_senders_in_tasks_then_end_of_stream() -> None:
    async with ray_anyio.open_channel(math.inf) as (send, receive):
        refs = [produce.remote(send, 50, 100 * k) for k in range(3)]
        await send.aclose()
        items = [item async for item in receive]
        assert sorted(items) == sorted(i + 100 * k for k in range(3) for i in range(50))
        for k in range(3):  # each sender's items in its order
            mine = [i for i in items if 100 * k <= i < 100 * k + 50]
            assert mine == list(range(100 * k, 100 * k + 50))
        assert await ray_anyio.get(refs) == [50, 50, 50]


async def test_send_waits_while_the_buffer_is_full() -> None:
    async with ray_anyio.open_channel(2) as (send, receive):
        await send.send(0)
        await send.send(1)
        with pytest.raises(anyio.WouldBlock):
            send.send_nowait(2)
        done = anyio.Event()

        async def send_third() -> None:
            await send.send(2)
            done.set()

        async with anyio.create_task_group() as tg:
            tg.start_soon(send_third)
            with anyio.fail_after(30):
                while send.statistics().tasks_waiting_send < 1:
                    await anyio.sleep(0.01)
            assert not done.is_set()
            assert await receive.receive() == 0
        assert [receive.receive_nowait() for _ in range(2)] == [1, 2]


async def test_a_rendezvous_needs_both_sides() -> None:
    async with ray_anyio.open_channel(0) as (send, receive):
        with pytest.raises(anyio.WouldBlock):
            send.send_nowait(1)
        with pytest.raises(anyio.WouldBlock):
            receive.receive_nowait()
        async with anyio.create_task_group() as tg:
            tg.start_soon(send.send, 7)
            assert await receive.receive() == 7
        assert receive.statistics().current_buffer_used == 0


async def test_sync_calls_time_out_and_take_nothing() -> None:
    async with ray_anyio.open_channel(0) as (send, receive):
        assert await ray_anyio.get(receive_with_timeout.remote(receive, 0.2)) == (
            "timeout"
        )
        assert await ray_anyio.get(send_with_timeout.remote(send, 3, 0.2)) == (
            "timeout"
        )
        stats = send.statistics()
        assert stats.current_buffer_used == 0
        assert stats.tasks_waiting_receive == stats.tasks_waiting_send == 0
        assert stats.open_send_streams == stats.open_receive_streams == 1
        with pytest.raises(anyio.WouldBlock):
            receive.receive_nowait()


async def test_leaving_the_block_ends_the_channel_for_its_holders(gate: Any) -> None:
    ref = None
    with pytest.raises(ValueError, match="boom"):
        async with ray_anyio.open_channel(0) as (_, receive):
            ready = gate.actor
            ref = wait_for_the_channel.remote(receive, ready)
            await ray_anyio.get(ready.value_after.remote("waiting", None))
            raise ValueError("boom")
    assert await ray_anyio.get(ref) == "broken"


async def test_bad_arguments_name_the_argument() -> None:
    with pytest.raises(TypeError, match="max_buffer_size"):
        ray_anyio.open_channel("1")  # type: ignore[arg-type]
    with pytest.raises(ValueError, match="max_buffer_size"):
        async with ray_anyio.open_channel(-1):
            pass
    with pytest.raises(ValueError, match="max_buffer_size"):
        async with ray_anyio.open_channel(1.5):
            pass
    with pytest.raises(ValueError, match="receive_batch"):
        async with ray_anyio.open_channel(receive_batch=0):
            pass
    with pytest.raises(ValueError, match="holder_timeout"):
        async with ray_anyio.open_channel(holder_timeout=0):
            pass
    async with ray_anyio.open_channel() as (send, receive):
        with pytest.raises(TypeError, match="timeout"):
            send.send_sync(1, timeout="1")  # type: ignore[arg-type]
        with pytest.raises(ValueError, match="timeout"):
            receive.receive_sync(timeout=-1)
