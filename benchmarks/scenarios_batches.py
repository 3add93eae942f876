"""Scenario B4D: draining finished refs in batches, ``wait(refs, num_returns=k)``.

The loop is ``ready, refs = await wait(refs, num_returns=k)`` until ``refs`` is
empty, against the same loop over ``ray.wait`` with the same ``k`` over the same
refs, at N = 1e4, 1e5 and 1e6 with k = 1,000 and 10,000 (``--quick``: N = 1e4
and 1e5, k = 1,000).

It has an id of its own, beside B4 rather than more B4 cases: at full size it
makes a million refs and runs for minutes, so ``--only B4`` stays short and
``--only B4D`` runs it alone; and its rows (a cost per ref at three sizes, and
its growth) are not B4's two-size growth rows. Rows:

- per (N, k) and backend: the cost per ref (drain time / N), with the ratio of
  the drain time to ``ray.wait``'s (target <= 1.2x for N >= 1e5);
- per k and backend: the growth of the cost per ref from the smallest N to the
  largest, ``(t(N_max) / N_max) / (t(N_min) / N_min)`` (target flat: <= 1.5x).

A ``remaining`` list passed straight back lets ``wait`` skip asking Ray again,
while every ``ray.wait`` call takes all remaining refs afresh: O(N) per call,
O(N^2 / k) per drain. So a ``ray.wait`` drain is stopped after
``_BASELINE_LIMIT`` seconds; its time is then a lower bound, and the ratio to it
an upper bound, which the row says.

Beside both: the *list-copy floor*, ``refs = refs[k:]`` until empty, the
least any drain that returns a new ``remaining`` list per call can cost. Each
call references every ref left, O(N^2 / k) per drain too, with a small
constant while the refs fit in the CPU's caches and a cache miss per ref once
they do not; its growth is reported beside ours.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from functools import partial
from typing import Any

import ray

from ray_anyio import wait

from .timing import Context, Row, median, run_on, take_turns, time_async, time_sync
from .workloads import finished_refs

#: Runs per size at full size: a drain of a million refs is slow, so fewer.
_RUNS = {10_000: 11, 100_000: 5, 1_000_000: 3}
#: The same for the ``ray.wait`` baseline, which is a reference, not the
#: target: at a million refs one run, which the limit below may stop.
_BASELINE_RUNS = {10_000: 11, 100_000: 5, 1_000_000: 1}
#: Seconds after which a ``ray.wait`` drain stops (see the module docstring).
_BASELINE_LIMIT = 120.0

Key = tuple[str, int, int]

#: The list-copy floor's name in the rows.
COPY = "list copy"


async def _drain(refs: list[ray.ObjectRef[Any]], k: int) -> None:
    while refs:
        _, refs = await wait(refs, num_returns=min(k, len(refs)))


def _ray_drain(refs: list[ray.ObjectRef[Any]], k: int, left: list[int]) -> None:
    """Drain with ``ray.wait``; stop after the limit, appending the refs left."""
    deadline = time.perf_counter() + _BASELINE_LIMIT
    while refs and time.perf_counter() < deadline:
        _, refs = ray.wait(refs, num_returns=min(k, len(refs)))
    left.append(len(refs))


def _copy_drain(refs: list[ray.ObjectRef[Any]], k: int) -> None:
    # The floor of any drain that returns a new list per call: each call
    # references every ref left, which stops being cheap once the refs
    # outgrow the CPU's caches.
    while refs:
        refs = refs[k:]


def _sci(n: int) -> str:
    """``10000`` as ``1e4``, for case names."""
    return f"{n:.0e}".replace("e+0", "e").replace("e+", "e")


def b4d_drain_batches(ctx: Context) -> list[Row]:
    sizes = [10_000, 100_000] if ctx.quick else [10_000, 100_000, 1_000_000]
    batches = [1000] if ctx.quick else [1000, 10_000]
    names = [*ctx.backends, "ray.wait", COPY]
    refs = {n: finished_refs(n) for n in sizes}
    left: dict[tuple[int, int], list[int]] = {}

    def drain_with(name: str, n: int, k: int) -> float:
        # Each run drains a fresh copy: a drain consumes its list.
        mine = list(refs[n])
        if name == "ray.wait":
            return time_sync(partial(_ray_drain, mine, k, left.setdefault((n, k), [])))
        if name == COPY:
            return time_sync(partial(_copy_drain, mine, k))
        return float(run_on(name, time_async, partial(_drain, mine, k)))

    # Every size takes turns in one series, as in B4: the growth compares
    # them, so they must see the same machine.
    cases = [(n, k) for n in sizes for k in batches]
    contenders: dict[Key, Callable[[], float]] = {
        (name, n, k): partial(drain_with, name, n, k)
        for n, k in cases
        for name in names
    }
    at_most = {
        (name, n, k): ctx.repeats((_BASELINE_RUNS if name == "ray.wait" else _RUNS)[n])
        for name, n, k in contenders
    }
    runs = take_turns(contenders, max(at_most.values()), at_most=at_most)
    refs.clear()  # a million refs: free them before the next scenario
    times = {key: median(values) for key, values in runs.items()}
    stopped = {case: max(counts) for case, counts in left.items() if max(counts)}
    rows = [
        _drain_row(b, n, k, times, stopped.get((n, k), 0))
        for n, k in cases
        for b in ctx.backends
    ]
    for k in batches:
        capped = (sizes[-1], k) in stopped
        rows.extend(_growth_row(b, sizes, k, times, capped) for b in ctx.backends)
    return rows


def _drain_row(b: str, n: int, k: int, times: dict[Key, float], left: int) -> Row:
    ours, theirs = times[(b, n, k)], times[("ray.wait", n, k)]
    ratio = ours / theirs
    baselines = {"drain s": ours, f"{COPY} us/ref": times[(COPY, n, k)] / n * 1e6}
    if left:
        baselines["ray.wait s (stopped)"] = theirs
        baselines["ray.wait refs left"] = left
    else:
        baselines["ray.wait s"] = theirs
        baselines["ray.wait us/ref"] = theirs / n * 1e6
    return Row(
        "B4D",
        f"N={_sci(n)}, k={k}",
        b,
        ours / n * 1e6,
        "us/ref",
        baselines,
        ratio,
        "ray.wait",
        "<= 1.2x for N >= 1e5",
        ok=None if n < 100_000 else ratio <= 1.2,
        note=(
            f"ray.wait stopped after {_BASELINE_LIMIT:g} s: the ratio is an upper bound"
            if left
            else ""
        ),
    )


def _growth_row(
    b: str, sizes: list[int], k: int, times: dict[Key, float], capped: bool
) -> Row:
    small, large = sizes[0], sizes[-1]

    def per_ref(name: str, n: int) -> float:
        return times[(name, n, k)] / n

    growth = per_ref(b, large) / per_ref(b, small)
    theirs = per_ref("ray.wait", large) / per_ref("ray.wait", small)
    return Row(
        "B4D",
        f"per-ref growth {_sci(small)}->{_sci(large)}, k={k}",
        b,
        growth,
        "x",
        {
            f"us/ref at {_sci(small)}": per_ref(b, small) * 1e6,
            f"us/ref at {_sci(large)}": per_ref(b, large) * 1e6,
            "ray.wait growth" + (" at least" if capped else ""): theirs,
            f"{COPY} growth": per_ref(COPY, large) / per_ref(COPY, small),
        },
        None,
        "",
        "<= 1.5x (flat)",
        ok=growth <= 1.5,
        note=f"(t({_sci(large)})/{_sci(large)}) / (t({_sci(small)})/{_sci(small)})",
    )
