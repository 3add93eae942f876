"""What every web example must do, checked against its real server with httpx.

A test class per example (``test_<example>.py``) names the script; the
request checks run their httpx client on both backends. Each check
synchronises through the service's ``GET /tracker``, which counts the tasks
that started, finished and were cancelled: the counters are the service's
for its whole life, so a check compares them with what they were when it
began, and polls them with a deadline until they say what it waits for.
"""

from __future__ import annotations

import json
import re
import signal
import threading
import time
from collections.abc import AsyncIterator, Callable
from contextlib import aclosing, asynccontextmanager
from typing import ClassVar

import anyio
import httpx
import pytest

from .conftest import Service, Services

Counts = dict[str, int]

#: Seconds a check waits for the tracker to show what it expects. Generous:
#: after the tasks a test cancelled, the next test's tasks wait for Ray to give
#: their CPUs back, or to start workers, which can take a minute on a machine
#: that runs the rest of the suite beside the servers.
TRACKER_TIMEOUT = 180.0
#: Text of a crash, a C++ stack dump or an abort in a server's stderr.
CRASH_MARKS = (
    "Stack trace",
    "SIGABRT",
    "core dump",
    "*** SIG",
    "Aborted",
    "Fatal Python error",
)


@asynccontextmanager
async def client_of(service: Service) -> AsyncIterator[httpx.AsyncClient]:
    async with httpx.AsyncClient(base_url=service.url, timeout=60) as client:
        yield client


async def counts(client: httpx.AsyncClient) -> Counts:
    response = await client.get("/tracker")
    response.raise_for_status()
    result: Counts = response.json()
    return result


def since(now: Counts, before: Counts) -> Counts:
    return {key: now[key] - before[key] for key in now}


async def until(
    client: httpx.AsyncClient,
    before: Counts,
    condition: Callable[[Counts], bool],
    what: str,
) -> Counts:
    """Poll the tracker until ``condition`` holds for the change since ``before``."""
    deadline = time.monotonic() + TRACKER_TIMEOUT
    while True:
        change = since(await counts(client), before)
        if condition(change):
            return change
        if time.monotonic() > deadline:
            pytest.fail(f"waited {TRACKER_TIMEOUT} s for {what}; tracker: {change}")
        await anyio.sleep(0.1)


def logged_counts(stderr: str) -> Counts:
    """The tracker's counters that the server logs before it stops Ray."""
    found = re.findall(r"squares: tasks (\{.*\})", stderr)
    assert found, "the server did not log its tracker's counters:\n" + stderr[-3000:]
    result: Counts = json.loads(found[-1])
    return result


def assert_no_crash(stderr: str) -> None:
    for mark in CRASH_MARKS:
        assert mark not in stderr, f"{mark!r} in the server's stderr:\n{stderr[-5000:]}"


def until_blocking(
    service: Service, before: Counts, condition: Callable[[Counts], bool], what: str
) -> Counts:
    """:func:`until`, from a synchronous test (on an event loop of its own)."""

    async def poll() -> Counts:
        async with client_of(service) as client:
            return await until(client, before, condition, what)

    return anyio.run(poll)


def request_in_flight(service: Service, url: str) -> None:
    """A request that the server's shutdown ends, one way or another."""
    try:
        httpx.get(service.url + url, timeout=120)
    except httpx.HTTPError:
        pass  # the server closed the connection without an answer


class ServiceChecks:
    #: The example's file, in examples/.
    script: ClassVar[str]
    #: The end of a traceback that the server prints, by design, for each
    #: request it cancels when its graceful shutdown times out.
    cancelled_request_traceback: ClassVar[str | None] = None

    @pytest.mark.anyio
    async def test_squares_fans_out_tasks(self, service: Service) -> None:
        async with client_of(service) as client:
            before = await counts(client)
            response = await client.get("/squares", params={"n": 10})
            assert response.status_code == 200, response.text
            assert response.json() == {"squares": [i * i for i in range(10)]}
            change = since(await counts(client), before)
            assert change == {"started": 10, "finished": 10, "cancelled": 0}
            bad_params: list[dict[str, str | int]] = [
                {"n": -1},
                {"n": "abc"},
                {"n": "2.5"},
                {"delay": "soon"},
            ]
            for bad in bad_params:
                invalid = await client.get("/squares", params=bad)
                assert 400 <= invalid.status_code < 500, (bad, invalid.text)
                name = next(iter(bad))
                assert name in invalid.text, (bad, invalid.text)  # says why

    @pytest.mark.anyio
    async def test_stream_sends_each_result_as_its_task_finishes(
        self, service: Service
    ) -> None:
        n, delay = 3, 3.0  # task i takes i * delay seconds
        async with client_of(service) as client:
            before = await counts(client)
            params = {"n": n, "delay": delay}
            async with client.stream("GET", "/squares/stream", params=params) as r:
                assert r.status_code == 200
                assert r.headers["content-type"].startswith("application/x-ndjson")
                lines = r.aiter_lines()
                first = json.loads(await lines.__anext__())
                # The first result is here while the other tasks still run.
                assert since(await counts(client), before)["finished"] < n
                rest = [json.loads(line) async for line in lines if line]
            results = [first, *rest]
            assert sorted(result["index"] for result in results) == list(range(n))
            assert all(result["square"] == result["index"] ** 2 for result in results)
            change = since(await counts(client), before)
            assert change == {"started": n, "finished": n, "cancelled": 0}

    @pytest.mark.anyio
    async def test_client_disconnect_cancels_its_tasks(self, service: Service) -> None:
        async with client_of(service) as tracker, client_of(service) as client:
            before = await counts(tracker)
            async with anyio.create_task_group() as group:
                group.start_soon(client.get, "/squares?n=2&delay=600")
                await until(
                    tracker, before, lambda c: c["started"] == 2, "both tasks to run"
                )
                # Cancelling the request closes its connection: a disconnect.
                group.cancel_scope.cancel()
            change = await until(
                tracker, before, lambda c: c["cancelled"] == 2, "both cancelled"
            )
            assert change == {"started": 2, "finished": 0, "cancelled": 2}

    @pytest.mark.anyio
    async def test_client_disconnect_mid_stream_cancels_the_rest(
        self, service: Service
    ) -> None:
        async with client_of(service) as tracker, client_of(service) as client:
            before = await counts(tracker)
            params = {"n": 3, "delay": 300}  # task 0 is instant, 1 and 2 are not
            async with (
                client.stream("GET", "/squares/stream", params=params) as r,
                aclosing(r.aiter_lines()) as lines,  # type: ignore[type-var]
            ):
                assert json.loads(await lines.__anext__())["index"] == 0
                await until(
                    tracker,
                    before,
                    lambda c: c["started"] == 3 and c["finished"] == 1,
                    "tasks 1 and 2 to run",
                )
            # Leaving a stream that is not read to the end closes the connection
            # (and its unfinished line iterator is closed, not left to the GC).
            change = await until(
                tracker, before, lambda c: c["cancelled"] == 2, "both cancelled"
            )
            assert change == {"started": 3, "finished": 1, "cancelled": 2}

    # The signal tests are synchronous: what they drive is a process, and the
    # client's event loop has no part in it (a thread holds the request).
    def test_sigterm_with_a_request_in_flight_exits_0(self, services: Services) -> None:
        service = services.take()
        before = httpx.get(f"{service.url}/tracker", timeout=60).json()
        request = threading.Thread(
            target=request_in_flight, args=(service, "/squares?n=2&delay=600")
        )
        request.start()
        until_blocking(service, before, lambda c: c["started"] == 2, "both to run")
        status = service.stop(signal.SIGTERM)
        request.join(timeout=60)
        assert not request.is_alive(), "the request outlived the server"
        stderr = service.stderr
        assert status == 0, stderr[-5000:]
        assert_no_crash(stderr)
        expected = self.cancelled_request_traceback
        tracebacks = stderr.count("Traceback (most recent call last)")
        assert tracebacks == (stderr.count(expected) if expected else 0), stderr
        # The server cancelled the request, whose scope cancelled its tasks,
        # before it stopped Ray.
        assert since(logged_counts(stderr), before) == {
            "started": 2,
            "finished": 0,
            "cancelled": 2,
        }
        assert service.wait_until_nothing_left() == [], "Ray outlived the server"

    def test_ctrl_c_exits_0(self, services: Services) -> None:
        service = services.take()
        response = httpx.get(f"{service.url}/squares", params={"n": 4}, timeout=60)
        assert response.status_code == 200
        # Ctrl+C sends SIGINT to the terminal's whole process group: the
        # server's and those of its Ray that share it.
        status = service.stop(signal.SIGINT, group=True)
        stderr = service.stderr
        assert status == 0, stderr[-5000:]
        assert_no_crash(stderr)
        assert "Traceback" not in stderr, stderr
        assert logged_counts(stderr) == {"started": 4, "finished": 4, "cancelled": 0}
        assert service.wait_until_nothing_left() == [], "Ray outlived the server"
