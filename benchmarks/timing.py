"""Repeat, time and summarise; every figure is a median of several runs."""

from __future__ import annotations

import gc
import statistics
import time
from collections.abc import Awaitable, Callable, Hashable, Mapping
from dataclasses import dataclass, field
from typing import Any, TypeVar

import anyio

T = TypeVar("T")
K = TypeVar("K", bound=Hashable)


@dataclass
class Row:
    """One line of the report: a measured case, its baselines and the ratio."""

    scenario: str
    case: str
    backend: str
    value: float
    unit: str
    baselines: dict[str, float] = field(default_factory=dict)
    ratio: float | None = None
    ratio_to: str = ""
    target: str = ""
    ok: bool | None = None
    note: str = ""
    #: Names of ``baselines`` that are alternatives a user would pick instead,
    #: measured in ``unit``: the plot draws them beside the row's value.
    compare: list[str] = field(default_factory=list)

    def as_dict(self) -> dict[str, Any]:
        return dict(self.__dict__)


@dataclass
class Context:
    """What every scenario is told: the size of the run and the backends."""

    quick: bool
    backends: list[str]

    def repeats(self, full: int) -> int:
        return 2 if self.quick else full


def time_sync(fn: Callable[[], Any]) -> float:
    """Seconds ``fn()`` takes, starting from a collected heap (see below)."""
    gc.collect()
    start = time.perf_counter()
    fn()
    return time.perf_counter() - start


async def time_async(fn: Callable[[], Awaitable[Any]]) -> float:
    """Seconds ``await fn()`` takes, starting from a collected heap.

    Runs alternate between contenders, and a full garbage collection owed to
    the previous run's objects would otherwise land in whichever contender
    runs next.
    """
    gc.collect()
    start = time.perf_counter()
    await fn()
    return time.perf_counter() - start


def median(values: list[float]) -> float:
    return statistics.median(values)


def run_on(backend: str, fn: Callable[..., Any], *args: Any) -> Any:
    """``fn(*args)`` in a new event loop of ``backend`` (``asyncio``, ``trio``)."""
    return anyio.run(fn, *args, backend=backend)


def _rotated(names: list[K], rep: int) -> list[K]:
    """``names`` in the order of repetition ``rep``: each takes every place.

    Where every run submits new calls, a run pays for Ray's clean-up of the
    run before it (see docs/performance.md), so no contender may always go
    first.
    """
    k = rep % len(names)
    return names[k:] + names[:k]


def take_turns(
    contenders: Mapping[K, Callable[[], T]],
    reps: int,
    *,
    at_most: Mapping[K, int] | None = None,
) -> dict[K, list[T]]:
    """Run every contender ``reps`` times, taking turns going first.

    A contender named in ``at_most`` runs only in that many first repetitions
    (a slow baseline that is a reference, not the target).
    """
    limits = at_most or {}
    results: dict[K, list[T]] = {name: [] for name in contenders}
    for rep in range(reps):
        names = [name for name in contenders if rep < limits.get(name, reps)]
        for name in _rotated(names, rep):
            results[name].append(contenders[name]())
    return results
