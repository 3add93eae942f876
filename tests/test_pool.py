"""``ActorPool``: calls over real actors, bounded per actor, surviving a dead one."""

from __future__ import annotations

import gc
import uuid
import warnings
from collections.abc import Iterator
from typing import Any

import anyio
import pytest
import ray
from ray.exceptions import ActorDiedError, ActorUnavailableError

import ray_anyio

from .helpers import PoolWorker, Restartable, square, start

pytestmark = [pytest.mark.anyio, pytest.mark.timeout(120)]


def double(actor: Any, x: int) -> Any:
    return actor.double.remote(x)


@pytest.fixture
def workers() -> Iterator[list[Any]]:
    handles = [start(PoolWorker) for _ in range(3)]
    ray.get([h.stats.remote() for h in handles])
    yield handles
    for handle in handles:
        ray.kill(handle)


async def test_map_in_input_order(workers: list[Any]) -> None:
    pool = ray_anyio.ActorPool(workers)
    async with pool.map(double, range(20)) as results:
        assert [v async for v in results] == [2 * x for x in range(20)]
        assert (results.total, results.completed, results.in_flight) == (20, 20, 0)
    calls = [ray.get(w.stats.remote())["calls"] for w in workers]
    assert sorted(x for c in calls for x in c) == list(range(20))
    assert all(calls)  # every actor took part


async def test_per_actor_bound_is_never_exceeded(workers: list[Any]) -> None:
    pool = ray_anyio.ActorPool(workers, max_in_flight_per_actor=2)
    slow = lambda a, x: a.double.remote(x, 0.02)  # noqa: E731
    async with pool.map(slow, range(30), ordered=False) as results:
        assert sorted([v async for v in results]) == [2 * x for x in range(30)]
    peaks = [ray.get(w.stats.remote())["peak"] for w in workers]
    assert max(peaks) == 2  # recorded by the actors themselves


async def test_a_slow_actor_does_not_hold_back_the_others(workers: list[Any]) -> None:
    blocked = workers[0]
    ray.get(blocked.hold.remote(True))
    pool = ray_anyio.ActorPool(workers)
    seen: list[int] = []
    async with pool.map(double, range(12), ordered=False) as results:
        await ray_anyio.get(blocked.wait_running.remote(1))
        async for value in results:
            seen.append(value)
            if len(seen) == 11:  # all but the one on the blocked actor
                ray.get(blocked.hold.remote(False))
    assert sorted(seen) == [2 * x for x in range(12)]


async def test_a_slow_first_call_does_not_stall_an_ordered_map(
    workers: list[Any],
) -> None:
    # Item 0 is on a blocked actor: in input order nothing can be yielded,
    # yet the other actors go on with every other item.
    blocked, *others = workers
    ray.get(blocked.hold.remote(True))
    pool = ray_anyio.ActorPool(workers)

    async def finished_elsewhere() -> int:
        stats = await ray_anyio.get([w.stats.remote() for w in others])
        return sum(len(s["calls"]) - s["running"] for s in stats)

    async with pool.map(double, range(20)) as results:
        await ray_anyio.get(blocked.wait_running.remote(1))
        with anyio.fail_after(60):
            while await finished_elsewhere() < 19:  # a condition, polled
                await anyio.sleep(0.05)
        assert results.completed == 0  # nothing yielded before item 0
        ray.get(blocked.hold.remote(False))
        assert [v async for v in results] == [2 * x for x in range(20)]


async def test_an_actor_killed_mid_map_leaves_and_its_item_is_retried(
    workers: list[Any],
) -> None:
    doomed = workers[1]
    ray.get(doomed.hold.remote(True))  # its first call stays in flight
    pool = ray_anyio.ActorPool(workers)
    values = []
    async with pool.map(double, range(15)) as results:
        await ray_anyio.get(doomed.wait_running.remote(1))
        ray.kill(doomed)
        values = [v async for v in results]
    assert values == [2 * x for x in range(15)]  # every item once, in order
    assert pool.actors == [workers[0], workers[2]]


async def test_the_last_actor_dying_raises_actor_died(workers: list[Any]) -> None:
    pool = ray_anyio.ActorPool(workers[:1], retries=3)
    ray.kill(workers[0])
    # ray.kill is asynchronous: a call made at once may still run. Wait until
    # a call on the actor fails (at most 60 of them), so the pool's is sure to.
    for _ in range(60):
        try:
            ray.get(workers[0].stats.remote(), timeout=30)
        except ActorDiedError:
            break
    else:
        pytest.fail("the killed actor kept answering")
    with pytest.raises(ActorDiedError):
        await pool.submit(double, 1)
    assert pool.actors == []
    with pytest.raises(ActorDiedError):
        await pool.submit(double, 2)


async def test_submit_is_a_checkpoint(workers: list[Any]) -> None:
    # Cancelled before it starts: no call is made, and a place is free at once.
    pool = ray_anyio.ActorPool(workers)
    made: list[int] = []

    def call(actor: Any, x: int) -> Any:
        made.append(x)
        return double(actor, x)

    with anyio.CancelScope() as scope:
        scope.cancel()
        await pool.submit(call, 5)
    assert scope.cancelled_caught
    assert made == []
    assert await pool.submit(call, 6) == 12


async def test_a_method_error_is_not_retried(workers: list[Any]) -> None:
    pool = ray_anyio.ActorPool(workers, retries=5)
    with pytest.raises(ValueError, match="bad 7"):
        await pool.submit(lambda a, x: a.fail.remote(x), 7)
    calls = [ray.get(w.stats.remote())["calls"] for w in workers]
    assert sum(c.count(7) for c in calls) == 1


async def test_return_exceptions_in_a_pool_map(workers: list[Any]) -> None:
    pool = ray_anyio.ActorPool(workers)

    def call(actor: Any, x: int) -> Any:
        return actor.fail.remote(x) if x == 2 else actor.double.remote(x)

    async with pool.map(call, range(4), return_exceptions=True) as results:
        values = [v async for v in results]
        assert (results.completed, results.failed) == (3, 1)
    assert values[:2] == [0, 2] and values[3] == 6
    assert isinstance(values[2], ValueError)


async def test_leaving_early_cancels_the_calls_in_flight(workers: list[Any]) -> None:
    for w in workers:
        ray.get(w.hold.remote(True))
    pool = ray_anyio.ActorPool(workers)
    with anyio.fail_after(60):
        async with pool.map(double, range(10)) as results:
            await ray_anyio.get([w.wait_running.remote(1) for w in workers])
            with anyio.move_on_after(0.1):
                await results.__anext__()
    for w in workers:  # async actor methods are cancelled: none still runs
        with anyio.fail_after(30):
            while ray.get(w.stats.remote())["running"]:
                await anyio.sleep(0.05)
    started = sum(len(ray.get(w.stats.remote())["calls"]) for w in workers)
    assert started == 3  # and no new call was started
    # The cancelled calls gave their places back: each actor takes a call
    # again, all three at once.
    for w in workers:
        ray.get(w.hold.remote(False))
    with anyio.fail_after(30):
        async with pool.map(double, range(3)) as results:
            assert [v async for v in results] == [0, 2, 4]
    assert all(len(ray.get(w.stats.remote())["calls"]) == 2 for w in workers)


async def test_an_actor_on_another_node() -> None:
    # Its results are large enough to stay in that node's object store.
    far = PoolWorker.options(resources={"remote": 0.01}).remote()  # type: ignore[attr-defined]
    try:
        pool = ray_anyio.ActorPool([far])
        big = b"x" * 200_000
        with anyio.fail_after(60):
            async with pool.map(double, [big, big, big]) as results:
                assert [v async for v in results] == [2 * big] * 3
    finally:
        ray.kill(far)


async def test_fn_must_return_a_ref(workers: list[Any]) -> None:
    pool = ray_anyio.ActorPool(workers[:1])

    def call(actor: Any, x: int) -> Any:
        return x if x == 1 else actor.double.remote(x)

    async with pool.map(call, range(4), return_exceptions=True) as results:
        values = [v async for v in results]
    assert values[0] == 0 and values[2:] == [4, 6]  # its place was given back
    assert isinstance(values[1], TypeError)
    assert "must return the ObjectRef of one actor call" in str(values[1])


async def test_several_iterables_are_zipped(workers: list[Any]) -> None:
    pool = ray_anyio.ActorPool(workers)
    add = lambda a, x, y: a.double.remote(x + y)  # noqa: E731
    async with pool.map(add, range(5), [10, 20, 30]) as results:
        assert [v async for v in results] == [20, 42, 64]


@pytest.mark.parametrize(
    ("actors", "kwargs", "error", "match"),
    [
        ([], {}, ValueError, "at least one"),
        (["not an actor"], {}, TypeError, r"actors\[0\]"),
        (None, {"max_in_flight_per_actor": 0}, ValueError, "max_in_flight_per_actor"),
        (None, {"max_in_flight_per_actor": 1.5}, TypeError, "max_in_flight_per_actor"),
        (None, {"retries": -1}, ValueError, "retries"),
        (None, {"retries": "1"}, TypeError, "retries"),
    ],
)
async def test_bad_arguments(
    workers: list[Any], actors: Any, kwargs: dict[str, Any], error: type, match: str
) -> None:
    with pytest.raises(error, match=match):
        ray_anyio.ActorPool(workers if actors is None else actors, **kwargs)


@pytest.mark.parametrize(
    ("args", "kwargs", "match"),
    [
        ((42, range(3)), {}, "fn must be a callable"),
        ((double,), {}, "at least one iterable"),
        ((double, 5), {}, "iterable must be an iterable"),
        ((double, range(3)), {"ordered": "yes"}, "ordered"),
        ((double, range(3)), {"return_exceptions": 1}, "return_exceptions"),
    ],
)
async def test_bad_map_arguments(
    workers: list[Any], args: tuple[Any, ...], kwargs: dict[str, Any], match: str
) -> None:
    pool = ray_anyio.ActorPool(workers)
    with pytest.raises(TypeError, match=match):
        pool.map(*args, **kwargs)


async def test_one_actor_given_twice_is_refused(workers: list[Any]) -> None:
    # Two places on one actor would run two calls on it at once.
    with pytest.raises(ValueError, match=r"actors\[1\] is actors\[0\] again"):
        ray_anyio.ActorPool([workers[0], workers[0]])
    name = f"twice-{uuid.uuid4().hex}"
    named = PoolWorker.options(name=name).remote()  # type: ignore[attr-defined]
    try:
        again = ray.get_actor(name)  # another handle to the same actor
        with pytest.raises(ValueError, match=r"actors\[2\] is actors\[0\] again"):
            ray_anyio.ActorPool([named, workers[1], again])
    finally:
        ray.kill(named)


async def test_an_unavailable_actor_stays_and_only_its_call_fails() -> None:
    actor = start(Restartable)
    try:
        assert await ray_anyio.get(actor.double.remote(1)) == 2
        pool = ray_anyio.ActorPool([actor], retries=3)
        with anyio.fail_after(60):
            # The crash may have run: it is that call's error, not retried...
            with pytest.raises(ActorUnavailableError):
                await pool.submit(lambda a: a.crash.remote())
            # ...and the actor, restarted, is still the pool's.
            assert pool.actors == [actor]
            assert await pool.submit(lambda a, x: a.double.remote(x), 5) == 10
    finally:
        ray.kill(actor)


async def test_a_call_with_several_returns_gives_its_values(
    workers: list[Any],
) -> None:
    pool = ray_anyio.ActorPool(workers)
    split = lambda a, x: a.split.remote(x)  # noqa: E731
    assert await pool.submit(split, 3) == [3, -3]
    async with pool.map(split, range(4)) as results:
        assert [v async for v in results] == [[x, -x] for x in range(4)]
        assert (results.submitted, results.completed, results.failed) == (4, 4, 0)


async def test_a_collected_pool_leaves_no_stream_open(workers: list[Any]) -> None:
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        pool = ray_anyio.ActorPool(workers)
        assert await pool.submit(double, 2) == 4
        del pool
        gc.collect()
    assert [w for w in caught if issubclass(w.category, ResourceWarning)] == []


async def test_a_remote_function_is_not_an_actor() -> None:
    with pytest.raises(TypeError, match="actor handle"):
        ray_anyio.ActorPool([square])
