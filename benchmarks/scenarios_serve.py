"""Scenario S1: many concurrent Ray Serve requests, driver CPU per request.

A trivial deployment (one replica, no HTTP proxy) on the benchmark's local
Ray. Each run sends ``N`` requests at once through one handle and collects
them: with ray-anyio (``get`` of the list of responses, and ``as_completed``)
on every backend, against Serve's native ``await asyncio.gather(*responses)``
on asyncio. The figure is the driver process's CPU time (``time.process_time``:
every thread of it, Serve's router thread included) per request, submission
and collection together; runs alternate, medians are reported.
"""

from __future__ import annotations

import asyncio
import gc
import time
from collections.abc import Awaitable, Callable
from functools import partial
from typing import Any

import ray_anyio

from .timing import Context, Row, median, run_on, take_turns

APP = "ray_anyio_bench_s1"


class _Trivial:
    async def echo(self, x: int) -> int:
        return x


def _start(n: int) -> Any:
    from ray import serve

    serve.start(proxy_location="Disabled")
    deployment: Any = serve.deployment(
        _Trivial,
        name="Trivial",
        ray_actor_options={"num_cpus": 0},
        max_ongoing_requests=2 * n,
    )
    return serve.run(deployment.bind(), name=APP, route_prefix=None)


async def _cpu_per_request(
    handle: Any, n: int, collect: Callable[[list[Any]], Awaitable[Any]]
) -> float:
    gc.collect()
    start = time.process_time()
    responses = [handle.echo.remote(i) for i in range(n)]
    await collect(responses)
    return (time.process_time() - start) / n


async def _native(responses: list[Any]) -> Any:
    return await asyncio.gather(*responses)


async def _get(responses: list[Any]) -> Any:
    return await ray_anyio.get(responses)


async def _as_completed(responses: list[Any]) -> Any:
    async with ray_anyio.as_completed(responses) as results:
        return [value async for _, value in results]


def s1_serve_requests(ctx: Context) -> list[Row]:
    n = 200 if ctx.quick else 1000
    handle = _start(n)
    try:
        ways = {"get": _get, "as_completed": _as_completed}
        contenders: dict[str, Callable[[], float]] = {
            "asyncio.gather": partial(
                run_on, "asyncio", _cpu_per_request, handle, n, _native
            )
        }
        for b in ctx.backends:
            for name, way in ways.items():
                contenders[f"{name}/{b}"] = partial(
                    run_on, b, _cpu_per_request, handle, n, way
                )
        for contender in contenders.values():  # warm: the router, the replica
            contender()
        results = take_turns(contenders, ctx.repeats(9))
    finally:
        from ray import serve

        serve.shutdown()
    native = median(results["asyncio.gather"])
    rows = []
    for b in ctx.backends:
        for name in ways:
            ours = median(results[f"{name}/{b}"])
            ratio = ours / native
            rows.append(
                Row(
                    "S1",
                    f"N={n} {name}",
                    b,
                    ours * 1e6,
                    "us CPU/request",
                    {"asyncio.gather": native * 1e6},
                    ratio,
                    "asyncio.gather",
                    "<= 1.20x",
                    ratio <= 1.2,
                    compare=["asyncio.gather"],
                )
            )
    return rows
