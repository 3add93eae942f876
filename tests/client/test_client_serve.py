"""Ray Serve through Ray Client: responses wherever a ref goes, over ``ray://``.

A private head with a client server (:mod:`.server`) runs a Serve application
for this module; each backend runs the checks in a client process of its own.
Streaming handles are refused by Serve itself through Ray Client (its
``RuntimeError`` says so), so there is no stream to check.
"""

from __future__ import annotations

import os
import subprocess
import sys
import textwrap
from collections.abc import Iterator

import pytest

from .server import CLIENT_ENV, start_client_server

pytest.importorskip("ray.serve")

pytestmark = pytest.mark.timeout(600)

_CHECKS = textwrap.dedent(
    """
    import asyncio, sys
    import anyio, ray
    from ray import serve
    import ray_anyio

    address, backend = sys.argv[1], sys.argv[2]
    ray.init(address)

    @serve.deployment(ray_actor_options={"num_cpus": 0})
    class Calls:
        def __init__(self):
            self.cancelled = 0

        async def echo(self, x):
            return x

        async def fail(self):
            raise ValueError("replica failed")

        async def hold(self):
            try:
                await asyncio.sleep(60)
            except asyncio.CancelledError:
                self.cancelled += 1
                raise

        async def cancellations(self):
            return self.cancelled

    serve.start(proxy_location="Disabled")
    handle = serve.run(Calls.bind(), name=f"client_{backend}", route_prefix=None)

    def ok(name):
        print("OK", name, flush=True)

    async def main():
        assert await ray_anyio.get(handle.echo.remote(1)) == 1
        assert await ray_anyio.get([handle.echo.remote(i) for i in range(20)]) == (
            list(range(20))
        )
        try:
            await ray_anyio.get(handle.fail.remote())
        except ValueError as exc:
            assert "replica failed" in str(exc), exc
        ok("get")
        ready, remaining = await ray_anyio.wait(
            [handle.echo.remote(i) for i in range(3)], num_returns=3, timeout=30
        )
        assert len(ready) == 3 and remaining == []
        responses = [handle.echo.remote(i) for i in range(5)]
        async with ray_anyio.as_completed(responses) as results:
            assert sorted([v async for _, v in results]) == list(range(5))
        ok("wait")
        with anyio.move_on_after(1):
            async with ray_anyio.open_scope() as scope:
                held = scope.remote(handle.hold)
                await ray_anyio.get(held)
        assert held.cancelled()
        with anyio.fail_after(30):
            while await ray_anyio.get(handle.cancellations.remote()) < 1:
                await anyio.sleep(0.1)
        ok("open_scope")
        async with ray_anyio.map(handle.echo, range(10), max_in_flight=3) as results:
            assert [v async for v in results] == list(range(10))
        ok("map")
        try:
            handle.options(stream=True)
        except RuntimeError as exc:
            assert "Ray Client" in str(exc), exc
            ok("stream-refused")

    anyio.run(main, backend=backend)
    serve.delete(f"client_{backend}")
    """
)
CHECKS = ["get", "wait", "open_scope", "map", "stream-refused"]


@pytest.fixture(scope="module")
def client_address() -> Iterator[str]:
    address, stop = start_client_server()
    try:
        yield address
    finally:
        stop()


@pytest.mark.parametrize("backend", ["asyncio", "trio"])
def test_serve_through_ray_client(client_address: str, backend: str) -> None:
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
