"""Faults and hosts: loops in threads, Ray actors, dead workers, shutdown."""

from __future__ import annotations

import os
import threading
from typing import Any

import anyio
import pytest
import ray
from ray.cluster_utils import Cluster
from ray.exceptions import RayActorError, WorkerCrashedError

import ray_anyio

from .helpers import Gates, Nested, crash, remote_actor, square, start

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


# --- dead workers, actors and nodes, through every API ------------------------


def _die(how: str) -> None:
    import signal

    if how == "exit":
        os._exit(1)
    os.kill(os.getpid(), signal.SIGKILL)


@ray.remote(max_retries=0)
def _exit_now(how: str) -> None:
    _die(how)


@ray.remote(max_retries=0)
def _yield_then_exit(how: str) -> Any:
    yield 1
    _die(how)


async def _through(api: str, task: Any, *args: Any) -> Any:
    """Run one call of ``task`` through ``api``; return what it returned."""
    if api == "get":
        return await ray_anyio.get(task.remote(*args))
    if api == "wait":
        ready, _ = await ray_anyio.wait([task.remote(*args)])
        return ray.get(ready[0])  # a failed task's ref is ready: get raises
    if api == "as_completed":
        async with ray_anyio.as_completed([task.remote(*args)]) as results:
            return [value async for _, value in results]
    if api == "map":
        async with ray_anyio.map(task, *[[a] for a in args]) as values:
            return [value async for value in values]
    if api == "open_scope":
        async with ray_anyio.open_scope() as scope:
            scope.remote(task, *args)
        return None
    items = ray_anyio.stream(_yield_then_exit.remote(*args), values=True)
    return [value async for value in items]


DEATHS = [
    ("get", "exit", 0),
    ("wait", "kill", 1),
    ("as_completed", "exit", 1),
    ("map", "kill", 0),
    ("open_scope", "exit", 0),
    ("stream", "kill", 0),
]


@pytest.mark.timeout(120)
@pytest.mark.parametrize(("api", "how", "retries"), DEATHS)
async def test_a_dead_worker_surfaces_from_every_api(
    api: str, how: str, retries: int
) -> None:
    task = _exit_now.options(max_retries=retries)
    with anyio.fail_after(60), pytest.raises(WorkerCrashedError):
        await _through(api, task, how)


@pytest.mark.timeout(120)
@pytest.mark.parametrize("api", ["get", "wait", "as_completed", "map", "open_scope"])
async def test_a_killed_actor_surfaces_from_every_api(api: str) -> None:
    actor = start(Gates)
    ray.get(actor.ping.remote())

    async def kill_once_waiting() -> None:
        with anyio.fail_after(30):  # bounded polling of the actor's own count
            while not await ray_anyio.get(actor.waiting.remote("never")):
                await anyio.sleep(0.01)
        ray.kill(actor)

    caught: list[BaseException] = []
    with anyio.fail_after(60):
        async with anyio.create_task_group() as tg:
            tg.start_soon(kill_once_waiting)
            try:
                await _through(api, actor.value_after, "never", 1)
            except RayActorError as exc:
                caught.append(exc)
    assert len(caught) == 1


@remote_actor(num_cpus=0)
class _Starts:
    """Counts the tasks that have started on the doomed node."""

    def __init__(self) -> None:
        import asyncio

        self.count = 0
        self.changed = asyncio.Condition()

    async def started(self) -> None:
        self.count += 1
        async with self.changed:
            self.changed.notify_all()

    async def wait(self, n: int) -> None:
        async with self.changed:
            await self.changed.wait_for(lambda: self.count >= n)


@ray.remote(max_retries=0)
def _blocked_on_node(starts: Any) -> None:
    import time

    ray.get(starts.started.remote())
    time.sleep(600)


@pytest.mark.timeout(180)
@pytest.mark.parametrize("backend", ["asyncio", "trio"])
def test_a_removed_node_surfaces_from_every_api(
    ray_cluster: Cluster, backend: str
) -> None:
    apis = ["get", "wait", "as_completed", "map", "open_scope"]
    starts = start(_Starts)
    node = ray_cluster.add_node(num_cpus=len(apis), resources={"doomed": len(apis)})
    ray_cluster.wait_for_nodes()
    doomed = _blocked_on_node.options(resources={"doomed": 1})
    outcomes: dict[str, BaseException | None] = {}

    async def one(api: str) -> None:
        try:
            await _through(api, doomed, starts)
            outcomes[api] = None
        except Exception as exc:
            outcomes[api] = exc

    async def main() -> None:
        with anyio.fail_after(90):
            async with anyio.create_task_group() as tg:
                for api in apis:
                    tg.start_soon(one, api)
                await ray_anyio.get(starts.wait.remote(len(apis)))
                await anyio.to_thread.run_sync(ray_cluster.remove_node, node)

    try:
        anyio.run(main, backend=backend)
    finally:
        ray.kill(starts)
    assert set(outcomes) == set(apis)
    for api, exc in outcomes.items():
        # Ray's own error for a lost node (NodeDiedError, WorkerCrashedError,
        # ObjectLostError...), not the library's.
        assert isinstance(exc, ray.exceptions.RayError), (api, exc)
        assert not isinstance(exc, ray.exceptions.RaySystemError), (api, exc)
