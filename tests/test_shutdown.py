"""Ray shut down during or before a call: every API raises, and none starts Ray.

Each case runs in a second driver process that joins the session's cluster:
``ray.shutdown()`` there only disconnects that driver.
"""

from __future__ import annotations

import os
import subprocess
import sys
import textwrap

import pytest
from ray.cluster_utils import Cluster

_SCRIPT = textwrap.dedent(
    """
    import sys, threading, time
    import anyio, ray
    from ray.exceptions import RaySystemError
    import ray_anyio

    @ray.remote(num_cpus=0)
    def block(*_, seconds=600):
        time.sleep(seconds)

    @ray.remote(num_cpus=0)
    def gen(seconds=600):
        yield 1
        time.sleep(seconds)

    def warm():
        # A function's first .remote() in a session exports it, which can take
        # longer than the 0.5 s before the shutdown: a .remote() that
        # ray.shutdown() on another thread interrupts ends the process (Ray's
        # own race, whoever calls it). Exported and with a worker, a start
        # takes well under that, and the shutdown lands while the call waits.
        ray.get(block.remote(seconds=0))
        ray.get(list(gen.remote(seconds=0)))

    # Each call makes its refs when Ray runs, and uses the same ones again
    # once Ray is down (a `.remote()` of the caller's would start Ray itself).
    made = {}

    def refs(name, make):
        if name not in made:
            made[name] = make()
        return made[name]

    async def get():
        await ray_anyio.get(refs("get", block.remote))

    async def get_list():
        await ray_anyio.get(refs("list", lambda: [block.remote() for _ in range(300)]))

    async def wait():
        await ray_anyio.wait([refs("wait", block.remote)])

    async def as_completed():
        async with ray_anyio.as_completed([refs("ac", block.remote)]) as results:
            async for _ in results:
                pass

    async def map():
        async with ray_anyio.map(block, range(3)) as results:
            async for _ in results:
                pass

    async def open_scope():
        async with ray_anyio.open_scope() as scope:
            scope.remote(block)

    async def stream():
        async for _ in ray_anyio.stream(refs("stream", gen.remote)):
            pass

    async def put():
        if ray.is_initialized():
            await ray_anyio.put(b"x" * (1 << 20))
            ray.shutdown()
        await ray_anyio.put(b"x" * (64 << 20))

    async def timed(call, during):
        shut = []

        def shutdown():
            shut.append(time.monotonic())
            ray.shutdown()

        timer = threading.Timer(0.5, shutdown)
        if during and call is not put:
            timer.start()
        try:
            await call()
        except RaySystemError:
            late = time.monotonic() - shut[0] if shut else 0.0
            return f"raised {late:.2f}"
        except BaseException as exc:
            return f"wrong {type(exc).__name__}: {exc}"
        finally:
            if timer.is_alive():
                timer.join()  # the shutdown must be over before the next init
        return "returned"

    backend = sys.argv[1]
    for call in [get, get_list, wait, as_completed, map, open_scope, stream, put]:
        made.clear()
        ray.init(log_to_driver=False)  # joins the cluster in RAY_ADDRESS
        warm()
        outcome = anyio.run(timed, call, True, backend=backend)
        print(call.__name__, "during:", outcome, ray.is_initialized(), flush=True)
        # Called again with Ray down: the same error, and Ray stays down.
        outcome = anyio.run(timed, call, False, backend=backend)
        print(call.__name__, "after:", outcome.split()[0], ray.is_initialized(),
              flush=True)
    """
)


@pytest.mark.timeout(300)
@pytest.mark.parametrize("backend", ["asyncio", "trio"])
def test_every_api_raises_and_never_starts_ray(
    backend: str, ray_cluster: Cluster
) -> None:
    env = {**os.environ, "RAY_ADDRESS": ray_cluster.address}
    proc = subprocess.run(
        [sys.executable, "-c", _SCRIPT, backend],
        capture_output=True,
        text=True,
        timeout=280,
        env=env,
    )
    lines = proc.stdout.splitlines()
    report = proc.stdout + proc.stderr[-3000:]
    assert proc.returncode == 0, report
    assert len(lines) == 16, report
    for line in lines:
        name, when, outcome, *rest = line.split()
        assert outcome == "raised", report
        assert rest[-1] == "False", report  # Ray was not started again
        if when == "during:" and name != "put":
            # Within 1 s of the shutdown on a quiet machine (0.05-0.6 s seen);
            # a loaded one stretches ray.shutdown() itself, hence the margin.
            assert float(rest[0]) < 1.5, report


_DROP_AFTER_SHUTDOWN = textwrap.dedent(
    """
    import gc, sys, time
    import anyio, ray
    import ray_anyio

    ray.init(log_to_driver=False)  # joins the cluster in RAY_ADDRESS

    @ray.remote(num_cpus=0)
    def block():
        time.sleep(600)

    async def main():
        refs = [block.remote() for _ in range(3)]
        _, remaining = await ray_anyio.wait(refs, timeout=0)
        return remaining

    remaining = anyio.run(main, backend=sys.argv[1])
    ray.shutdown()
    del remaining
    gc.collect()
    print("SURVIVED", flush=True)
    """
)


@pytest.mark.parametrize("backend", ["asyncio", "trio"])
def test_state_dropped_after_shutdown_is_harmless(
    backend: str, ray_cluster: Cluster
) -> None:
    # Withdrawing a registration from a Ray that has shut down would end the
    # process; the state of a ``remaining`` list outliving Ray must not try.
    out = _driver(_DROP_AFTER_SHUTDOWN, backend, ray_cluster)
    assert "SURVIVED" in out, out


def _driver(script: str, backend: str, ray_cluster: Cluster) -> str:
    """Run ``script`` as a second driver of the session's cluster; its output."""
    proc = subprocess.run(
        [sys.executable, "-c", script, backend],
        capture_output=True,
        text=True,
        timeout=120,
        env={**os.environ, "RAY_ADDRESS": ray_cluster.address},
    )
    return proc.stdout + proc.stderr[-3000:]


_STREAM_AFTER_SHUTDOWN = textwrap.dedent(
    """
    import os, sys, time
    import anyio, ray
    import ray_anyio
    from ray import shutdown  # bound after ray_anyio is imported: gated

    ray.init(address=os.environ["RAY_ADDRESS"], log_to_driver=False)

    @ray.remote(num_cpus=0)
    def gen():
        yield 1
        time.sleep(600)

    async def main():
        items = ray_anyio.stream(gen.remote(), values=True)
        assert await items.__anext__() == 1
        shutdown()
        await items.aclose()  # nothing left to cancel: it only closes
        print("CLOSED", getattr(shutdown, "_ray_anyio_gate", False), flush=True)

    anyio.run(main, backend=sys.argv[1])
    """
)


@pytest.mark.parametrize("backend", ["asyncio", "trio"])
def test_a_stream_closes_after_shutdown(backend: str, ray_cluster: Cluster) -> None:
    # The documented order (import ray_anyio, then `from ray import
    # shutdown`) gives the gated shutdown.
    out = _driver(_STREAM_AFTER_SHUTDOWN, backend, ray_cluster)
    assert "CLOSED True" in out, out
