"""Scenario B3: one ``await get(ref)`` of a finished ref at a time, per call.

The row compares the cost of one call to ``ray.get(ref)``'s (target <= 1.3x)
and reports beside it:

* what a user would write instead: Ray's native ``await ref`` (asyncio),
  ``anyio.to_thread.run_sync(ray.get, ref)`` on the row's backend, and
  ``await ref`` through trio-asyncio (when installed);
* what a finished ``get(ref)`` is made of: a bare checkpoint of the backend
  (``asyncio.sleep(0)``, ``trio.lowlevel.checkpoint()``), and
  ``ray.get(ref, timeout=0)`` called outside any event loop and inside a
  running one of the row's backend (the call that ``get`` makes first).
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from functools import partial
from typing import TYPE_CHECKING, Any

import ray

from ray_anyio import get

from .baselines import (
    TRIO_ASYNCIO,
    aio,
    await_ref,
    has_trio_asyncio,
    run_in_trio_asyncio,
    to_thread_get,
    to_thread_name,
)
from .timing import Context, Row, median, run_on, take_turns, time_async, time_sync
from .workloads import finished_refs

if TYPE_CHECKING:  # Ray 2.48's ObjectRef cannot be subscripted at run time
    Refs = list[ray.ObjectRef[Any]]

NATIVE = "native await"
TIMEOUT0_OUT = "ray.get(timeout=0) outside a loop"


def _timeout0_in(backend: str) -> str:
    return f"ray.get(timeout=0) in {backend} loop"


def _checkpoint(backend: str) -> str:
    return f"checkpoint ({backend})"


def _ray_loop(refs: Refs) -> None:
    for ref in refs:
        ray.get(ref)


def _timeout0_loop(refs: Refs) -> None:
    for ref in refs:
        ray.get(ref, timeout=0)


async def _timeout0_in_loop(refs: Refs) -> None:
    # Synchronous calls, made while the event loop runs this task.
    for ref in refs:
        ray.get(ref, timeout=0)


async def _ours_loop(refs: Refs) -> None:
    for ref in refs:
        await get(ref)


async def _native_loop(refs: Refs) -> None:
    for ref in refs:
        await ref


async def _to_thread_loop(refs: Refs) -> None:
    for ref in refs:
        await to_thread_get(ref)


async def _trio_asyncio_loop(refs: Refs) -> None:
    awaited = aio(await_ref)
    for ref in refs:
        await awaited(ref)


async def _asyncio_checkpoints(m: int) -> None:
    for _ in range(m):
        await asyncio.sleep(0)


async def _trio_checkpoints(m: int) -> None:
    import trio

    for _ in range(m):
        await trio.lowlevel.checkpoint()


def _timed_on(backend: str, fn: Callable[..., Any], *args: Any) -> float:
    return float(run_on(backend, time_async, partial(fn, *args)))


def b3_sequential(ctx: Context) -> list[Row]:
    m = 500 if ctx.quick else 2000
    refs = finished_refs(m)
    checkpoints = {"asyncio": _asyncio_checkpoints, "trio": _trio_checkpoints}
    contenders: dict[str, Callable[[], float]] = {
        "ray.get": partial(time_sync, partial(_ray_loop, refs)),
        NATIVE: lambda: asyncio.run(time_async(partial(_native_loop, refs))),
        TIMEOUT0_OUT: partial(time_sync, partial(_timeout0_loop, refs)),
    }
    for b in ctx.backends:
        contenders[b] = partial(_timed_on, b, _ours_loop, refs)
        contenders[to_thread_name(b)] = partial(_timed_on, b, _to_thread_loop, refs)
        contenders[_timeout0_in(b)] = partial(_timed_on, b, _timeout0_in_loop, refs)
        contenders[_checkpoint(b)] = partial(_timed_on, b, checkpoints[b], m)
    if has_trio_asyncio(ctx.backends):
        contenders[TRIO_ASYNCIO] = lambda: float(
            run_in_trio_asyncio(time_async, partial(_trio_asyncio_loop, refs))
        )
    # Take turns: a run right after the native loop pays for Ray's clean-up
    # of its futures, so no contender may always come after it. The
    # alternatives a user would pick instead are references, far slower:
    # 5 runs of each.
    slow = [NATIVE, TRIO_ASYNCIO, *(to_thread_name(b) for b in ctx.backends)]
    reps = ctx.repeats(11)
    totals = take_turns(contenders, reps, at_most={name: min(reps, 5) for name in slow})
    per = {name: median(times) / m * 1e6 for name, times in totals.items()}
    rows = []
    for b in ctx.backends:
        ratio = per[b] / per["ray.get"]
        compare = ["ray.get", NATIVE, to_thread_name(b)]
        if TRIO_ASYNCIO in per:
            compare.append(TRIO_ASYNCIO)
        baselines = {name: per[name] for name in compare}
        baselines[_checkpoint(b)] = per[_checkpoint(b)]
        baselines[TIMEOUT0_OUT] = per[TIMEOUT0_OUT]
        baselines[_timeout0_in(b)] = per[_timeout0_in(b)]
        rows.append(
            Row(
                "B3",
                "per await",
                b,
                per[b],
                "us",
                baselines,
                ratio,
                "ray.get",
                "<= 1.3x per call",
                ok=ratio <= 1.3,
                compare=compare,
            )
        )
    return rows
