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
import signal

import ray
import trio
from hypercorn.config import Config
from hypercorn.trio import serve
from quart import Response, abort, request
from quart_trio import QuartTrio
from ray.exceptions import RayError
from squares import TrackerActor, slow_square, squares_as_completed, start_ray

import ray_anyio

#: Seconds Hypercorn gives the requests in flight after SIGTERM or Ctrl+C;
#: then it cancels them, their scopes cancel their Ray tasks, and Ray stops
#: once they have all ended.
GRACEFUL_SHUTDOWN = 5.0

logger = logging.getLogger("hypercorn.error")


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
    # Parsed here, not with args.get(type=int), which turns "abc" into the
    # default without a word.
    raw = request.args.get(name)
    try:
        value = default if raw is None else int(raw)
    except ValueError:
        value = -1
    if not 0 <= value <= 1000:
        abort(400, f"{name} must be a whole number from 0 to 1000, got {raw!r}")
    return value


def seconds_arg(name: str) -> float:
    raw = request.args.get(name)
    try:
        value = 0.0 if raw is None else float(raw)
    except ValueError:
        value = -1.0
    if not 0 <= value <= 600:  # NaN fails this too
        abort(400, f"{name} must be a number of seconds from 0 to 600, got {raw!r}")
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
