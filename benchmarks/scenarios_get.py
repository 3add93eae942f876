"""Scenarios B1, B2 and B5: ``get`` of finished and running refs, and the loop.

Each function measures ray-anyio on every backend and its baselines in the same
process, alternating them run by run so that machine noise hits all alike, and
returns report rows whose figures are medians. B3, one call at a time, is in
:mod:`.scenarios_sequential`.
"""

from __future__ import annotations

import asyncio
import gc
import time
from collections.abc import Callable
from functools import partial
from typing import Any

import anyio
import ray

from ray_anyio import get

from .baselines import (
    TRIO_ASYNCIO,
    aio,
    gather_refs,
    has_trio_asyncio,
    run_in_trio_asyncio,
    to_thread_get,
    to_thread_name,
)
from .timing import Context, Row, median, run_on, take_turns, time_async, time_sync
from .workloads import finished_refs, new_sleeper, running_refs


def b1_get_finished(ctx: Context) -> list[Row]:
    sizes = [100, 1000] if ctx.quick else [100, 1000, 10_000, 100_000]
    trio_asyncio = has_trio_asyncio(ctx.backends)
    rows = []
    for n in sizes:
        refs = finished_refs(n)
        with_gather = n <= 10_000
        contenders: dict[str, Callable[[], float]] = {
            "ray.get": partial(time_sync, partial(ray.get, refs))
        }
        for b in ctx.backends:
            contenders[b] = partial(run_on, b, time_async, partial(get, refs))
            contenders[to_thread_name(b)] = partial(
                run_on, b, time_async, partial(to_thread_get, refs)
            )
        if with_gather:
            contenders["asyncio.gather"] = partial(_time_gather, refs)
            if trio_asyncio:
                contenders[TRIO_ASYNCIO] = partial(_time_trio_asyncio_gather, refs)
        # Runs of up to 10,000 refs take milliseconds, and a shared machine
        # spikes single runs, on every contender alike (see
        # docs/performance.md): many runs. Native gather (also through
        # trio-asyncio) is the slow reference, not the target: 3 runs of it.
        ours = take_turns(
            contenders,
            ctx.repeats(21 if n <= 10_000 else 5),
            at_most={"asyncio.gather": 3, TRIO_ASYNCIO: 3},
        )
        base = ours["ray.get"]
        for b in ctx.backends:
            compare = ["ray.get", to_thread_name(b)]
            compare += [k for k in ("asyncio.gather", TRIO_ASYNCIO) if k in ours]
            baselines = {name: median(ours[name]) for name in compare}
            ratio = median(ours[b]) / median(base)
            rows.append(
                Row(
                    "B1",
                    f"N={n}",
                    b,
                    median(ours[b]),
                    "s",
                    baselines,
                    ratio,
                    "ray.get",
                    "<= 1.10x for N >= 1e3",
                    ok=None if n < 1000 else ratio <= 1.10,
                    note="" if with_gather else "gather skipped (> 10 s)",
                    compare=compare,
                )
            )
    return rows


def _time_gather(refs: list[ray.ObjectRef[Any]]) -> float:
    """Seconds Ray's native ``asyncio.gather`` over ``refs`` takes."""
    return asyncio.run(time_async(partial(asyncio.gather, *refs)))


def _time_trio_asyncio_gather(refs: list[ray.ObjectRef[Any]]) -> float:
    """Seconds ``asyncio.gather`` over ``refs`` takes in trio, via trio-asyncio."""
    return float(run_in_trio_asyncio(time_async, partial(aio(gather_refs), refs)))


def b2_get_running(ctx: Context) -> list[Row]:
    n = 1000 if ctx.quick else 10_000
    sleeper = new_sleeper()

    def ray_get() -> float:
        return time_sync(partial(ray.get, running_refs(sleeper, n)))

    def ours_on(backend: str) -> float:
        refs = running_refs(sleeper, n)
        return float(run_on(backend, time_async, partial(get, refs)))

    contenders: dict[str, Callable[[], float]] = {"ray.get": ray_get}
    for b in ctx.backends:
        contenders[b] = partial(ours_on, b)
    ours = take_turns(contenders, ctx.repeats(6))
    base = ours["ray.get"]
    ray.kill(sleeper)
    return [
        Row(
            "B2",
            f"N={n} running 0-10 ms",
            b,
            median(ours[b]),
            "s",
            {"ray.get": median(base)},
            median(ours[b]) / median(base),
            "ray.get",
            "<= 1.05x",
            ok=median(ours[b]) / median(base) <= 1.05,
            compare=["ray.get"],
        )
        for b in ctx.backends
    ]


async def _lag_while(work: Callable[[], Any]) -> float:
    worst = 0.0
    done = False

    async def ticker() -> None:
        nonlocal worst
        while not done:
            start = time.perf_counter()
            await anyio.sleep(0.001)
            worst = max(worst, time.perf_counter() - start - 0.001)

    async with anyio.create_task_group() as tg:
        tg.start_soon(ticker)
        await anyio.sleep(0.01)
        await work()
        done = True
    return worst


def b5_stall(ctx: Context) -> list[Row]:
    n = 10_000 if ctx.quick else 100_000
    refs = finished_refs(n)

    # A worst lag is a maximum, so noisy: medians of fewer runs moved apart
    # between runs (see docs/performance.md). 21 runs, the contenders taking
    # turns. Each run starts collected: a full garbage collection owed to the
    # previous run's values would otherwise stall whichever run is next.
    def lag_on(backend: str) -> float:
        gc.collect()
        return float(run_on(backend, _lag_while, partial(get, refs)))

    contenders: dict[str, Callable[[], float]] = {
        "ray.get": partial(time_sync, partial(ray.get, refs))
    }
    for b in ctx.backends:
        contenders[b] = partial(lag_on, b)
    lags = take_turns(contenders, ctx.repeats(21))
    base = lags["ray.get"]
    return [
        Row(
            "B5",
            f"ticker lag, get N={n}",
            b,
            median(lags[b]) * 1e3,
            "ms",
            {"ray.get(list) s": median(base)},
            None,
            "",
            "<= 20 ms",
            ok=median(lags[b]) * 1e3 <= 20,
        )
        for b in ctx.backends
    ]
