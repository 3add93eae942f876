"""A host cut off in the middle of every call: Ray's error, as soon as ray.get's.

Host b is partitioned while calls of every API wait on work there, and plain
``ray.get`` calls in threads wait on the same refs. Every call must end with
Ray's own error (or a result, where a retry could run elsewhere) no later than
the plain ``ray.get`` plus :data:`MARGIN`. The hosts run with short health
checks and keepalives (``hosts.FAST_DETECTION``); with Ray's default
keepalive only a deadline of the caller's own ends such a call in time
(``test_deadline.py``).
"""

from __future__ import annotations

import threading
import time
from collections.abc import Awaitable, Callable
from typing import Any

import anyio
import pytest
import ray
from ray.exceptions import RayError, RaySystemError

import ray_anyio

from .helpers import (
    IDLE,
    Worker,
    block,
    numbers,
    on,
    place,
    soft_affinity,
    square_unless_on,
    start_counter,
)

pytestmark = [pytest.mark.anyio, pytest.mark.timeout(240)]

#: How much later than the plain ``ray.get`` a call may end: a sweep of the
#: watcher, a wake-up and a loaded two-core machine.
MARGIN = 5.0
#: A bound on the whole test: Ray ends the plain calls within seconds.
BOUND = 90.0


class Plain:
    """``ray.get`` on refs in threads of their own; when each ended."""

    def __init__(self) -> None:
        self.ended: dict[str, float] = {}
        self.threads: list[threading.Thread] = []

    def watch(self, name: str, ref: ray.ObjectRef[Any]) -> None:
        def run() -> None:
            try:
                ray.get(ref)
            except RayError:
                pass
            self.ended[name] = time.monotonic()

        thread = threading.Thread(target=run, daemon=True)
        thread.start()
        self.threads.append(thread)

    def join(self) -> None:
        for thread in self.threads:
            thread.join(BOUND)


@pytest.mark.parametrize("how", ["blackhole", "linkdown"])
async def test_a_partition_ends_every_call_no_later_than_ray_get(
    how: str, nodes: dict[str, str], cut_b: Callable[[str], None]
) -> None:
    starts = start_counter()
    on_b = {**on("b"), **IDLE}
    doomed = block.options(**on_b)
    refs = {name: doomed.remote(starts) for name in ("get", "wait", "as_completed")}
    gen = numbers.options(**on_b, num_returns="streaming").remote(starts, 3)
    actor = place(Worker, "b")
    plain = Plain()
    for name, ref in refs.items():
        plain.watch(name, ref)
    outcomes: dict[str, Any] = {}
    ended: dict[str, float] = {}

    async def call(name: str, run: Callable[[], Awaitable[Any]]) -> None:
        try:
            outcomes[name] = await run()
        except Exception as exc:
            outcomes[name] = exc
        ended[name] = time.monotonic()

    async def wait() -> Any:
        ready, _ = await ray_anyio.wait([refs["wait"]])
        return await ray_anyio.get(ready[0])

    async def as_completed() -> Any:
        async with ray_anyio.as_completed([refs["as_completed"]]) as results:
            return [value async for _, value in results]

    async def scope() -> None:
        async with ray_anyio.open_scope() as scope:
            plain.watch("scope", scope.remote(doomed, starts))

    async def stream() -> Any:
        return [value async for value in ray_anyio.stream(gen, values=True)]

    async def retried_map() -> Any:
        fn = square_unless_on.options(**soft_affinity(nodes["b"]))
        retry = ray_anyio.Retry(attempts=3, delay=0.1)
        async with ray_anyio.map(fn, [starts], [nodes["b"]], [7], retry=retry) as res:
            return [value async for value in res]

    async def pool_map() -> Any:
        pool = ray_anyio.ActorPool([actor], retries=0)
        async with pool.map(lambda a, x: a.block.remote(starts, x), [1]) as results:
            return [value async for value in results]

    calls: dict[str, Callable[[], Awaitable[Any]]] = {
        "get": lambda: ray_anyio.get(refs["get"]),
        "wait": wait,
        "as_completed": as_completed,
        "scope": scope,
        "stream": stream,
        "map": retried_map,
        "pool": pool_map,
    }
    try:
        with anyio.fail_after(BOUND):
            async with anyio.create_task_group() as tg:
                for name, run in calls.items():
                    tg.start_soon(call, name, run)
                await ray_anyio.get(starts.wait.remote(len(calls)))
                cut_b(how)
                cut_at = time.monotonic()
                await anyio.to_thread.run_sync(plain.join)
                # A call still waiting MARGIN after the last ray.get is cancelled.
                tg.cancel_scope.deadline = anyio.current_time() + MARGIN
    finally:
        ray.kill(starts)
    assert set(plain.ended) == {"get", "wait", "as_completed", "scope"}, plain.ended
    outlived = sorted(set(calls) - set(ended))
    assert not outlived, f"still waiting {MARGIN} s after ray.get ended: {outlived}"
    latest = max(plain.ended.values())
    for name in calls:
        bound = plain.ended.get(name, latest) + MARGIN
        assert ended[name] <= bound, (name, ended[name] - cut_at, bound - cut_at)
    assert outcomes.pop("map") == [49], "the retry runs on another host"
    for name, outcome in outcomes.items():
        assert isinstance(outcome, RayError), (name, outcome)
        assert not isinstance(outcome, RaySystemError), (name, outcome)
    print(how, "ray.get:", {n: round(t - cut_at, 1) for n, t in plain.ended.items()})
    print(how, "ray_anyio:", {n: round(t - cut_at, 1) for n, t in ended.items()})
