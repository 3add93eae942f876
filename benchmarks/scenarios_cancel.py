"""Scenarios B6 and B7: what a pending call holds, and what cancelling it leaves.

Both count registrations with :func:`ray_anyio.testing.live_registrations` and
wait for queued withdrawals with ``ray_anyio._core._withdraw.wait_withdrawn``,
so that a run never starts while the previous one is still being withdrawn.
"""

from __future__ import annotations

import gc
import itertools
import threading
import time
import tracemalloc
from functools import partial
from typing import Any

import anyio
import ray

from ray_anyio import get, wait
from ray_anyio._core._withdraw import wait_withdrawn
from ray_anyio.testing import live_registrations

from .timing import Context, Row, median, run_on, take_turns
from .workloads import new_blocker


async def _until_registered(minimum: int) -> None:
    """Return once ``minimum`` registrations are live (a minute at most).

    One ``get`` registers all its refs, or its group sentinels, in one step:
    for a single call, ``minimum=1`` means it is fully registered.
    """
    with anyio.fail_after(60):
        while live_registrations() < minimum:
            await anyio.sleep(0.005)


async def _memory_of_pending(
    refs: list[ray.ObjectRef[Any]], kind: str
) -> tuple[int, int, int]:
    """Bytes traced and threads while one call over ``refs`` is pending.

    ``kind`` is ``"get"`` (a large list is watched in groups) or ``"wait"``
    for all of them (every ref is registered with Ray).
    """
    wait_withdrawn(60)
    threads_before = threading.active_count()
    gc.collect()
    tracemalloc.start()
    try:
        async with anyio.create_task_group() as tg:
            if kind == "get":
                tg.start_soon(get, refs)
                await _until_registered(1)
            else:
                tg.start_soon(partial(wait, refs, num_returns=len(refs)))
                await _until_registered(len(refs))
            gc.collect()
            size, _ = tracemalloc.get_traced_memory()
            threads = threading.active_count()
            tg.cancel_scope.cancel()
    finally:
        tracemalloc.stop()
    return size, threads_before, threads


def b6_memory(ctx: Context) -> list[Row]:
    # Both sizes are above ray_anyio._core._fetch.INLINE_FETCH_MAX: both take
    # the fetch lane's path, so their thread counts compare like with like.
    sizes = [2000, 10_000] if ctx.quick else [10_000, 100_000]
    blocker = new_blocker()
    refs_all = [blocker.block.remote() for _ in range(sizes[-1])]
    rows = []
    for kind, b in itertools.product(("get", "wait"), ctx.backends):
        per = {}
        threads = {}
        for n in sizes:
            size, before, during = run_on(b, _memory_of_pending, refs_all[:n], kind)
            per[n] = size / n
            threads[n] = during - before
        rows.append(
            Row(
                "B6",
                f"{kind}, {sizes[-1]} pending",
                b,
                per[sizes[-1]],
                "B/await",
                {
                    f"B/await at {sizes[0]}": per[sizes[0]],
                    f"threads added at {sizes[0]}": threads[sizes[0]],
                    f"threads added at {sizes[-1]}": threads[sizes[-1]],
                },
                None,
                "",
                "<= 2048 B, threads flat",
                ok=per[sizes[-1]] <= 2048 and threads[sizes[-1]] <= threads[sizes[0]],
            )
        )
    ray.get(blocker.release.remote())
    ray.kill(blocker)
    return rows


async def _cancel_time(
    refs: list[ray.ObjectRef[Any]], per_task: bool
) -> tuple[float, float, int]:
    """Seconds until the cancelled scope exits and until Ray holds nothing,
    and how many registrations were withdrawn."""
    wait_withdrawn(60)
    async with anyio.create_task_group() as tg:
        if per_task:
            for ref in refs:
                tg.start_soon(get, ref)
        else:
            tg.start_soon(get, refs)
        await _until_registered(len(refs) if per_task else 1)
        registered = live_registrations()
        start = time.perf_counter()
        tg.cancel_scope.cancel()
    returned = time.perf_counter() - start
    wait_withdrawn(60)
    withdrawn = time.perf_counter() - start
    assert live_registrations() == 0
    return returned, withdrawn, registered


async def _cancel_time_events(n: int) -> float:
    # One event per task, as each get(ref) has its own: a shared asyncio
    # Event removes each cancelled waiter from a deque, O(n) per task.
    async with anyio.create_task_group() as tg:
        for _ in range(n):
            tg.start_soon(anyio.Event().wait)
        await anyio.sleep(0.05)
        start = time.perf_counter()
        tg.cancel_scope.cancel()
    return time.perf_counter() - start


def b7_cancel(ctx: Context) -> list[Row]:
    n = 2000 if ctx.quick else 10_000
    blocker = new_blocker()
    refs = [blocker.block.remote() for _ in range(n)]
    rows = []
    # A cancelled get takes a fraction of a millisecond: many runs, the
    # backends taking turns, so that the median (and trio against asyncio)
    # is not one run's noise.
    runs = take_turns(
        {b: partial(run_on, b, _cancel_time, refs, False) for b in ctx.backends},
        ctx.repeats(15),
    )
    # Tasks awaiting get(ref) against the same number of tasks awaiting an
    # event, run back to back: the ratio of each pair cancels the drift of a
    # shared machine, and the backends take turns.

    def pair_on(backend: str) -> tuple[float, float]:
        tasks = run_on(backend, _cancel_time, refs, True)[0]
        return tasks, run_on(backend, _cancel_time_events, n)

    paired = take_turns({b: partial(pair_on, b) for b in ctx.backends}, ctx.repeats(5))
    tasks = {b: [t for t, _ in runs_] for b, runs_ in paired.items()}
    events = {b: [e for _, e in runs_] for b, runs_ in paired.items()}
    for b in ctx.backends:
        one = runs[b]
        t_one = median([x[0] for x in one])
        t_gone = median([x[1] for x in one])
        rows.append(
            Row(
                "B7",
                f"cancel get(list of {n})",
                b,
                t_one * 1e3,
                "ms",
                {
                    "all withdrawn from Ray after ms": t_gone * 1e3,
                    "registrations": median([x[2] for x in one]),
                },
                None,
                "",
                "<= 10 ms, nothing left",
                ok=t_one <= 0.010,
                note="nothing left registered: asserted after every run",
            )
        )
        pairs = [t / e for t, e in zip(tasks[b], events[b], strict=True)]
        rows.append(
            Row(
                "B7",
                f"cancel {n} tasks awaiting get(ref)",
                b,
                median(tasks[b]) * 1e3,
                "ms",
                {"tasks awaiting anyio.Event ms": median(events[b]) * 1e3},
                median(pairs),
                "same tasks on an Event",
                "reported",
                note="task teardown itself costs the event-loop baseline",
                compare=["tasks awaiting anyio.Event ms"],
            )
        )
    ray.get(blocker.release.remote())
    ray.kill(blocker)
    return rows
