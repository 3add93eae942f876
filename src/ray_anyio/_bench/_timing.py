"""Repeat, time and summarise; every figure is a median of several runs."""

from __future__ import annotations

import gc
import statistics
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from typing import Any


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

    def as_dict(self) -> dict[str, Any]:
        return dict(self.__dict__)


def time_sync(fn: Callable[[], Any]) -> float:
    """Seconds ``fn()`` takes, starting from a collected heap (see below)."""
    gc.collect()
    start = time.perf_counter()
    fn()
    return time.perf_counter() - start


async def time_async(fn: Callable[[], Awaitable[Any]]) -> float:
    """Seconds ``await fn()`` takes, starting from a collected heap.

    Runs alternate between contenders, and a full garbage collection owed to
    the previous run's objects (~30 ms with 100,000 values about) would
    otherwise land in whichever contender runs next.
    """
    gc.collect()
    start = time.perf_counter()
    await fn()
    return time.perf_counter() - start


def median(values: list[float]) -> float:
    return statistics.median(values)
