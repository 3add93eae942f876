"""Ray Client: the same API through ``ray://``, on the public readiness path.

A private head with a client server runs on loopback for this module
(:mod:`.server`); each backend runs the checks in a client process of its own,
since this process is already a driver of the session's cluster.
"""

from __future__ import annotations

import os
import subprocess
import sys
import textwrap
from collections.abc import Iterator

import pytest

from .server import CLIENT_ENV, start_client_server

pytestmark = pytest.mark.timeout(600)

_CHECKS = textwrap.dedent(
    """
    import sys, time
    import anyio, ray
    from ray.exceptions import GetTimeoutError, RaySystemError, TaskCancelledError
    import ray_anyio
    from ray_anyio.testing import assert_nothing_left

    address, backend = sys.argv[1], sys.argv[2]
    ray.init(address)

    @ray.remote
    def square(x):
        return x * x

    @ray.remote
    def slow(seconds, value):
        time.sleep(seconds)
        return value

    @ray.remote
    def fail():
        raise ValueError("task failed")

    @ray.remote
    def numbers():
        yield 1

    @ray.remote(num_cpus=0)
    class Doubler:
        def double(self, x):
            return 2 * x

    kept = []

    def ok(name):
        print("OK", name, flush=True)

    async def main():
        assert await ray_anyio.get(square.remote(3)) == 9
        assert await ray_anyio.get(slow.remote(0.3, "late")) == "late"
        refs = [slow.remote(0.2, i) for i in range(300)]  # watched in groups
        assert await ray_anyio.get(refs) == list(range(300))
        async def chain():
            return square.remote(4)
        assert await ray_anyio.get({"a": [square.remote(2), chain()]}) == {"a": [4, 16]}
        try:
            await ray_anyio.get(fail.remote())
        except ValueError:
            ok("get")
        try:
            await ray_anyio.get(slow.remote(5, 0), timeout=0.2)
        except GetTimeoutError:
            ok("get-timeout")

        fast, late = square.remote(1), slow.remote(600, 2)
        ready, remaining = await ray_anyio.wait([late, fast], num_returns=1)
        assert ready == [fast] and remaining == [late], (ready, remaining)
        ray.cancel(late, force=True)  # a cancelled task's ref is ready too
        ready, remaining = await ray_anyio.wait(remaining, timeout=60)
        assert ready == [late] and remaining == []
        ok("wait")

        # Item 0 runs far longer than any test: only item 1, done on entry,
        # can come first, however slow the machine.
        items = [slow.remote(600, "b"), square.options(num_cpus=0).remote(5)]
        ray.wait(items[1:])
        async with ray_anyio.as_completed(items) as results:
            first = await results.__anext__()
            assert first == (1, 25), first
        ray.cancel(items[0], force=True)
        ok("as_completed")

        async with ray_anyio.map(square, range(20), max_in_flight=4) as results:
            assert [v async for v in results] == [x * x for x in range(20)]
        ok("map")

        pool = ray_anyio.ActorPool([Doubler.remote() for _ in range(2)])
        double = lambda actor, x: actor.double.remote(x)
        async with pool.map(double, range(20)) as results:
            assert [v async for v in results] == [2 * x for x in range(20)]
        assert await pool.submit(double, 21) == 42
        ok("pool")

        try:
            async with ray_anyio.open_scope(cancel_timeout=1) as scope:
                long = scope.remote(slow, 60, 0)
                await anyio.sleep(0.5)
                raise KeyError("stop")
        except KeyError:
            pass
        try:
            ray.get(long, timeout=30)
        except (TaskCancelledError, ray.exceptions.WorkerCrashedError):
            ok("open_scope")

        ref = await ray_anyio.put(b"x" * (4 << 20))
        assert len(await ray_anyio.get(ref)) == 4 << 20
        kept.append(ref)
        ok("put")

        try:
            ray_anyio.stream(numbers.remote())
        except TypeError as exc:
            assert "Ray Client" in str(exc), exc
            ok("stream")

        with anyio.move_on_after(0.2):
            await ray_anyio.get([slow.remote(5, i) for i in range(10)])
        assert_nothing_left()
        ok("nothing-left")

    anyio.run(main, backend=backend)
    ray.shutdown()
    try:
        anyio.run(ray_anyio.wait, kept, backend=backend)
    except RaySystemError:
        assert not ray.is_initialized()
        ok("after-shutdown")
    """
)

CHECKS = [
    "get",
    "get-timeout",
    "wait",
    "as_completed",
    "map",
    "pool",
    "open_scope",
    "put",
    "stream",
    "nothing-left",
    "after-shutdown",
]


@pytest.fixture(scope="module")
def client_address() -> Iterator[str]:
    address, stop = start_client_server()
    try:
        yield address
    finally:
        stop()


@pytest.mark.parametrize("backend", ["asyncio", "trio"])
def test_every_api_through_ray_client(client_address: str, backend: str) -> None:
    env = {k: v for k, v in os.environ.items() if k != "RAY_ADDRESS"} | CLIENT_ENV
    proc = subprocess.run(
        [sys.executable, "-c", _CHECKS, client_address, backend],
        capture_output=True,
        text=True,
        timeout=500,
        env=env,
    )
    passed = [
        line.split()[1] for line in proc.stdout.splitlines() if line.startswith("OK")
    ]
    assert passed == CHECKS, proc.stdout + proc.stderr[-4000:]
