"""Scenario B8: fan-in, the web-service shape.

N tasks of one event loop each ``await get(ref)`` on a ref of their own, all
pending: calls blocked on an actor (:class:`.workloads._Blocker`) until one
release lets them all return at once. The figure is the driver's CPU time
(``time.process_time``: every thread of the process, Ray's own included) from
the release until every await has returned, per awaited ref. The CPU time
per ref spent before the release (starting the awaits, registering the refs)
is reported beside it as ``setup``.

Every contender is released the same way, by a thread of the driver
(:class:`_Release`) once the process has gone quiet, that is once every await
(or the blocking ``ray.get``) is in place; the time before the release (task
starts, registrations) is not counted. Contenders:

* ``ray.get(list)``: one blocking call over the same refs, the floor;
* ray-anyio on each backend: ``await ray_anyio.get(ref)`` in N tasks;
* Ray's native ``await ref`` in N asyncio tasks;
* ``anyio.to_thread.run_sync(ray.get, ref)`` in N tasks, on each backend
  (AnyIO's default of 40 threads at once);
* ``await aio_as_trio(await_ref)(ref)`` in N trio tasks over trio-asyncio.
"""

from __future__ import annotations

import asyncio
import itertools
import threading
import time
from collections.abc import Callable, Coroutine
from functools import partial
from typing import TYPE_CHECKING, Any

import anyio
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
from .timing import Context, Row, median, run_on, take_turns
from .workloads import blocked_refs, new_blocker

if TYPE_CHECKING:  # Ray 2.48's ObjectRef cannot be subscripted at run time
    Refs = list[ray.ObjectRef[Any]]

FLOOR = "ray.get(list)"
NATIVE = "native await"
#: The process counts as quiet when it uses less than this share of one core
#: over ``_QUIET_WINDOW`` seconds: every await is in place.
_QUIET_SHARE = 0.05
_QUIET_WINDOW = 0.02


class _Release:
    """Releases the blocked calls from a thread, once the process is quiet.

    The CPU clock starts just before the release; :meth:`cpu_since` stops it.
    ``setup`` is the CPU time from :meth:`arm` to the release (the quiet
    windows included, a fraction of a millisecond).
    """

    def __init__(self, blocker: Any, key: int) -> None:
        self._blocker = blocker
        self._key = key
        self._armed = self._start = 0.0
        self._thread = threading.Thread(target=self._run, daemon=True)

    def arm(self) -> None:
        """Start waiting for quiet; the caller then sets up its awaits."""
        self._armed = time.process_time()
        self._thread.start()

    @property
    def setup(self) -> float:
        return self._start - self._armed

    def _run(self) -> None:
        deadline = time.perf_counter() + 30
        while time.perf_counter() < deadline:
            before = time.process_time()
            time.sleep(_QUIET_WINDOW)
            if time.process_time() - before < _QUIET_SHARE * _QUIET_WINDOW:
                break
        self._start = time.process_time()
        self._blocker.release.remote(self._key)

    def cpu_since(self) -> float:
        """CPU seconds of the whole process since the release."""
        end = time.process_time()
        self._thread.join()
        return end - self._start


def _floor(release: _Release, refs: Refs) -> float:
    release.arm()
    ray.get(refs)
    return release.cpu_since()


async def _tasks_anyio(
    release: _Release, refs: Refs, one: Callable[[Any], Coroutine[Any, Any, Any]]
) -> float:
    async with anyio.create_task_group() as tg:
        for ref in refs:
            tg.start_soon(one, ref)
        release.arm()
    return release.cpu_since()


async def _tasks_native(release: _Release, refs: Refs) -> float:
    tasks = [asyncio.ensure_future(await_ref(ref)) for ref in refs]
    release.arm()
    await asyncio.gather(*tasks)
    return release.cpu_since()


async def _tasks_trio_asyncio(release: _Release, refs: Refs) -> float:
    import trio

    awaited = aio(await_ref)
    async with trio.open_nursery() as nursery:
        for ref in refs:
            nursery.start_soon(awaited, ref)
        release.arm()
    return release.cpu_since()


def b8_fan_in(ctx: Context) -> list[Row]:
    sizes = [200, 1000] if ctx.quick else [2000, 10_000]
    blocker = new_blocker()
    keys = itertools.count(1)

    def contender(kind: str, n: int) -> tuple[float, float]:
        key = next(keys)
        refs = blocked_refs(blocker, n, key)
        release = _Release(blocker, key)
        if kind == FLOOR:
            cpu = _floor(release, refs)
        elif kind == NATIVE:
            cpu = asyncio.run(_tasks_native(release, refs))
        elif kind == TRIO_ASYNCIO:
            cpu = run_in_trio_asyncio(_tasks_trio_asyncio, release, refs)
        elif kind in ctx.backends:
            cpu = run_on(kind, _tasks_anyio, release, refs, get)
        else:  # to_thread on a backend
            backend = kind.split("(")[1].rstrip(")")
            cpu = run_on(backend, _tasks_anyio, release, refs, to_thread_get)
        return cpu / n, release.setup / n

    kinds = [FLOOR, *ctx.backends, NATIVE]
    kinds += [to_thread_name(b) for b in ctx.backends]
    if has_trio_asyncio(ctx.backends):
        kinds.append(TRIO_ASYNCIO)
    contenders = {(k, n): partial(contender, k, n) for n in sizes for k in kinds}
    # Each run is tens of milliseconds of CPU over thousands of Ray replies:
    # 7 runs, every contender and size taking turns. The thread and
    # trio-asyncio alternatives are references, not the floor: 3 runs each.
    reps = ctx.repeats(7)
    refs_only = [to_thread_name(b) for b in ctx.backends] + [TRIO_ASYNCIO]
    at_most = {(k, n): min(reps, 3) for k in refs_only for n in sizes}
    runs = take_turns(contenders, reps, at_most=at_most)
    ray.kill(blocker)
    rows = []
    for n in sizes:
        per = {k: median([cpu for cpu, _ in runs[(k, n)]]) * 1e6 for k in kinds}
        setup = {k: median([s for _, s in runs[(k, n)]]) * 1e6 for k in kinds}
        compare = [k for k in kinds if k not in ctx.backends]
        for b in ctx.backends:
            baselines = {k: per[k] for k in compare}
            # Not counted above: the CPU per ref from the start of the
            # awaits (or of the blocking call) to the release.
            baselines[f"setup {b}"] = setup[b]
            baselines[f"setup {FLOOR}"] = setup[FLOOR]
            ratio = per[b] / per[FLOOR]
            rows.append(
                Row(
                    "B8",
                    f"fan-in N={n}",
                    b,
                    per[b],
                    "us/ref",
                    baselines,
                    ratio,
                    FLOOR,
                    "<= 1.15x",
                    ok=ratio <= 1.15,
                    note="driver CPU (all threads) from release to last return",
                    compare=compare,
                )
            )
    return rows
