"""A FastAPI service on uvicorn whose requests run their work as Ray tasks.

* ``GET /squares?n=10``: the squares of 0 to n-1, one Ray task each, as JSON.
* ``GET /squares/stream?n=10``: one JSON line per task, as each finishes.
* ``GET /tracker``: how many of the service's tasks started, finished and were
  cancelled.

Each request owns its tasks: they are started in a ``ray_anyio.open_scope``,
so a client that disconnects before its answer has them cancelled.

Run it with ``python examples/fastapi_service.py [--host H] [--port P]``. Ray
is started in the lifespan: it joins the cluster at ``RAY_ADDRESS`` if that is
set, or starts a local Ray (``SQUARES_NUM_CPUS`` CPUs, default all).
"""

from __future__ import annotations

import argparse
import json
import logging
import signal
import sys
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from types import FrameType
from typing import Any, TypedDict

import anyio
import ray
import uvicorn
from fastapi import FastAPI, HTTPException, Query, Request
from fastapi.responses import StreamingResponse
from ray.exceptions import RayError
from squares import TrackerActor, slow_square, squares_as_completed, start_ray
from starlette.types import ASGIApp, Receive, Scope, Send

import ray_anyio

#: Seconds uvicorn gives the requests in flight after SIGTERM or Ctrl+C; then
#: it cancels them, and their scopes cancel their Ray tasks.
GRACEFUL_SHUTDOWN = 5
#: Seconds the lifespan then waits for those requests to end before it stops
#: Ray: a scope gives cancelled tasks 5 s to stop, then 1 s after forcing them.
CANCELLED_REQUESTS_TIMEOUT = 10.0

logger = logging.getLogger("uvicorn.error")


class RequestsInFlight:
    """The HTTP requests being served, counted by an ASGI middleware.

    uvicorn cancels the requests still running when its graceful shutdown
    times out, then runs the lifespan's shutdown at once, without waiting for
    them: their scopes would still be cancelling Ray tasks when Ray stops.
    The lifespan waits for them with :meth:`wait_until_idle`.
    """

    def __init__(self) -> None:
        self.running = 0
        self._idle: anyio.Event | None = None

    def middleware(self, app: ASGIApp) -> ASGIApp:
        async def counted(scope: Scope, receive: Receive, send: Send) -> None:
            if scope["type"] != "http":
                await app(scope, receive, send)
                return
            self.running += 1
            try:
                await app(scope, receive, send)
            finally:
                self.running -= 1
                if self.running == 0 and self._idle is not None:
                    self._idle.set()

        return counted

    async def wait_until_idle(self) -> None:
        while self.running:
            self._idle = anyio.Event()
            await self._idle.wait()


requests_in_flight = RequestsInFlight()


class State(TypedDict):
    tracker: Any


@asynccontextmanager
async def lifespan(app: FastAPI) -> AsyncIterator[State]:
    # Blocking the loop is right here: uvicorn serves nothing until startup
    # is complete, and nothing any more once shutdown has begun.
    start_ray()
    tracker = TrackerActor.remote()
    try:
        yield {"tracker": tracker}
    finally:
        with anyio.move_on_after(CANCELLED_REQUESTS_TIMEOUT):
            await requests_in_flight.wait_until_idle()
        await log_counts(tracker)
        ray.shutdown()


async def log_counts(tracker: Any) -> None:
    """Log what the tracker saw, unless Ray has gone already."""
    try:
        counts = await ray_anyio.get(tracker.snapshot.remote(), timeout=5)
    except (TimeoutError, RayError) as exc:
        logger.warning("squares: the tracker is unavailable: %r", exc)
    else:
        logger.info("squares: tasks %s", json.dumps(counts))


app = FastAPI(title="squares", lifespan=lifespan)
app.add_middleware(requests_in_flight.middleware)


@asynccontextmanager
async def cancelled_on_disconnect(request: Request) -> AsyncIterator[None]:
    """Run the block; cancel it if the client disconnects before it ends.

    The code after the block runs only when the client has gone. An error of
    the block is raised as itself, not in an ExceptionGroup.
    """
    error: Exception | None = None
    async with anyio.create_task_group() as group:
        group.start_soon(_cancel_on_disconnect, request, group.cancel_scope)
        try:
            yield
        except Exception as exc:
            error = exc
        group.cancel_scope.cancel()
    if error is not None:
        raise error


async def _cancel_on_disconnect(request: Request, scope: anyio.CancelScope) -> None:
    # The server reports a disconnect as an "http.disconnect" message; a GET
    # has no body left to read, so nothing else reads these messages.
    while (await request.receive())["type"] != "http.disconnect":
        pass
    scope.cancel()


@app.get("/squares")
async def squares(
    request: Request,
    n: int = Query(10, ge=0, le=1000),
    delay: float = Query(0.0, ge=0, le=600),
) -> dict[str, list[int]]:
    """The squares of 0 to n-1, each computed by a task that takes ``delay`` s."""
    tracker = request.state.tracker
    async with cancelled_on_disconnect(request):
        async with ray_anyio.open_scope() as scope:
            refs = [scope.remote(slow_square, i, delay, tracker) for i in range(n)]
            return {"squares": await ray_anyio.get(refs)}
    # The client has gone and the scope has cancelled the tasks: nobody is
    # left to read this (499 is nginx's "client closed request").
    raise HTTPException(status_code=499, detail="client closed request")


@app.get("/squares/stream")
async def stream_squares(
    request: Request,
    n: int = Query(10, ge=0, le=1000),
    delay: float = Query(0.0, ge=0, le=600),
) -> StreamingResponse:
    """One line ``{"index": i, "square": i * i}`` per task, as each finishes.

    Task ``i`` takes ``i * delay`` seconds. Starlette cancels the iteration
    when the client disconnects, and the scope cancels the tasks.
    """
    lines = squares_as_completed(request.state.tracker, n, delay)
    return StreamingResponse(lines, media_type="application/x-ndjson")


@app.get("/tracker")
async def tracker_counts(request: Request) -> dict[str, int]:
    """The tracker's counters: tasks started, finished and cancelled."""
    counts: dict[str, int] = await ray_anyio.get(
        request.state.tracker.snapshot.remote()
    )
    return counts


def _exit(signum: int, frame: FrameType | None) -> None:
    sys.exit(0)


def main() -> None:
    parser = argparse.ArgumentParser(description="The squares service on uvicorn.")
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, default=8000)
    args = parser.parse_args()
    # uvicorn stops gracefully on SIGTERM, then raises it again for the
    # handler that was there before it started; Python's default would end
    # the process with "killed by SIGTERM" after a clean shutdown.
    signal.signal(signal.SIGTERM, _exit)
    uvicorn.run(
        app,
        host=args.host,
        port=args.port,
        timeout_graceful_shutdown=GRACEFUL_SHUTDOWN,
    )


if __name__ == "__main__":
    main()
