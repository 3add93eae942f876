"""Tasks and actors placed on named hosts, and a count of what has started."""

from __future__ import annotations

import asyncio
import time
from collections.abc import Iterator
from typing import Any

import ray
from ray.util.scheduling_strategies import NodeAffinitySchedulingStrategy

#: Blocking tasks take no CPU: a host's two CPUs are not what the tests count.
IDLE: dict[str, Any] = {"num_cpus": 0}


#: ``ray.remote`` as a plain callable: its stubs know no actor options.
remote_actor: Any = ray.remote


def on(host: str) -> dict[str, Any]:
    """Options that put a task or actor on ``host`` (by its custom resource)."""
    return {"resources": {f"host_{host}": 0.001}}


@remote_actor(num_cpus=0)
class Starts:
    """Counts the calls that have started, so a test cuts a link only after."""

    def __init__(self) -> None:
        self.count = 0
        self.changed = asyncio.Condition()

    async def started(self) -> None:
        self.count += 1
        async with self.changed:
            self.changed.notify_all()

    async def wait(self, n: int) -> int:
        async with self.changed:
            await self.changed.wait_for(lambda: self.count >= n)
        return self.count


def place(actor_class: Any, host: str) -> Any:
    """An actor of ``actor_class`` on ``host`` (type checkers see no ``options``)."""
    return actor_class.options(**on(host)).remote()


def start_counter() -> Any:
    """A :class:`Starts` on the head, which no partition of a worker reaches."""
    return place(Starts, "head")


def _nap(seconds: float) -> None:
    # Short sleeps: a polite ray.cancel() interrupts between two of them.
    for _ in range(int(seconds * 10)):
        time.sleep(0.1)


@ray.remote(max_retries=0)
def node() -> str:
    """The node this task ran on."""
    return str(ray.get_runtime_context().get_node_id())


@ray.remote(max_retries=0)
def payload(size: int) -> bytes:
    return b"x" * size


@ray.remote(max_retries=0)
def square(x: int) -> int:
    return x * x


@ray.remote(max_retries=0)
def block(starts: Any, seconds: float = 600) -> str:
    """Report the start, then run for ``seconds``."""
    ray.get(starts.started.remote())
    _nap(seconds)
    return "finished"


@ray.remote(max_retries=0)
def numbers(starts: Any | None, n: int) -> Iterator[int]:
    """Yield ``0 .. n-1``; with ``starts``, report after the first and block."""
    for i in range(n):
        yield i
        if starts is not None and i == 0:
            ray.get(starts.started.remote())
            _nap(600)


@ray.remote(max_retries=0)
def square_unless_on(starts: Any, doomed: str, x: int) -> int:
    """``x * x``; on node ``doomed``, report the start and block instead."""
    if ray.get_runtime_context().get_node_id() == doomed:
        ray.get(starts.started.remote())
        _nap(600)
    return x * x


def soft_affinity(node_id: str) -> dict[str, Any]:
    """Prefer the node ``node_id``; run elsewhere once it is dead."""
    return {
        "scheduling_strategy": NodeAffinitySchedulingStrategy(node_id, soft=True),
        **IDLE,
    }


@remote_actor(num_cpus=0, max_restarts=0)
class Worker:
    """An actor whose calls say where they ran, or block after reporting."""

    def node(self, x: int) -> tuple[int, str]:
        return x, str(ray.get_runtime_context().get_node_id())

    def block(self, starts: Any, x: int) -> int:
        ray.get(starts.started.remote())
        _nap(600)
        return x
