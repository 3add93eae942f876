"""A Ray Client driver on a host that runs no Ray, with work on two others.

Ray Client has no streaming generators, so ``stream`` is not among the calls.
"""

from __future__ import annotations

import subprocess
import sys
import textwrap

import pytest

from . import hosts

pytestmark = pytest.mark.timeout(300)

_DRIVER = textwrap.dedent(
    """
    import sys, time
    import anyio, ray
    from ray.exceptions import TaskCancelledError
    import ray_anyio

    address, backend = sys.argv[1], sys.argv[2]
    try:
        ray.init(address)
    except ConnectionAbortedError as error:
        # Ray's proxy starts a server process for each client. Once in CI that
        # process died at start, before any of our code ran (cause unknown; a
        # second failure puts the head's client-server logs in the message).
        # ray.init disconnected; the retry gets a new server and port.
        print("retrying the connection:", error, file=sys.stderr, flush=True)
        ray.init(address)

    def on(host):
        return {"resources": {f"host_{host}": 0.001}}

    # Defined here, shipped by value: the client server cannot import tests.
    @ray.remote
    def node():
        return ray.get_runtime_context().get_node_id()

    @ray.remote(num_cpus=0)
    class Started:
        def __init__(self):
            self.event = __import__("asyncio").Event()
        def set(self):
            self.event.set()
        async def wait(self):
            await self.event.wait()

    @ray.remote(num_cpus=0, max_retries=0)
    def block(started):
        ray.get(started.set.remote())
        for _ in range(6000):
            time.sleep(0.1)

    async def main():
        refs = [node.options(**on(h)).remote() for h in ("a", "b")]
        where = await ray_anyio.get(refs)
        assert len(set(where)) == 2, where
        ready, _ = await ray_anyio.wait(refs, num_returns=2, fetch_local=False)
        assert ready == refs
        async with ray_anyio.as_completed(refs) as results:
            assert sorted([v async for _, v in results]) == sorted(where)
        start = lambda h: node.options(**on(h)).remote()
        async with ray_anyio.map(start, ["a", "b"] * 3) as results:
            assert [v async for v in results] == where * 3
        started = Started.options(**on("head")).remote()
        with anyio.move_on_after(60) as deadline:
            async with ray_anyio.open_scope() as scope:
                doomed = scope.remote(block.options(**on("b")), started)
                await ray_anyio.get(started.wait.remote())
                deadline.deadline = anyio.current_time() + 0.5
                await anyio.sleep_forever()
        assert deadline.cancelled_caught
        outcome = await ray_anyio.get(doomed, return_exceptions=True)
        assert isinstance(outcome, TaskCancelledError), outcome
        print("OK", backend, flush=True)

    anyio.run(main, backend=backend)
    """
)


@pytest.mark.parametrize("backend", ["asyncio", "trio"])
def test_a_ray_client_driver_on_a_host_without_ray(
    backend: str, nodes: dict[str, str]
) -> None:
    address = f"ray://{hosts.HEAD.ip}:{hosts.CLIENT_PORT}"
    cli = hosts.host("cli")
    ip = hosts.ip_command()
    command = [ip, "netns", "exec", cli.netns, sys.executable, "-c", _DRIVER]
    done = subprocess.run(
        [*command, address, backend],
        capture_output=True,
        text=True,
        timeout=240,
        cwd=hosts.ROOT,
        env=hosts.ray_env(),
    )
    assert done.returncode == 0, "\n".join(
        [done.stdout, done.stderr, hosts.client_server_logs()]
    )
    assert f"OK {backend}" in done.stdout
