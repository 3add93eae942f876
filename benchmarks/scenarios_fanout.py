"""Scenarios C1-C3: long fan-outs (chunks, retries, checkpoints).

C1 is throughput over tiny items against Ray's own chunked tools; C2 the
makespan of a map whose items fail once each, one in ten, against the same
map without failures; C3 a checkpoint's cost, and a resume's speed.
"""

from __future__ import annotations

import math
import os
import tempfile
import time
from collections.abc import Callable
from functools import partial
from typing import Any

import ray
from ray.util.multiprocessing import Pool

import ray_anyio

from .timing import Context, Row, median, run_on, take_turns, time_sync


def double(x: int) -> int:
    return x * 2


async def _drain(fn: Any, *iterables: Any, **kwargs: Any) -> int:
    """Run a ``map`` and take every result; the number of results."""
    async with ray_anyio.map(fn, *iterables, **kwargs) as results:
        return len([value async for value in results])


def _timed_map(backend: str, fn: Any, *iterables: Any, **kwargs: Any) -> float:
    """Seconds one ``map`` run takes on ``backend``, every result taken."""
    n = len(iterables[0])
    start = time.perf_counter()
    assert run_on(backend, partial(_drain, fn, *iterables, **kwargs)) == n
    return time.perf_counter() - start


async def _drain_batches(fn: Any, *iterables: Any, **kwargs: Any) -> int:
    """Run a ``map`` and take every result in batches; the number of results."""
    async with ray_anyio.map(fn, *iterables, **kwargs) as results:
        return sum([len(batch) async for batch in results.batches()])


def _chunk_tasks(items: list[int], size: int) -> list[int]:
    """The hand-written way: one task per slice, ``ray.util.as_completed``."""
    refs = [_doubles.remote(items[i : i + size]) for i in range(0, len(items), size)]
    out: list[int] = []
    as_completed: Any = ray.util.as_completed  # Ray 2.51 and later
    for values in as_completed(refs, chunk_size=max(1, len(refs) // 4)):
        out.extend(values)
    return out


@ray.remote
def _doubles(xs: list[int]) -> list[int]:
    return [double(x) for x in xs]


@ray.remote
def _double(x: int) -> int:
    return double(x)


#: Inputs of the task-per-item baseline (it runs at a few thousand tasks/s).
PER_ITEM_N = 20_000


def _task_per_item(items: list[int]) -> list[int]:
    """What ``ray.util.as_completed(chunk_size=)`` is for: a task per item."""
    refs = [_double.remote(x) for x in items]
    as_completed: Any = ray.util.as_completed  # Ray 2.51 and later
    return list(as_completed(refs, chunk_size=1000))


def c1_tiny_items(ctx: Context) -> list[Row]:
    n = 10_000 if ctx.quick else 100_000
    items = list(range(n))
    cpus = int(ray.cluster_resources().get("CPU", 1))
    size = math.ceil(n / (4 * cpus))  # what "auto" starts with
    pool = Pool(processes=cpus)
    contenders: dict[str, Callable[[], float]] = {
        f"Pool.imap(chunksize={size})": partial(
            time_sync, lambda: list(pool.imap(double, items, chunksize=size))
        ),
        "Pool.imap(chunksize=1000)": partial(
            time_sync, lambda: list(pool.imap(double, items, chunksize=1000))
        ),
    }
    # A reference, not a target: chunks made by hand, one list per task, and
    # no per-item outcome (an item's error fails its chunk).
    hand_made = f"hand-made chunks of {size}, as_completed"
    per_item = f"task per item, as_completed(chunk_size=1000), N={PER_ITEM_N}"
    sizes = {name: n for name in (hand_made, per_item)}
    if hasattr(ray.util, "as_completed"):  # Ray 2.51 and later
        contenders[hand_made] = partial(time_sync, partial(_chunk_tasks, items, size))
        few = items[: min(n, PER_ITEM_N)]
        sizes[per_item] = len(few)
        contenders[per_item] = partial(time_sync, partial(_task_per_item, few))
    for b in ctx.backends:
        run = partial(_drain, double, items, chunksize="auto")
        contenders[b] = partial(time_sync, partial(run_on, b, run))
        run = partial(_drain_batches, double, items, chunksize="auto")
        contenders[f"{b}, batches()"] = partial(time_sync, partial(run_on, b, run))
    # A first run of each, not counted: workers start, functions are exported.
    for name, contender in contenders.items():
        if name != per_item:
            contender()
    times = take_turns(contenders, ctx.repeats(5), at_most={per_item: 1})
    pool.terminate()
    speeds = {name: sizes.get(name, n) / median(times[name]) for name in contenders}
    ours = [name for name in contenders if name.split(",")[0] in ctx.backends]
    others = {k: v for k, v in speeds.items() if k not in ours}
    targets = {k: v for k, v in others.items() if k != hand_made}
    best = max(targets, key=lambda k: targets[k])
    rows = []
    for name in ours:
        backend, _, how = name.partition(", ")
        rows.append(
            Row(
                "C1",
                f"{n} tiny items, chunksize=auto{', ' + how if how else ''}",
                backend,
                speeds[name],
                "items/s",
                others,
                speeds[name] / others[best],
                best,
                ">= 1.0x the best",
                ok=speeds[name] >= others[best],
                compare=list(others),
            )
        )
    return rows


@ray.remote(num_cpus=0.25, max_retries=0)
def _work(x: int, marks: str | None) -> int:
    """20 ms of work; with ``marks``, one in ten fails at once, the first time."""
    if marks is not None and x % 10 == 0:
        mark = os.path.join(marks, str(x))
        if not os.path.exists(mark):
            open(mark, "w").close()
            raise ValueError(f"{x} fails once")
    time.sleep(0.02)
    return x


def c2_retries(ctx: Context) -> list[Row]:
    n = 400 if ctx.quick else 2_000
    delay = 0.05
    policy = ray_anyio.Retry(delay=delay, jitter=0)

    def timed(backend: str, fail: bool) -> float:
        marks = [tempfile.mkdtemp() if fail else None] * n
        return _timed_map(
            backend, _work, range(n), marks, retry=policy, max_in_flight=16
        )

    contenders: dict[str, Callable[[], float]] = {}
    for b in ctx.backends:
        contenders[b] = partial(timed, b, True)
        contenders[f"no failures ({b})"] = partial(timed, b, False)
    timed(ctx.backends[0], False)  # warm the workers
    times = take_turns(contenders, ctx.repeats(3))
    rows = []
    for b in ctx.backends:
        ideal = median(times[f"no failures ({b})"]) + delay
        mine = median(times[b])
        rows.append(
            Row(
                "C2",
                f"{n} items of 20 ms, 1 in 10 fails once, Retry(delay={delay})",
                b,
                mine,
                "s",
                {"no failures + delay s": ideal},
                mine / ideal,
                "no failures + delay",
                "<= 1.15x",
                ok=mine / ideal <= 1.15,
            )
        )
    return rows


@ray.remote(num_cpus=0.125, max_retries=0)
def _five_ms(x: int) -> int:
    time.sleep(0.005)
    return x


def c3_checkpoint(ctx: Context) -> list[Row]:
    n = 2_000 if ctx.quick else 10_000
    folder = tempfile.mkdtemp()
    runs = 0

    def timed(backend: str, checkpoint: bool) -> float:
        nonlocal runs
        runs += 1
        path = os.path.join(folder, f"run-{runs}.sqlite") if checkpoint else None
        return _timed_map(backend, _five_ms, range(n), checkpoint=path)

    def resumed(backend: str) -> float:
        path = os.path.join(folder, f"done-{backend}.sqlite")
        if not os.path.exists(path):  # the finished run it resumes
            _timed_map(backend, _five_ms, range(n), checkpoint=path)
        return _timed_map(backend, _five_ms, range(n), checkpoint=path)

    contenders: dict[str, Callable[[], float]] = {}
    for b in ctx.backends:
        contenders[b] = partial(timed, b, True)
        contenders[f"no checkpoint ({b})"] = partial(timed, b, False)
        contenders[f"resume ({b})"] = partial(resumed, b)
    timed(ctx.backends[0], False)  # warm the workers
    times = take_turns(contenders, ctx.repeats(3))
    rows = []
    for b in ctx.backends:
        plain, mine = median(times[f"no checkpoint ({b})"]), median(times[b])
        resume = median(times[f"resume ({b})"])
        rows.append(
            Row(
                "C3",
                f"{n} items of 5 ms, checkpoint=",
                b,
                mine,
                "s",
                {"no checkpoint s": plain},
                mine / plain,
                "no checkpoint",
                "<= 1.15x",
                ok=mine / plain <= 1.15,
            )
        )
        rows.append(
            Row(
                "C3",
                f"resume a finished run of {n}",
                b,
                resume,
                "s",
                {"computing it s": mine},
                mine / resume,
                "computing it (speed-up)",
                ">= 20x faster",
                ok=mine / resume >= 20,
            )
        )
    return rows
