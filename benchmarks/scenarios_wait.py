"""Scenario B4: draining a list with ``wait(refs, num_returns=1)`` in a loop.

Two cases, pending and finished refs, each at two sizes: the growth of the
drain time from the small to the large size shows whether a call costs O(1)
or O(N). Draining in batches (``num_returns=k``) is B4D, in
:mod:`.scenarios_batches`.
"""

from __future__ import annotations

import itertools
import time
from functools import partial
from typing import Any

import ray

from ray_anyio import wait

from .timing import Context, Row, median, run_on, take_turns, time_async, time_sync
from .workloads import blocked_refs, finished_refs, new_blocker


async def _drain(refs: list[ray.ObjectRef[Any]]) -> None:
    while refs:
        _, refs = await wait(refs, num_returns=1)


def _ray_drain(refs: list[ray.ObjectRef[Any]]) -> None:
    while refs:
        _, refs = ray.wait(refs, num_returns=1)


def _copy_drain(refs: list[ray.ObjectRef[Any]]) -> None:
    # The floor of any drain loop that returns a new list per call.
    while refs:
        refs = refs[1:]


async def _drain_after_release(
    blocker: Any, key: int, refs: list[ray.ObjectRef[Any]]
) -> float:
    start = time.perf_counter()
    blocker.release.remote(key)
    await _drain(refs)
    return time.perf_counter() - start


def _ray_drain_after_release(
    blocker: Any, key: int, refs: list[ray.ObjectRef[Any]]
) -> float:
    start = time.perf_counter()
    blocker.release.remote(key)
    _ray_drain(refs)
    return time.perf_counter() - start


def _growth_rows(
    ctx: Context,
    case: str,
    times: dict[str, dict[int, float]],
    sizes: list[int],
    enforced: bool,
    note: str,
) -> list[Row]:
    small, large = sizes
    growth_limit = 12 * (large / small) / 10
    rows = []
    for b in ctx.backends:
        growth = times[b][large] / times[b][small]
        baselines = {
            f"{name} t({large})/t({small})": times[name][large] / times[name][small]
            for name in times
            if name not in ctx.backends
        }
        baselines[f"t({small}) s"] = times[b][small]
        baselines[f"t({large}) s"] = times[b][large]
        rows.append(
            Row(
                "B4",
                f"{case} t({large})/t({small})",
                b,
                growth,
                "x",
                baselines,
                times[b][large] / times["ray.wait"][large],
                f"ray.wait at N={large}",
                f"growth <= {growth_limit:g}" if enforced else "reported",
                ok=growth <= growth_limit if enforced else None,
                note=note,
                compare=[k for k in baselines if "/t(" in k],
            )
        )
    return rows


def b4_drain(ctx: Context) -> list[Row]:
    sizes = [300, 3000] if ctx.quick else [1000, 10_000]
    return _b4_pending(ctx, sizes) + _b4_finished(ctx, sizes)


def _b4_pending(ctx: Context, sizes: list[int]) -> list[Row]:
    """The issue's case: the calls are still running when the drain starts."""
    blocker = new_blocker()
    keys = itertools.count(1)
    times: dict[str, dict[int, float]] = {b: {} for b in [*ctx.backends, "ray.wait"]}

    def drain_with(name: str, n: int) -> float:
        key = next(keys)
        refs = blocked_refs(blocker, n, key)
        if name == "ray.wait":
            return _ray_drain_after_release(blocker, key, refs)
        return float(run_on(name, _drain_after_release, blocker, key, refs))

    # Both sizes take turns in one series: the growth compares them, so they
    # must see the same machine (run one size after the other, and a load
    # that came up meanwhile counted as growth). Ray's delivery varies too,
    # on either backend alike (see docs/performance.md), hence 10 runs. The
    # quadratic baseline is far slower at the large size: two runs of it.
    contenders = {
        (name, n): partial(drain_with, name, n) for n in sizes for name in times
    }
    runs = take_turns(contenders, ctx.repeats(10), at_most={("ray.wait", sizes[1]): 2})
    for (name, n), values in runs.items():
        times[name][n] = median(values)
    ray.kill(blocker)
    return _growth_rows(
        ctx,
        "pending",
        times,
        sizes,
        enforced=True,
        note="calls blocked on an actor, released as the drain starts",
    )


def _b4_finished(ctx: Context, sizes: list[int]) -> list[Row]:
    """Finished refs: nothing to wait for, so only the per-call cost shows."""
    times: dict[str, dict[int, float]] = {
        b: {} for b in [*ctx.backends, "ray.wait", "list copy"]
    }

    def drain_with(name: str, refs: list[ray.ObjectRef[Any]]) -> float:
        # Each run drains a fresh copy: a drain consumes its list.
        if name == "ray.wait":
            return time_sync(partial(_ray_drain, list(refs)))
        if name == "list copy":
            return time_sync(partial(_copy_drain, list(refs)))
        return float(run_on(name, time_async, partial(_drain, list(refs))))

    refs = {n: finished_refs(n) for n in sizes}
    # Both sizes take turns in one series, as in the pending case.
    contenders = {
        (name, n): partial(drain_with, name, refs[n]) for n in sizes for name in times
    }
    runs = take_turns(contenders, ctx.repeats(11))
    for (name, n), values in runs.items():
        times[name][n] = median(values)
    return _growth_rows(
        ctx,
        "finished",
        times,
        sizes,
        enforced=False,
        note="floor: returning a new remaining list per call is O(N) per call",
    )
