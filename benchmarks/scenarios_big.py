"""Scenario B9: the event loop while large values are fetched and put.

A ticker asks to wake every 5 ms; the figure is its worst gap while one call
runs. ray-anyio's ``get``/``put`` on each backend against the same call
through ``to_thread.run_sync`` on that backend, taking turns. A thread cannot
beat the thread: unpickling one pure-Python object holds the GIL whichever
thread does it, so the target is the thread's own gap (x1.2, or 20 ms where
that is below 20 ms).
"""

from __future__ import annotations

import gc
import time
from collections.abc import Awaitable, Callable
from functools import partial
from typing import Any

import anyio
import anyio.to_thread
import ray

import ray_anyio

from .timing import Context, Row, median, run_on, take_turns

TICK = 0.005


@ray.remote(num_cpus=0)
def big_dict(n: int, delay: float = 0.0) -> dict[int, int]:
    """A pure-Python dict of ``n`` entries (2M: about 200 MB in memory)."""
    time.sleep(delay)
    return {i: i for i in range(n)}


@ray.remote(num_cpus=0)
def big_list(n: int) -> list[int]:
    """A pure-Python list (800,000 ints: about 4 MB pickled)."""
    return list(range(n))


async def _worst_gap(work: Callable[[], Awaitable[Any]]) -> float:
    """Seconds of the ticker's worst lateness while ``work()`` runs."""
    worst = 0.0
    running = True

    async def ticker() -> None:
        nonlocal worst
        while running:
            start = time.perf_counter()
            await anyio.sleep(TICK)
            worst = max(worst, time.perf_counter() - start - TICK)

    async with anyio.create_task_group() as tg:
        tg.start_soon(ticker)
        await anyio.sleep(2 * TICK)
        await work()
        running = False
    return worst


def _gap_on(backend: str, work: Callable[[], Awaitable[Any]]) -> float:
    gc.collect()  # a collection owed to the previous run lands in none
    return float(run_on(backend, _worst_gap, work))


async def _thread(fn: Callable[[], Any]) -> None:
    await anyio.to_thread.run_sync(fn)


def b9_big_values(ctx: Context) -> list[Row]:
    entries = 200_000 if ctx.quick else 2_000_000
    items, count = (80_000, 10) if ctx.quick else (800_000, 50)
    reps = ctx.repeats(7)  # a worst gap is a maximum: noisy
    finished = big_dict.remote(entries)
    many = [big_list.remote(items) for _ in range(count)]
    ray.wait([finished, *many], num_returns=count + 1, fetch_local=True)
    value = ray.get(finished)

    def pending() -> Any:
        # A new task per run, still running when the call starts.
        maker: Any = big_dict  # Ray's stubs see only the first parameter
        return maker.remote(entries, 0.2)

    cases: dict[str, tuple[Callable[[], Awaitable[Any]], Callable[[], Any]]] = {
        f"get one finished dict of {entries} entries": (
            partial(ray_anyio.get, finished),
            partial(ray.get, finished),
        ),
        f"get {count} refs of {items} ints": (
            partial(ray_anyio.get, many),
            partial(ray.get, many),
        ),
        f"get one pending dict of {entries} entries": (
            lambda: ray_anyio.get(pending()),
            lambda: ray.get(pending()),
        ),
        f"put a dict of {entries} entries": (
            lambda: ray_anyio.put(value),
            lambda: ray.put(value),
        ),
    }
    rows = []
    for case, (ours, plain) in cases.items():
        contenders: dict[str, Callable[[], float]] = {}
        for b in ctx.backends:
            contenders[b] = partial(_gap_on, b, ours)
            contenders[f"to_thread ({b})"] = partial(
                _gap_on, b, partial(_thread, plain)
            )
        gaps = take_turns(contenders, reps)
        for b in ctx.backends:
            mine = median(gaps[b]) * 1e3
            base = median(gaps[f"to_thread ({b})"]) * 1e3
            rows.append(
                Row(
                    "B9",
                    case,
                    b,
                    mine,
                    "ms",
                    {f"to_thread ({b}) ms": base},
                    mine / base if base else None,
                    f"to_thread ({b})",
                    "<= 1.2x, or <= 20 ms",
                    ok=mine <= max(1.2 * base, 20.0),
                    compare=[f"to_thread ({b}) ms"],
                )
            )
    return rows
