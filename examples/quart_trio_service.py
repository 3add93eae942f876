"""A Quart-Trio service on Hypercorn's trio worker whose requests run Ray tasks.

* ``GET /squares?n=10``: the squares of 0 to n-1, one Ray task each, as JSON.
* ``GET /squares/stream?n=10``: one JSON line per task, as each finishes.
* ``GET /tracker``: how many of the service's tasks started, finished and were
  cancelled.

Each request owns its tasks: they are started in a ``ray_anyio.open_scope``,
and Quart-Trio cancels a request whose client disconnects, so its tasks are
cancelled with it.

Run it with ``python examples/quart_trio_service.py [--host H] [--port P]``.
Ray is started before serving: it joins the cluster at ``RAY_ADDRESS`` if that
is set, or starts a local Ray (``SQUARES_NUM_CPUS`` CPUs, default all).
"""

from __future__ import annotations

import argparse
import json
import logging
import os
import signal
import time
from collections.abc import AsyncIterator
from typing import Any

import ray
import trio
from hypercorn.config import Config
from hypercorn.trio import serve
from quart import Response, abort, request
from quart_trio import QuartTrio
from ray.exceptions import RayError

import ray_anyio

#: Seconds Hypercorn gives the requests in flight after SIGTERM or Ctrl+C;
#: then it cancels them, their scopes cancel their Ray tasks, and Ray stops
#: once they have all ended.
GRACEFUL_SHUTDOWN = 5.0

logger = logging.getLogger("hypercorn.error")


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
    # ray.init() replaces the SIGTERM handler (trio's, which stops the server
    # gracefully) with one that exits on the spot; its core worker adds a
    # C++ handler that prints a stack trace first. Put the server's back.
    server_handler = signal.getsignal(signal.SIGTERM)
    address = os.environ.get("RAY_ADDRESS", "local")
    options: dict[str, Any] = {}
    if address == "local" and os.environ.get("SQUARES_NUM_CPUS"):
        options["num_cpus"] = int(os.environ["SQUARES_NUM_CPUS"])
    ray.init(address=address, include_dashboard=False, **options)
    if server_handler is not None:
        signal.signal(signal.SIGTERM, server_handler)


app = QuartTrio(__name__)


@app.before_serving
async def startup() -> None:
    # Blocking trio here is right: Hypercorn serves nothing before startup.
    start_ray()
    app.extensions["tracker"] = TrackerActor.remote()


@app.after_serving
async def shutdown() -> None:
    # Hypercorn gets here once every connection has ended: the requests it
    # cancelled have finished cancelling their Ray tasks.
    try:
        counts = await ray_anyio.get(
            app.extensions["tracker"].snapshot.remote(), timeout=5
        )
    except (TimeoutError, RayError) as exc:
        logger.warning("squares: the tracker is unavailable: %r", exc)
    else:
        logger.info("squares: tasks %s", json.dumps(counts))
    ray.shutdown()


def int_arg(name: str, default: int) -> int:
    value = request.args.get(name, default=default, type=int)
    if value is None or not 0 <= value <= 1000:
        abort(400, f"{name} must be a whole number from 0 to 1000")
    return value


def seconds_arg(name: str) -> float:
    value = request.args.get(name, default=0.0, type=float)
    if value is None or not 0 <= value <= 600:
        abort(400, f"{name} must be a number of seconds from 0 to 600")
    return value


@app.get("/squares")
async def squares() -> dict[str, list[int]]:
    """The squares of 0 to n-1, each computed by a task that takes ``delay`` s."""
    n, delay = int_arg("n", 10), seconds_arg("delay")
    tracker = app.extensions["tracker"]
    async with ray_anyio.open_scope() as scope:
        refs = [scope.remote(slow_square, i, delay, tracker) for i in range(n)]
        values = await ray_anyio.get(refs)
    return {"squares": values}


@app.get("/squares/stream")
async def stream_squares() -> Response:
    """One line ``{"index": i, "square": i * i}`` per task, as each finishes.

    Task ``i`` takes ``i * delay`` seconds.
    """
    n, delay = int_arg("n", 10), seconds_arg("delay")
    lines = squares_as_completed(app.extensions["tracker"], n, delay)
    return Response(lines, mimetype="application/x-ndjson")


async def squares_as_completed(
    tracker: Any, n: int, delay: float
) -> AsyncIterator[str]:
    async with ray_anyio.open_scope() as scope:
        refs = [scope.remote(slow_square, i, i * delay, tracker) for i in range(n)]
        async with ray_anyio.as_completed(refs) as results:
            async for index, value in results:
                yield json.dumps({"index": index, "square": value}) + "\n"


@app.get("/tracker")
async def tracker_counts() -> dict[str, int]:
    """The tracker's counters: tasks started, finished and cancelled."""
    counts: dict[str, int] = await ray_anyio.get(
        app.extensions["tracker"].snapshot.remote()
    )
    return counts


async def serve_until_signalled(host: str, port: int) -> None:
    """Serve the app until SIGINT or SIGTERM, then shut down gracefully."""
    config = Config()
    config.bind = [f"{host}:{port}"]
    config.accesslog = "-"
    config.graceful_timeout = GRACEFUL_SHUTDOWN
    # Ray's start is part of startup, and can take long on a busy machine.
    config.startup_timeout = 180
    with trio.open_signal_receiver(signal.SIGINT, signal.SIGTERM) as signals:

        async def first_signal() -> None:
            async for _ in signals:
                return

        await serve(app, config, shutdown_trigger=first_signal)


def main() -> None:
    parser = argparse.ArgumentParser(description="The squares service on trio.")
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, default=8000)
    args = parser.parse_args()
    trio.run(serve_until_signalled, args.host, args.port)


if __name__ == "__main__":
    main()
