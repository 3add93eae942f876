"""``python -m ray_anyio demo``: structured remote work, on asyncio and trio.

Scenarios: a deadline cancelling an ``open_scope``'s Ray tasks, a bounded
``map`` with a progress line, ``as_completed``, ``stream``, and ``get`` of
10,000 finished refs against ``ray.get``.
"""

from __future__ import annotations

import importlib.util
import signal
import statistics
import sys
import time
from collections.abc import Awaitable, Callable, Iterator
from typing import Any

import anyio
import ray
from ray.exceptions import TaskCancelledError

from ._as_completed import as_completed
from ._core._results import Results
from ._get import get
from ._map import map
from ._scope import open_scope
from ._stream import stream

#: How many times the speed scenario times each contender; the median counts.
SPEED_RUNS = 5
SPEED_REFS = 10_000


@ray.remote
def _nap(seconds: float) -> float:
    time.sleep(seconds)
    return seconds


@ray.remote
def _work(seconds: float) -> float:
    for _ in range(int(seconds * 10)):
        # A polite ray.cancel() is a KeyboardInterrupt between bytecodes: one
        # long time.sleep would not see it until it returned.
        time.sleep(0.1)
    return seconds


@ray.remote
def _countdown(n: int) -> Iterator[int]:
    # Not ``yield from range(...)``: Ray resumes the generator with ``send``,
    # which ``yield from`` passes on to the range iterator, which has none.
    while n > 0:
        yield n
        n -= 1


@ray.remote
def _many(n: int) -> tuple[int, ...]:
    return tuple(range(n))


async def _deadline() -> str:
    refs: list[ray.ObjectRef[float]] = []
    with anyio.move_on_after(0.5):
        async with open_scope(cancel_timeout=1) as scope:
            refs = [scope.remote(_work, 60) for _ in range(2)]
            await get(refs)
    # The block was left by the deadline: the scope cancelled its tasks.
    outcomes = await get(refs, return_exceptions=True)
    cancelled = sum(isinstance(outcome, TaskCancelledError) for outcome in outcomes)
    return (
        f"2 tasks of 60 s in a scope, a 0.5 s deadline -> "
        f"{cancelled} of 2 raise TaskCancelledError"
    )


def _progress_line(it: Results[Any]) -> str:
    return (
        f"{it.completed + it.failed}/{it.total} done, "
        f"{it.in_flight} in flight, {it.failed} failed"
    )


async def _bounded_map() -> str:
    redraw = sys.stdout.isatty()  # a log file gets the final line only
    async with map(_nap, [0.005] * 100, max_in_flight=8) as results:
        async for _value in results:
            if redraw and (results.completed + results.failed) % 10 == 0:
                print(f"\r    map: {_progress_line(results):60}", end="", flush=True)
    if redraw:
        print("\r" + " " * 70 + "\r", end="", flush=True)
    return f"100 tasks, at most 8 in flight -> {_progress_line(results)}"


async def _as_completed() -> str:
    refs = [_nap.remote(seconds) for seconds in (0.4, 0.1, 0.2)]
    async with as_completed(refs) as results:
        order = [index async for index, _value in results]
    return f"tasks of 0.4, 0.1 and 0.2 s, as they finish -> indexes {order}"


async def _stream() -> str:
    async with stream(_countdown.remote(5), values=True) as items:
        values = [value async for value in items]
    return f"a generator task's items as it yields them -> {values}"


async def _speed() -> str:
    # With num_returns=N a task gives N refs; Ray's stubs type it as one ref.
    many: Any = _many.options(num_returns=SPEED_REFS)
    refs: list[ray.ObjectRef[int]] = many.remote(SPEED_REFS)
    ray.wait(refs, num_returns=len(refs), fetch_local=True)
    ours: list[float] = []
    theirs: list[float] = []
    for _ in range(SPEED_RUNS):  # the two take turns, so load hits both
        start = time.perf_counter()
        ray.get(refs)
        theirs.append(time.perf_counter() - start)
        start = time.perf_counter()
        await get(refs)
        ours.append(time.perf_counter() - start)
    mine, base = statistics.median(ours), statistics.median(theirs)
    return (
        f"get of {SPEED_REFS:,} finished refs: {mine * 1e3:.1f} ms, "
        f"ray.get {base * 1e3:.1f} ms (median of {SPEED_RUNS}; "
        f"{mine / base:.2f}x ray.get)"
    )


SCENARIOS: list[tuple[str, Callable[[], Awaitable[str]]]] = [
    ("a deadline cancels Ray tasks", _deadline),
    ("bounded map with progress", _bounded_map),
    ("as_completed", _as_completed),
    ("stream", _stream),
    ("speed", _speed),
]


def available_backends() -> list[str]:
    """asyncio, plus trio when it is installed."""
    backends = ["asyncio"]
    if importlib.util.find_spec("trio") is not None:
        backends.append("trio")
    return backends


async def _run_all(backend: str) -> None:
    for title, scenario in SCENARIOS:
        start = time.perf_counter()
        outcome = await scenario()
        elapsed = time.perf_counter() - start
        print(f"  [{backend:7}] {title:30} {elapsed * 1e3:7.0f} ms  {outcome}")


def main() -> int:
    """Start an embedded local Ray and run every scenario on every backend."""
    began = time.perf_counter()
    # ray.cancel() interrupts a task through SIGINT. A shell without job
    # control starts this process with SIGINT ignored, Ray's workers would
    # inherit that, and a polite cancel would do nothing.
    if signal.getsignal(signal.SIGINT) is signal.SIG_IGN:
        signal.signal(signal.SIGINT, signal.default_int_handler)
    print("Starting a local Ray (2 CPUs, no dashboard)...", flush=True)
    # address="local": a new Ray of our own, never another one on this machine.
    ray.init(address="local", num_cpus=2, include_dashboard=False, log_to_driver=False)
    try:
        ray.get([_nap.remote(0) for _ in range(2)])  # start the workers
        print(f"  Ray is up after {time.perf_counter() - began:.1f} s")
        backends = available_backends()
        if "trio" not in backends:
            print("  (trio is not installed: pip install '.[trio]')")
        for backend in backends:
            print(f"Backend: {backend}", flush=True)
            anyio.run(_run_all, backend, backend=backend)
    finally:
        ray.shutdown()
    print(f"Done in {time.perf_counter() - began:.1f} s.")
    sys.stdout.flush()
    return 0
