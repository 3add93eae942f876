"""``map`` of a plain function as Ray tasks, in chunks: one outcome per input."""

from __future__ import annotations

import os
import time
import uuid
from collections.abc import Iterator
from itertools import groupby
from typing import Any

import pytest
import ray

import ray_anyio
from ray_anyio import Retry

from .helpers import Attempts, Track, square, start

pytestmark = [pytest.mark.anyio, pytest.mark.timeout(120)]


def double_unless_seven(x: int) -> int:
    if x % 100 == 7:
        raise ValueError(f"bad {x}")
    return 2 * x


def task_of(x: int) -> str:
    return str(ray.get_runtime_context().get_task_id())


async def test_ten_thousand_inputs_in_order_each_error_in_its_place() -> None:
    async with ray_anyio.map(
        double_unless_seven, range(10_000), chunksize="auto", return_exceptions=True
    ) as results:
        got = [value async for value in results]
        assert (results.completed, results.failed) == (9_900, 100)
    for x, value in enumerate(got):
        if x % 100 == 7:
            assert isinstance(value, ValueError) and str(value) == f"bad {x}"
        else:
            assert value == 2 * x


async def test_unordered_chunks_give_every_result_once() -> None:
    async with ray_anyio.map(
        double_unless_seven,
        range(1_000),
        chunksize=30,
        ordered=False,
        return_exceptions=True,
    ) as results:
        got = [value async for value in results]
        assert (results.completed, results.failed, results.in_flight) == (990, 10, 0)
    values = sorted(value for value in got if isinstance(value, int))
    assert values == [2 * x for x in range(1_000) if x % 100 != 7]
    errors = sorted(str(value) for value in got if isinstance(value, ValueError))
    assert errors == sorted(f"bad {x}" for x in range(7, 1_000, 100))


async def test_a_dead_chunk_fails_each_of_its_inputs_in_its_place() -> None:
    def die_at_five(x: int) -> int:
        if x == 5:
            os._exit(1)  # the worker of the chunk 4-7 dies
        return x

    async with ray_anyio.map(
        die_at_five,
        range(10),
        chunksize=4,
        options={"max_retries": 0},
        return_exceptions=True,
    ) as results:
        got = [value async for value in results]
        assert (results.completed, results.failed) == (6, 4)
    assert got[:4] == [0, 1, 2, 3] and got[8:] == [8, 9]
    assert all(isinstance(value, ray.exceptions.RayError) for value in got[4:8])


async def test_several_iterables_give_each_call_its_arguments() -> None:
    def pair(x: int, word: str) -> str:
        return f"{word}{x}"

    async with ray_anyio.map(pair, range(7), "abcdefg", chunksize=3) as results:
        assert [value async for value in results] == [
            f"{w}{x}" for x, w in zip(range(7), "abcdefg", strict=True)
        ]
    async with ray_anyio.map(pair, [(1, 2)], ["t"], chunksize=2) as results:
        assert [value async for value in results] == ["t(1, 2)"]  # a tuple stays one


async def test_an_error_is_raised_at_its_place() -> None:
    got: list[int] = []
    async with ray_anyio.map(double_unless_seven, range(20), chunksize=5) as results:
        with pytest.raises(ValueError, match="bad 7"):
            async for value in results:
                got.append(value)
    assert got == [0, 2, 4, 6, 8, 10, 12]


async def test_each_task_runs_chunksize_consecutive_inputs() -> None:
    async with ray_anyio.map(task_of, range(25), chunksize=10) as results:
        tasks = [value async for value in results]
    sizes = [len(list(group)) for _, group in groupby(tasks)]
    assert sizes == [10, 10, 5] and len(set(tasks)) == 3


async def test_auto_chunks_shrink_towards_the_end() -> None:
    async with ray_anyio.map(task_of, range(2_000), chunksize="auto") as results:
        tasks = [value async for value in results]
    sizes = [len(list(group)) for _, group in groupby(tasks)]
    assert sum(sizes) == 2_000 and len(sizes) > 4
    assert sizes == sorted(sizes, reverse=True)  # never larger later on
    assert sizes[-1] < sizes[0] / 4


async def test_options_are_the_tasks_options() -> None:
    remote_node = next(
        node["NodeID"] for node in ray.nodes() if node["Resources"].get("remote")
    )

    def node_of(x: int) -> str:
        return str(ray.get_runtime_context().get_node_id())

    options = {"num_cpus": 0, "resources": {"remote": 0.01}}
    async with ray_anyio.map(node_of, range(4), options=options) as results:
        assert [value async for value in results] == [remote_node] * 4
    driver_task = ray.get_runtime_context().get_task_id()
    async with ray_anyio.map(task_of, range(3), options={}) as results:
        tasks = [value async for value in results]
    assert len(set(tasks)) == 3 and driver_task not in tasks  # a task per input


async def test_max_in_flight_counts_tasks(track: Track) -> None:
    actor, key = track.actor, track.key

    def busy(x: int) -> int:
        token = uuid.uuid4().hex
        ray.get(actor.enter.remote(key, token))
        time.sleep(0.002)
        ray.get(actor.leave.remote(key, token))
        return x

    async with ray_anyio.map(busy, range(60), chunksize=10, max_in_flight=2) as results:
        assert [value async for value in results] == list(range(60))
    stats = track.stats()
    assert stats["started"] == 60 and stats["peak"] <= 2


@pytest.fixture
def attempts() -> Iterator[Any]:
    actor = start(Attempts)
    yield actor
    ray.kill(actor)


async def test_a_dead_chunk_fails_its_inputs_each_retried_alone(attempts: Any) -> None:
    run = uuid.uuid4().hex

    def die_once_at_three(x: int) -> int:
        n: int = ray.get(attempts.note.remote(f"{run}-{x}"))
        if x == 3 and n == 1:
            os._exit(1)  # the chunk's worker dies
        return n

    async with ray_anyio.map(
        die_once_at_three,
        range(8),
        chunksize=4,
        options={"max_retries": 0},  # Ray would rerun the whole chunk itself
        retry=Retry(2, delay=0),
    ) as results:
        got = [value async for value in results]
        assert results.retried == 4  # the four inputs of the dead chunk
    # Inputs 0-2 ran before the death and again alone; 3 died; 4-7 ran once.
    assert got == [2, 2, 2, 2, 1, 1, 1, 1]


@pytest.mark.parametrize(
    ("kwargs", "error", "match"),
    [
        ({"chunksize": 0}, ValueError, "chunksize must be at least 1"),
        ({"chunksize": 1.5}, TypeError, "chunksize must be an int >= 1 or"),
        ({"chunksize": True}, TypeError, "chunksize"),
        ({"chunksize": "big"}, TypeError, "chunksize"),
        ({"options": [("num_cpus", 1)]}, TypeError, "options must be a dict"),
        ({"options": {"num_returns": 2}}, ValueError, "num_returns"),
        ({"options": {"num_cpu": 1}}, ValueError, "num_cpu"),
    ],
)
async def test_bad_chunk_arguments(
    kwargs: dict[str, Any], error: type[Exception], match: str
) -> None:
    with pytest.raises(error, match=match):
        ray_anyio.map(double_unless_seven, [1], **kwargs)


async def test_chunks_and_options_need_a_plain_function() -> None:
    async def coro(x: int) -> int:
        return x

    with pytest.raises(ValueError, match="remote function keeps its own"):
        ray_anyio.map(square, [1], options={"num_cpus": 1})
    with pytest.raises(ValueError, match="fn is a remote function"):
        ray_anyio.map(square, [1], chunksize=2)
    with pytest.raises(ValueError, match="fn is an async function"):
        ray_anyio.map(coro, [1], chunksize="auto")
