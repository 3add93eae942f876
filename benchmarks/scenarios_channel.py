"""Scenarios Q1 and Q2: channels (``open_channel``) against ``ray.util.queue``.

Q1: throughput of 20,000 small items, from a Ray task to the driver and from
the driver to an (async) actor. Contenders: ``open_channel(math.inf)`` on each
backend, received one item a step (``async for item in receive``) and a list
a step (``receive.batches()``); ``ray.util.queue.Queue`` one item per call
(``put`` in the task or ``put_async`` in the driver, ``get_async`` in the
driver or the actor, on asyncio: its async methods are asyncio's); and the
same queue through its batch methods (``put_nowait_batch`` of 1,000 items,
``get_nowait_batch`` of all there is). The clock starts once the channel's
(or queue's) actor answers, and stops when the last item has arrived.

Q2: a pipeline, a producer task -> 2 transforming actors -> the driver, over
two channels of ``max_buffer_size=16``, 100,000 items of 1 KiB: peak bytes in
the object store (sampled every half second) and the driver's RSS before and
after.
"""

from __future__ import annotations

import asyncio
import math
import os
import time
from functools import partial
from typing import Any

import anyio
import anyio.to_thread
import ray
from ray.util.queue import Queue

import ray_anyio

from .timing import Context, Row, median, run_on, take_turns

QUEUE = "Queue put/get_async"
BATCHES = "Queue batches"
#: The case of the channel's rows received a list a step (``batches()``).
IN_LISTS = ", batches()"
CHUNK = 1000
_remote: Any = ray.remote  # its stubs hide .remote() on decorated classes


def _start(actor_class: Any) -> Any:
    return actor_class.remote()


@ray.remote(max_retries=0)
def _send_all(send: Any, n: int) -> None:
    with send:
        for i in range(n):
            send.send_sync(i)


@ray.remote(max_retries=0)
def _put_all(queue: Any, n: int) -> None:
    for i in range(n):
        queue.put(i)


@ray.remote(max_retries=0)
def _put_batches(queue: Any, n: int) -> None:
    for first in range(0, n, CHUNK):
        queue.put_nowait_batch(list(range(first, min(n, first + CHUNK))))


async def _take_batches(queue: Any, n: int) -> int:
    got = 0
    while got < n:
        size = await queue.actor.qsize.remote()
        if size == 0:
            await asyncio.sleep(0.001)
            continue
        got += len(await queue.actor.get_nowait_batch.remote(size))
    return got


@_remote(num_cpus=0)
class _Sink:
    """Counts what it receives: the consumer of the driver -> actor runs."""

    async def channel(self, receive: Any) -> int:
        n = 0
        async with receive:
            async for _ in receive:
                n += 1
        return n

    async def channel_batches(self, receive: Any) -> int:
        n = 0
        async with receive:
            async for batch in receive.batches():
                n += len(batch)
        return n

    async def queue(self, queue: Any, n: int) -> int:
        for _ in range(n):
            await queue.get_async()
        return n

    async def batches(self, queue: Any, n: int) -> int:
        return await _take_batches(queue, n)


async def _channel_to_driver(n: int, batches: bool = False) -> float:
    async with ray_anyio.open_channel(math.inf) as (send, receive):
        await anyio.to_thread.run_sync(send.statistics)  # the actor is up
        start = time.perf_counter()
        ref = _send_all.remote(send, n)
        await send.aclose()
        got = 0
        if batches:
            async for batch in receive.batches():
                got += len(batch)
        else:
            async for _ in receive:
                got += 1
        assert got == n
        await ray_anyio.get(ref)
        return time.perf_counter() - start


async def _channel_to_actor(sink: Any, n: int, batches: bool = False) -> float:
    async with ray_anyio.open_channel(math.inf) as (send, receive):
        await anyio.to_thread.run_sync(send.statistics)
        start = time.perf_counter()
        ref = (sink.channel_batches if batches else sink.channel).remote(receive)
        await receive.aclose()
        async with send:
            for i in range(n):
                await send.send(i)
        assert await ray_anyio.get(ref) == n
        return time.perf_counter() - start


async def _queue_run(direction: str, batches: bool, sink: Any, n: int) -> float:
    queue = Queue()
    actor: Any = queue.actor  # typed as its class by Ray's stubs
    try:
        await actor.qsize.remote()  # the actor is up
        start = time.perf_counter()
        if direction == "task":
            ref = (_put_batches if batches else _put_all).remote(queue, n)
            if batches:
                await _take_batches(queue, n)
            else:
                for _ in range(n):
                    await queue.get_async()
            await ref
        else:
            ref = (sink.batches if batches else sink.queue).remote(queue, n)
            if batches:
                for first in range(0, n, CHUNK):
                    chunk = list(range(first, min(n, first + CHUNK)))
                    await actor.put_nowait_batch.remote(chunk)
            else:
                for i in range(n):
                    await queue.put_async(i)
            assert await ref == n
        return time.perf_counter() - start
    finally:
        queue.shutdown()


def _on_asyncio(fn: Any) -> float:
    return float(asyncio.run(fn()))


def q1_channel_throughput(ctx: Context) -> list[Row]:
    n = 2000 if ctx.quick else 20_000
    sink = _start(_Sink)
    ray.get(sink.__ray_ready__.remote())
    rows = []
    for direction in ("task", "actor"):
        contenders: dict[str, Any] = {}
        # The channel received one item a step, and a list a step (batches()).
        for b in ctx.backends:
            for name, batches in ((b, False), (f"{b}{IN_LISTS}", True)):
                if direction == "task":
                    run = partial(run_on, b, _channel_to_driver, n, batches)
                else:
                    run = partial(run_on, b, _channel_to_actor, sink, n, batches)
                contenders[name] = run
        for name, batches in ((QUEUE, False), (BATCHES, True)):
            run = partial(_queue_run, direction, batches, sink, n)
            contenders[name] = partial(_on_asyncio, run)
        runs = take_turns(contenders, ctx.repeats(5))
        rate = {k: n / median(v) for k, v in runs.items()}
        case = "task -> driver" if direction == "task" else "driver -> actor"
        for name in [name for name in contenders if name not in (QUEUE, BATCHES)]:
            ratio = rate[name] / rate[QUEUE]
            # The target holds against both ways of using the queue.
            against_batches = rate[name] / rate[BATCHES]
            b, lists, _ = name.partition(IN_LISTS)
            rows.append(
                Row(
                    "Q1",
                    f"{n} items, {case}{lists}",
                    b,
                    rate[name],
                    "items/s",
                    {QUEUE: rate[QUEUE], BATCHES: rate[BATCHES]},
                    ratio,
                    QUEUE,
                    ">= 1.0x, and vs batches",
                    ok=ratio >= 1.0 and against_batches >= 1.0,
                    note=f"vs {BATCHES}: {against_batches:.2f}x",
                    compare=[QUEUE, BATCHES],
                )
            )
    ray.kill(sink)
    return rows


# --- Q2: a pipeline's memory --------------------------------------------------
PAYLOAD = 1024


@ray.remote(max_retries=0)
def _produce(send: Any, n: int) -> None:
    payload = b"x" * PAYLOAD
    with send:
        for i in range(n):
            send.send_sync((i, payload))


@_remote(num_cpus=0)
class _Transform:
    """One of the pool of transforming actors of Q2."""

    async def run(self, receive: Any, send: Any) -> int:
        n = 0
        async with receive, send:
            async for i, payload in receive:
                await send.send((i, len(payload)))
                n += 1
        return n


def _rss() -> int:
    """The driver's resident set size in bytes (Linux: /proc/self/statm)."""
    with open("/proc/self/statm") as statm:
        return int(statm.read().split()[1]) * os.sysconf("SC_PAGE_SIZE")


def _store_bytes() -> int:
    """Bytes in the cluster's object stores, through Ray's memory summary."""
    from ray._private import internal_api

    state = internal_api.get_state_from_address(ray.get_runtime_context().gcs_address)
    reply = internal_api.get_memory_info_reply(state)
    return int(reply.store_stats.object_store_bytes_used)


async def _pipeline(transforms: list[Any], n: int) -> dict[str, float]:
    peak = [_store_bytes()]
    rss_start = _rss()
    done = anyio.Event()

    async def sample() -> None:
        while not done.is_set():
            peak.append(await anyio.to_thread.run_sync(_store_bytes))
            with anyio.move_on_after(0.5):
                await done.wait()

    start = time.perf_counter()
    async with anyio.create_task_group() as tg:
        tg.start_soon(sample)
        async with (
            ray_anyio.open_channel(16) as (send, receive),
            ray_anyio.open_channel(16) as (out_send, out_receive),
        ):
            refs = [_produce.remote(send, n)]
            refs += [t.run.remote(receive, out_send) for t in transforms]
            for handle in (send, receive, out_send):
                await handle.aclose()
            got = 0
            async for _ in out_receive:
                got += 1
            assert got == n
            await ray_anyio.get(refs)
        done.set()
    figures = {"seconds": time.perf_counter() - start, "peak store": max(peak)}
    return figures | {"rss start": rss_start, "rss end": _rss()}


def q2_pipeline_memory(ctx: Context) -> list[Row]:
    n = 5000 if ctx.quick else 100_000
    transforms = [_start(_Transform) for _ in range(2)]
    ray.get([t.__ray_ready__.remote() for t in transforms])
    rows = []
    for b in ctx.backends:
        got = run_on(b, _pipeline, transforms, n)
        grown = got["rss end"] - got["rss start"]
        mib = 1024 * 1024
        rows.append(
            Row(
                "Q2",
                f"pipeline task -> 2 actors -> driver, {n} items, buffer 16",
                b,
                got["peak store"] / mib,
                "MiB peak store",
                {
                    "driver RSS start MiB": got["rss start"] / mib,
                    "driver RSS end MiB": got["rss end"] / mib,
                    "items/s": n / got["seconds"],
                },
                None,
                "",
                "flat: store < 64 MiB, RSS +< 64 MiB",
                ok=got["peak store"] < 64 * mib and grown < 64 * mib,
            )
        )
    for t in transforms:
        ray.kill(t)
    return rows
