"""Scenario R1: ``map(fn, range(M), max_per_second=50)`` keeps to its rate.

``fn`` records the time of every start (it is called once per start, then
starts a task that returns at once); the achieved rate is
``(M - 1) / (last start - first start)``, the median over a few runs (target
50/s within 10 %). Reported beside it: the most starts seen in any one-second
window (the limit promises at most 50), and what the same starts achieve
with the loop a user writes by hand, ``await anyio.sleep(1 / 50)`` before
each start.
"""

from __future__ import annotations

import bisect
import time
from functools import partial
from typing import Any

import anyio
import ray

import ray_anyio

from .timing import Context, Row, median, run_on, take_turns
from .workloads import noop

RATE = 50.0
SLEEP_LOOP = "sleep loop"


def _starter(stamps: list[float]) -> Any:
    def start(x: int) -> ray.ObjectRef[Any]:
        stamps.append(time.perf_counter())
        ref: ray.ObjectRef[Any] = noop.remote(x)
        return ref

    return start


async def _ours(m: int) -> list[float]:
    stamps: list[float] = []
    async with ray_anyio.map(_starter(stamps), range(m), max_per_second=RATE) as out:
        async for _ in out:
            pass
    return stamps


async def _sleep_loop(m: int) -> list[float]:
    stamps: list[float] = []
    start = _starter(stamps)
    refs = []
    for x in range(m):
        await anyio.sleep(1 / RATE)
        refs.append(start(x))
    await ray_anyio.get(refs)
    return stamps


def _rate(stamps: list[float]) -> float:
    return (len(stamps) - 1) / (stamps[-1] - stamps[0])


def _most_in_a_second(stamps: list[float]) -> int:
    # Windows [t, t + 1) starting at each start hold the most starts.
    return max(bisect.bisect_left(stamps, t + 1.0) - i for i, t in enumerate(stamps))


def r1_rate(ctx: Context) -> list[Row]:
    m = 30 if ctx.quick else 150
    contenders = {b: partial(run_on, b, _ours, m) for b in ctx.backends}
    for b in ctx.backends:
        contenders[f"{SLEEP_LOOP} ({b})"] = partial(run_on, b, _sleep_loop, m)
    # Each run lasts M / 50 seconds: 3 runs, taking turns.
    runs: dict[str, list[list[float]]] = take_turns(contenders, ctx.repeats(3))
    rows = []
    for b in ctx.backends:
        rate = median([_rate(s) for s in runs[b]])
        loop = f"{SLEEP_LOOP} ({b})"
        ratio = rate / RATE
        rows.append(
            Row(
                "R1",
                f"max_per_second={RATE:g}, {m} starts",
                b,
                rate,
                "starts/s",
                {
                    "most in 1 s": max(_most_in_a_second(s) for s in runs[b]),
                    loop: median([_rate(s) for s in runs[loop]]),
                },
                ratio,
                f"{RATE:g}/s",
                f"{RATE:g}/s +- 10 %",
                ok=abs(ratio - 1) <= 0.10,
                compare=[loop],
            )
        )
    return rows
