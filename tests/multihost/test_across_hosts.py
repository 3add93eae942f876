"""Values, locality and every iterating API with work on other hosts."""

from __future__ import annotations

from typing import Any

import anyio
import pytest
import ray
from ray.exceptions import TaskCancelledError

import ray_anyio

from .helpers import (
    IDLE,
    Worker,
    block,
    node,
    numbers,
    on,
    payload,
    place,
    square,
    start_counter,
)

pytestmark = [pytest.mark.anyio, pytest.mark.timeout(180)]

MB = 1 << 20


def _locations(ref: ray.ObjectRef[Any]) -> set[str]:
    where = ray.experimental.get_object_locations([ref])[ref]
    return set(where["node_ids"])


async def test_values_come_back_from_every_host(nodes: dict[str, str]) -> None:
    refs = {h: node.options(**on(h)).remote() for h in ("head", "a", "b")}
    assert await ray_anyio.get(refs) == nodes
    big = [payload.options(**on(h)).remote(2 * MB) for h in ("a", "b")]
    values = await ray_anyio.get(big)
    assert values == [b"x" * 2 * MB] * 2
    ready, remaining = await ray_anyio.wait(big, num_returns=2)
    assert ready == big and remaining == []
    async with ray_anyio.as_completed(list(refs.values())) as results:
        seen = {index: value async for index, value in results}
    assert sorted(seen.values()) == sorted(nodes.values())


async def test_wait_without_fetch_leaves_the_object_on_its_host(
    nodes: dict[str, str],
) -> None:
    ref = payload.options(**on("b")).remote(2 * MB)
    ready, _ = await ray_anyio.wait([ref], fetch_local=False)
    assert ready == [ref]
    assert _locations(ref) == {nodes["b"]}, "the object crossed the network"
    ready, _ = await ray_anyio.wait([ref], fetch_local=True)
    assert ready == [ref]
    assert _locations(ref) == {nodes["b"], nodes["head"]}
    assert len(await ray_anyio.get(ref)) == 2 * MB


async def test_map_runs_on_every_host(nodes: dict[str, str]) -> None:
    hosts = ["a", "b"] * 4

    def start(h: str) -> ray.ObjectRef[str]:
        ref: ray.ObjectRef[str] = node.options(**on(h)).remote()
        return ref

    async with ray_anyio.map(start, hosts, max_in_flight=3) as results:
        where = [value async for value in results]
    assert where == [nodes[h] for h in hosts]
    async with ray_anyio.map(square.options(**on("b")), range(20)) as results:
        assert [value async for value in results] == [x * x for x in range(20)]


async def test_an_actor_pool_spans_hosts(nodes: dict[str, str]) -> None:
    actors = [place(Worker, h) for h in ("a", "b")]
    try:
        pool = ray_anyio.ActorPool(actors, max_in_flight_per_actor=2)
        async with pool.map(lambda a, x: a.node.remote(x), range(20)) as results:
            pairs = [value async for value in results]
        assert [x for x, _ in pairs] == list(range(20))
        assert {n for _, n in pairs} == {nodes["a"], nodes["b"]}
    finally:
        for actor in actors:
            ray.kill(actor)


async def test_a_stream_from_another_host(nodes: dict[str, str]) -> None:
    gen = numbers.options(**on("b"), num_returns="streaming").remote(None, 50)
    items = ray_anyio.stream(gen, values=True)
    assert [value async for value in items] == list(range(50))


async def test_a_scope_deadline_stops_tasks_on_another_host(
    nodes: dict[str, str],
) -> None:
    starts = start_counter()
    refs: list[ray.ObjectRef[str]] = []
    with anyio.fail_after(60):  # the test's own bound, far above the deadline
        with anyio.CancelScope() as deadline:
            async with ray_anyio.open_scope(cancel_timeout=10) as scope:
                for h in ("a", "b"):
                    refs.append(scope.remote(block.options(**on(h), **IDLE), starts))
                await ray_anyio.get(starts.wait.remote(2))
                deadline.deadline = anyio.current_time() + 0.5
                await anyio.sleep_forever()
        assert deadline.cancelled_caught
    outcomes = await ray_anyio.get(refs, return_exceptions=True)
    assert all(isinstance(o, TaskCancelledError) for o in outcomes), outcomes
    ray.kill(starts)
