"""Ray-side workloads for the benchmarks: finished refs, running and blocked ones."""

from __future__ import annotations

import asyncio
import random
import time
from collections.abc import Sequence
from typing import Any

import ray

#: Values returned per task when making many finished refs at once.
_PER_TASK = 10_000


@ray.remote
def _values(n: int) -> Any:
    return tuple(range(n)) if n > 1 else 0


def finished_refs(n: int) -> list[ray.ObjectRef[Any]]:
    """``n`` refs of finished tasks (small values, as task results usually are)."""
    refs: list[ray.ObjectRef[Any]] = []
    while len(refs) < n:
        k = min(_PER_TASK, n - len(refs))
        out: Any = _values.options(num_returns=k).remote(k)
        refs.extend(out if k > 1 else [out])
    ray.wait(refs, num_returns=len(refs), fetch_local=True)
    return refs


class _Sleeper:
    """Calls that are still running: each sleeps a few milliseconds."""

    async def sleep_then(self, seconds: float, value: int) -> int:
        await asyncio.sleep(seconds)
        return value

    async def ready(self) -> bool:
        return True


class _Blocker:
    """Calls that stay pending until :meth:`release` of their ``key``."""

    def __init__(self) -> None:
        self.events: dict[int, asyncio.Event] = {}
        self.waiting: dict[int, int] = {}
        self.changed = asyncio.Condition()

    async def block(self, key: int = 0) -> int:
        event = self.events.setdefault(key, asyncio.Event())
        async with self.changed:
            self.waiting[key] = self.waiting.get(key, 0) + 1
            self.changed.notify_all()
        await event.wait()
        return 1

    async def until_blocked(self, key: int, n: int) -> None:
        """Return once ``n`` calls with ``key`` have started waiting."""
        async with self.changed:
            await self.changed.wait_for(lambda: self.waiting.get(key, 0) >= n)

    async def release(self, key: int = 0) -> None:
        self.events.setdefault(key, asyncio.Event()).set()


class _Worker:
    """A pool member whose calls take ``delay`` seconds each (0: a short call)."""

    def __init__(self, delay: float) -> None:
        self.delay = delay

    def work(self, x: int) -> int:
        if self.delay:
            time.sleep(self.delay)
        return x

    def ready(self) -> bool:
        return True


@ray.remote
def noop(x: int) -> int:
    """A task that returns at once."""
    return x


# Created with ``.options(num_cpus=0, max_concurrency=...)`` by the scenarios.
Sleeper = ray.remote(_Sleeper)
Blocker = ray.remote(_Blocker)
Worker = ray.remote(_Worker)


def new_sleeper() -> Any:
    """A :class:`_Sleeper` actor that runs any number of calls at once."""
    actor: Any = Sleeper.options(num_cpus=0, max_concurrency=100_000).remote()
    ray.get(actor.ready.remote())
    return actor


def new_blocker() -> Any:
    """A :class:`_Blocker` actor that holds any number of calls at once."""
    return Blocker.options(num_cpus=0, max_concurrency=200_000).remote()


def running_refs(
    sleeper: Any, n: int, max_seconds: float = 0.010
) -> list[ray.ObjectRef[Any]]:
    """``n`` refs of calls that sleep 0-``max_seconds`` each, just submitted."""
    rng = random.Random(n)
    return [sleeper.sleep_then.remote(rng.uniform(0, max_seconds), i) for i in range(n)]


def blocked_refs(blocker: Any, n: int, key: int) -> list[ray.ObjectRef[Any]]:
    """``n`` refs of calls that are running and blocked until ``release(key)``."""
    refs = [blocker.block.remote(key) for _ in range(n)]
    ray.get(blocker.until_blocked.remote(key, n))
    return refs


def new_workers(delays: Sequence[float]) -> list[Any]:
    """One started :class:`_Worker` actor per delay (calls one at a time each)."""
    actors: list[Any] = [Worker.options(num_cpus=0).remote(d) for d in delays]
    ray.get([actor.ready.remote() for actor in actors])
    return actors
