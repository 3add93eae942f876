"""With Ray's default keepalive, a deadline of the caller's own ends the wait.

A task in flight on a host that is cut off silently stays pending for minutes
after the GCS has declared its node dead: the owner learns it when its gRPC
keepalive gives up (``docs/cluster.md`` has the figures). A driver with that
default runs in a process of its own on the head, since this one runs with
short keepalives; ``move_on_after`` around its ``get`` returns at the
deadline, long before Ray would end the call, and a scope with a deadline returns
after the deadline and its ``cancel_timeout``.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import textwrap
from collections.abc import Callable

import pytest

from . import hosts

pytestmark = pytest.mark.timeout(180)

#: The caller's deadline, well past the node's death (about 5 s after the
#: cut with the hosts' health checks).
DEADLINE = 15.0
#: How late the deadline may fire on a loaded two-core machine.
LATE = 3.0
#: The scope's ``cancel_timeout``: after its deadline, a scope waits that long
#: for its tasks to stop, then cancels them with ``force=True`` and gives them
#: one more second; a task on a cut-off host never answers either.
CANCEL_TIMEOUT = 2.0

_DRIVER = textwrap.dedent(
    """
    import json, sys, time
    import anyio, ray
    import ray_anyio
    from tests.multihost import hosts
    from tests.multihost.helpers import IDLE, block, on, start_counter

    backend, deadline, cancel_timeout = sys.argv[1], *map(float, sys.argv[2:])
    ray.init(address=hosts.ADDRESS, _node_ip_address=hosts.HEAD.ip, log_to_driver=False)
    doomed = block.options(**on("b"), **IDLE)

    def b_alive():
        return any(n["Alive"] and "host_b" in n["Resources"] for n in ray.nodes())

    async def main():
        starts = start_counter()
        ref = doomed.remote(starts)
        report = {}
        in_scope = anyio.CancelScope()

        async def scoped():
            with in_scope:
                async with ray_anyio.open_scope(cancel_timeout=cancel_timeout) as s:
                    s.remote(doomed, starts)
                    await anyio.sleep_forever()
            report["scope_returned"] = time.monotonic() - began

        async def watch_node():
            while await anyio.to_thread.run_sync(b_alive):
                await anyio.sleep(0.2)
            report["node_dead"] = time.monotonic() - began

        async with anyio.create_task_group() as tg:
            tg.start_soon(scoped)
            await ray_anyio.get(starts.wait.remote(2))
            began = time.monotonic()
            in_scope.deadline = anyio.current_time() + deadline
            print("started", flush=True)  # the test cuts host b now
            tg.start_soon(watch_node)
            with anyio.move_on_after(deadline) as scope:
                await ray_anyio.get(ref)
            report["returned"] = time.monotonic() - began
            report["cancelled"] = scope.cancelled_caught
            report["ray_pending"] = not ray.wait([ref], timeout=0)[0]
            tg.cancel_scope.deadline = anyio.current_time() + 30
        print("REPORT", json.dumps(report), flush=True)

    anyio.run(main, backend=backend)
    """
)


@pytest.mark.parametrize("backend", ["asyncio", "trio"])
def test_a_deadline_ends_a_call_on_a_cut_off_host(
    backend: str, nodes: dict[str, str], cut_b: Callable[[str], None]
) -> None:
    env = {k: v for k, v in os.environ.items() if k not in hosts.KEEPALIVE}
    driver = subprocess.Popen(
        [sys.executable, "-c", _DRIVER, backend, str(DEADLINE), str(CANCEL_TIMEOUT)],
        stdout=subprocess.PIPE,
        text=True,
        env=env,
        cwd=hosts.ROOT,
    )
    assert driver.stdout is not None
    with driver, driver.stdout:  # Ray may print its own lines too
        try:
            lines = iter(driver.stdout.readline, "")
            assert "started\n" in lines, "the driver did not start its task"
            cut_b("blackhole")
            report = next(
                json.loads(line.removeprefix("REPORT "))
                for line in lines
                if line.startswith("REPORT ")
            )
        finally:
            driver.kill()
    print(backend, report)
    assert report["cancelled"], report
    assert DEADLINE <= report["returned"] <= DEADLINE + LATE, report
    # Ray had declared the node dead and still had not ended the call.
    assert report["node_dead"] < DEADLINE, report
    assert report["ray_pending"], report
    # A scope over such a task: its deadline, then the polite and forced cancel.
    assert report["scope_returned"] <= DEADLINE + CANCEL_TIMEOUT + 1 + LATE, report
