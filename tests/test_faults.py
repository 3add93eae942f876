"""Faults and hosts: loops in threads, Ray actors, dead workers, shutdown."""

from __future__ import annotations

import os
import subprocess
import sys
import textwrap
import threading
from typing import Any

import anyio
import pytest
import ray
from ray.cluster_utils import Cluster
from ray.exceptions import RayActorError, WorkerCrashedError

import ray_anyio

from .helpers import Gates, Nested, crash, square, start

pytestmark = pytest.mark.anyio


def test_loops_in_several_threads_at_once(gate: Any) -> None:
    refs = [gate.value_after(i) for i in range(40)]
    results: dict[str, Any] = {}
    started = threading.Barrier(5)

    async def worker(name: str) -> None:
        started.wait(30)
        values = await ray_anyio.get(refs)
        ready, _ = await ray_anyio.wait(refs, num_returns=len(refs))
        results[name] = (values, len(ready))

    threads = [
        threading.Thread(
            target=anyio.run,
            args=(worker, f"{backend}-{i}"),
            kwargs={"backend": backend},
        )
        for i in range(2)
        for backend in ("asyncio", "trio")
    ]
    for t in threads:
        t.start()
    started.wait(30)
    gate.open()
    for t in threads:
        t.join(60)
    assert not any(t.is_alive() for t in threads)
    assert sorted(results) == ["asyncio-0", "asyncio-1", "trio-0", "trio-1"]
    for values, ready in results.values():
        assert values == list(range(40))
        assert ready == 40


async def test_inside_a_ray_async_actor() -> None:
    actor = start(Nested)
    try:
        refs = [square.remote(i) for i in range(5)]
        values, ready = await ray_anyio.get(actor.get_and_wait.remote(refs))
        assert values == [i * i for i in range(5)]
        assert ready == 5
    finally:
        ray.kill(actor)


async def test_dead_worker_surfaces_as_exception() -> None:
    with pytest.raises(WorkerCrashedError):
        await ray_anyio.get(crash.remote(), timeout=60)


async def test_killed_actor_surfaces_while_pending() -> None:
    actor = start(Gates)
    ref = actor.value_after.remote("never", 1)
    ray.get(actor.ping.remote())
    async with anyio.create_task_group() as tg:
        errors: list[BaseException] = []

        async def getter() -> None:
            try:
                await ray_anyio.get(ref, timeout=60)
            except RayActorError as exc:
                errors.append(exc)

        tg.start_soon(getter)
        await anyio.sleep(0)
        ray.kill(actor)
    assert len(errors) == 1


def _driver_env(cluster: Cluster) -> dict[str, str]:
    """Environment for a second driver that joins the session's cluster."""
    return {**os.environ, "RAY_ADDRESS": cluster.address}


_SHUTDOWN_SCRIPT = textwrap.dedent(
    """
    import sys, threading, time
    import anyio, ray
    import ray_anyio

    ray.init(log_to_driver=False)  # joins the cluster in RAY_ADDRESS

    @ray.remote(num_cpus=0)
    def block():
        time.sleep(600)

    async def main():
        ref = block.remote()
        threading.Timer(1.0, ray.shutdown).start()
        try:
            await ray_anyio.{call}
        except Exception as exc:
            print("RAISED", type(exc).__name__, flush=True)
        else:
            print("RETURNED", flush=True)

    anyio.run(main, backend=sys.argv[1])
    """
)


@pytest.mark.parametrize("call", ["get(ref)", "wait([ref])"])
@pytest.mark.parametrize("backend", ["asyncio", "trio"])
def test_shutdown_while_waiting_raises(
    backend: str, call: str, ray_cluster: Cluster
) -> None:
    # Through Ray's readiness hook, the path of every supported Ray. (The
    # ray.wait fallback for older Rays does not yet end a trio wait when Ray
    # shuts down: a known issue, see the changelog.)
    script = _SHUTDOWN_SCRIPT.replace("{call}", call)
    proc = subprocess.run(
        [sys.executable, "-c", script, backend],
        capture_output=True,
        text=True,
        timeout=120,
        env=_driver_env(ray_cluster),
    )
    assert "RAISED RaySystemError" in proc.stdout, proc.stdout + proc.stderr[-3000:]


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
    proc = subprocess.run(
        [sys.executable, "-c", _DROP_AFTER_SHUTDOWN, backend],
        capture_output=True,
        text=True,
        timeout=120,
        env=_driver_env(ray_cluster),
    )
    assert "SURVIVED" in proc.stdout, proc.stdout + proc.stderr[-3000:]
