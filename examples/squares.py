"""What both web examples share: the Ray task, the tracker, Ray's start, a stream.

Imported by ``fastapi_service.py`` and ``quart_trio_service.py``, which run
as scripts from this folder (Python puts the script's folder on ``sys.path``).
"""

from __future__ import annotations

import json
import os
import signal
import time
from collections.abc import AsyncIterator
from typing import Any

import ray

import ray_anyio


class Tracker:
    """Counts what the service's tasks do, as they report it."""

    def __init__(self) -> None:
        self.counts = {"started": 0, "finished": 0, "cancelled": 0}

    def record(self, event: str) -> None:
        self.counts[event] += 1

    def snapshot(self) -> dict[str, int]:
        return dict(self.counts)


# An actor that needs no CPU, so that every CPU of the Ray is left to tasks.
TrackerActor: Any = ray.remote(num_cpus=0)(Tracker)


@ray.remote
def slow_square(x: int, seconds: float, tracker: Any) -> int:
    """``x * x`` after ``seconds``, reporting to the tracker."""
    try:
        # Inside the try: once the tracker has heard of the start, it hears
        # of the cancellation too. Short sleeps: ray.cancel() interrupts a
        # running task between two bytecodes, with a KeyboardInterrupt.
        tracker.record.remote("started")
        deadline = time.monotonic() + seconds
        while time.monotonic() < deadline:
            time.sleep(min(0.05, seconds))
    except KeyboardInterrupt:
        ray.get(tracker.record.remote("cancelled"))
        raise
    ray.get(tracker.record.remote("finished"))
    return x * x


def start_ray() -> None:
    """Start or join Ray without taking the server's signal handling away."""
    # ray.cancel() stops a running task with SIGINT, which does nothing in a
    # Ray started with SIGINT ignored (a shell without job control starts us
    # so, and Ray's processes inherit it).
    if signal.getsignal(signal.SIGINT) is signal.SIG_IGN:
        signal.signal(signal.SIGINT, signal.default_int_handler)
    # ray.init() replaces the SIGTERM handler (the server's, which stops it
    # gracefully: uvicorn's, or trio's signal receiver) with one that exits
    # on the spot; its core worker adds a C++ handler that prints a stack
    # trace first. Put the server's back.
    server_handler = signal.getsignal(signal.SIGTERM)
    address = os.environ.get("RAY_ADDRESS", "local")
    options: dict[str, Any] = {}
    if address == "local" and os.environ.get("SQUARES_NUM_CPUS"):
        options["num_cpus"] = int(os.environ["SQUARES_NUM_CPUS"])
    ray.init(address=address, include_dashboard=False, **options)
    if server_handler is not None:
        signal.signal(signal.SIGTERM, server_handler)


async def squares_as_completed(
    tracker: Any, n: int, delay: float
) -> AsyncIterator[str]:
    """One JSON line per task as it finishes; task ``i`` takes ``i * delay`` s.

    The scope owns the tasks: when the server cancels the response (its
    client has gone), the scope cancels the tasks still running.
    """
    async with ray_anyio.open_scope() as scope:
        refs = [scope.remote(slow_square, i, i * delay, tracker) for i in range(n)]
        async with ray_anyio.as_completed(refs) as results:
            async for index, value in results:
                yield json.dumps({"index": index, "square": value}) + "\n"
