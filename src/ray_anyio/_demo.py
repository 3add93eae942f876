"""``python -m ray_anyio demo``: the seed document's scenarios on both backends."""

from __future__ import annotations

import importlib.util
import time
from collections.abc import Awaitable, Callable
from typing import Any

import anyio
import ray

from ._get import get
from ._wait import wait


@ray.remote
def _f(n: float, value: Any = None) -> Any:
    time.sleep(n)
    return n if value is None else value


async def _single_ref() -> str:
    value = await get(_f.remote(0.2, {"key1": ["value"]}))
    return f"get(f.remote()) -> {value}"


async def _coroutine_with_ref() -> str:
    async def f() -> ray.ObjectRef[Any]:
        return ray.put({"key1": ["value"]})

    return f"get(coroutine returning a ref) -> {await get(f())}"


async def _chain() -> str:
    obj_id: Any = {"key1": ["value"]}
    for _ in range(7):
        obj_id = ray.put([obj_id])

    async def recurrent_get(obj_id: Any) -> Any:
        if isinstance(obj_id, dict):
            return obj_id
        obj_id = await get(obj_id)
        if isinstance(obj_id, list):
            return await recurrent_get(obj_id[0])
        return obj_id

    return f"chain of 7 nested refs -> {await recurrent_get(obj_id)}"


async def _list() -> str:
    async def coro() -> ray.ObjectRef[Any]:
        ref: ray.ObjectRef[Any] = _f.remote(0.1, "from a coroutine")
        return ref

    values = await get([_f.remote(0, "a ref"), coro(), ray.put("a put")])
    return f"get([ref, coroutine, put]) -> {values}"


async def _wait_two_of_three() -> str:
    results = [_f.remote(i * 0.2) for i in range(3)]
    ready, remaining = await wait(results, num_returns=2)
    return (
        f"wait 2 of 3 tasks (0, 0.2, 0.4 s) -> {len(ready)} ready, "
        f"{len(remaining)} remaining"
    )


async def _wait_with_timeout() -> str:
    results = [_f.remote(i * 0.2) for i in range(5)]
    ready, remaining = await wait(results, num_returns=4, timeout=0.5)
    return (
        f"wait 4 of 5 tasks (0 .. 0.8 s) or 0.5 s -> {len(ready)} ready, "
        f"{len(remaining)} remaining"
    )


async def _wait_unresolved_coroutines() -> str:
    async def gen(n: int) -> ray.ObjectRef[Any]:
        await anyio.sleep(100)
        ref: ray.ObjectRef[Any] = _f.remote(n)
        return ref

    tasks = [gen(i) for i in range(5)]
    ready, remaining = await wait(tasks, num_returns=len(tasks), timeout=0.3)
    return f"wait on coroutines that need 100 s, timeout 0.3 s -> {ready}, {remaining}"


@ray.remote
def _many(n: int) -> tuple[int, ...]:
    return tuple(range(n))


async def _many_finished_refs() -> str:
    # With num_returns=N a task gives N refs; Ray's stubs type it as one ref.
    many: Any = _many.options(num_returns=10_000)
    refs: list[ray.ObjectRef[Any]] = many.remote(10_000)
    ray.wait(refs, num_returns=len(refs), fetch_local=True)
    start = time.perf_counter()
    ray.get(refs)
    base = time.perf_counter() - start
    start = time.perf_counter()
    await get(refs)
    ours = time.perf_counter() - start
    return (
        f"get of 10,000 finished refs: {ours * 1e3:.1f} ms "
        f"(ray.get: {base * 1e3:.1f} ms, ratio {ours / base:.2f})"
    )


SCENARIOS: list[tuple[str, Callable[[], Awaitable[str]]]] = [
    ("A single object ID", _single_ref),
    ("A coroutine that contains an object ID", _coroutine_with_ref),
    ("A chain of coroutines and object IDs", _chain),
    ("A list of the above", _list),
    ("wait: 2 of 3", _wait_two_of_three),
    ("wait: 4 of 5 or a timeout", _wait_with_timeout),
    ("wait: coroutines that miss the timeout", _wait_unresolved_coroutines),
    ("speed", _many_finished_refs),
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
        print(f"  [{backend:7}] {title:40} {elapsed * 1e3:8.1f} ms  {outcome}")


def main() -> int:
    """Start an embedded local Ray and run every scenario on every backend."""
    print("Starting a local Ray (2 CPUs, no dashboard)...")
    ray.init(address="local", num_cpus=2, include_dashboard=False, log_to_driver=False)
    try:
        ray.get([_f.remote(0) for _ in range(2)])  # start the workers
        backends = available_backends()
        if "trio" not in backends:
            print("  (trio is not installed: pip install 'ray-anyio[trio]')")
        for backend in backends:
            print(f"Backend: {backend}")
            anyio.run(_run_all, backend, backend=backend)
    finally:
        ray.shutdown()
    return 0
