"""``Retry``: the policy, and its use by ``map``, ``ActorPool.map`` and ``submit``.

Attempts are recorded by the tasks themselves (``Attempts``): the gaps between
them are lower bounds the policy promises, whatever the machine's load.
"""

from __future__ import annotations

import dataclasses
import math
import uuid
from collections.abc import Iterator
from typing import Any

import anyio
import pytest
import ray

import ray_anyio
from ray_anyio import Retry

from .helpers import Attempts, PoolWorker, Track, flaky, spin, start

pytestmark = pytest.mark.timeout(120)


# --- the policy -------------------------------------------------------------------


def test_defaults_and_normalised_types() -> None:
    policy = Retry()
    assert (policy.attempts, policy.on, policy.not_on) == (3, (Exception,), ())
    assert (policy.delay, policy.backoff, policy.max_delay, policy.jitter) == (
        1.0,
        2.0,
        60.0,
        0.1,
    )
    assert Retry(on=ValueError, not_on=KeyError).on == (ValueError,)
    assert Retry(on=ValueError, not_on=KeyError).not_on == (KeyError,)
    with pytest.raises(dataclasses.FrozenInstanceError):
        policy.attempts = 5  # type: ignore[misc]


def test_delays_grow_by_backoff_up_to_max_delay() -> None:
    policy = Retry(delay=1, backoff=2, max_delay=5, jitter=0)
    assert [policy.delay_after(n) for n in range(1, 6)] == [1, 2, 4, 5, 5]


def test_jitter_varies_a_delay_by_at_most_its_fraction() -> None:
    policy = Retry(delay=2, jitter=0.25)
    assert policy.delay_after(1, lambda: 0.0) == 1.5
    assert policy.delay_after(1, lambda: 0.5) == 2.0
    assert math.isclose(policy.delay_after(1, lambda: 0.999999), 2.5, rel_tol=1e-5)
    assert all(1.5 <= policy.delay_after(1) <= 2.5 for _ in range(1000))


def test_on_and_not_on() -> None:
    policy = Retry(on=(ValueError, OSError), not_on=(UnicodeError, TimeoutError))
    assert policy.retries(ValueError()) and policy.retries(ConnectionError())
    assert not policy.retries(UnicodeDecodeError("utf-8", b"", 0, 1, "bad"))
    assert not policy.retries(TimeoutError()) and not policy.retries(KeyError())
    assert Retry().retries(TimeoutError())  # item timeouts are retried by default


@pytest.mark.parametrize(
    ("kwargs", "error", "names"),
    [
        ({"attempts": 0}, ValueError, "attempts"),
        ({"attempts": 1.5}, TypeError, "attempts"),
        ({"attempts": True}, TypeError, "attempts"),
        ({"delay": -1}, ValueError, "delay"),
        ({"delay": math.nan}, ValueError, "delay"),
        ({"delay": math.inf}, ValueError, "delay"),
        ({"delay": "1"}, TypeError, "delay"),
        ({"max_delay": -0.1}, ValueError, "max_delay"),
        ({"backoff": 0.5}, ValueError, "backoff"),
        ({"backoff": math.nan}, ValueError, "backoff"),
        ({"jitter": 1.5}, ValueError, "jitter"),
        ({"jitter": -0.1}, ValueError, "jitter"),
        ({"on": "ValueError"}, TypeError, "on"),
        ({"not_on": (KeyError, int)}, TypeError, "not_on"),
    ],
)
def test_bad_arguments_are_named(
    kwargs: dict[str, Any], error: type[Exception], names: str
) -> None:
    with pytest.raises(error, match=rf"Retry\({names}\)"):
        Retry(**kwargs)


@pytest.mark.anyio
async def test_retry_must_be_a_retry() -> None:
    pool = ray_anyio.ActorPool([start(PoolWorker)])
    with pytest.raises(TypeError, match=r"retry must be a ray_anyio\.Retry"):
        ray_anyio.map(flaky, [1], retry=3)  # type: ignore[call-overload]
    with pytest.raises(TypeError, match=r"retry must be a ray_anyio\.Retry"):
        pool.map(lambda a, x: a.double.remote(x), [1], retry={"attempts": 2})  # type: ignore[arg-type]
    with pytest.raises(TypeError, match=r"retry must be a ray_anyio\.Retry"):
        await pool.submit(lambda a: a.double.remote(1), retry=2)  # type: ignore[arg-type]
    for actor in pool.actors:
        ray.kill(actor)


# --- map ----------------------------------------------------------------------------


@pytest.fixture(scope="module")
def attempts() -> Iterator[Any]:
    actor = start(Attempts)
    yield actor
    ray.kill(actor)


def _keys(n: int) -> list[str]:
    run = uuid.uuid4().hex
    return [f"{run}-{i}" for i in range(n)]


@pytest.mark.anyio
async def test_map_retries_with_backoff_recorded_by_the_tasks(attempts: Any) -> None:
    keys = _keys(3)
    policy = Retry(4, delay=0.2, backoff=2, jitter=0.1)
    async with ray_anyio.map(
        flaky, [attempts] * 3, keys, [2] * 3, retry=policy
    ) as results:
        assert [value async for value in results] == [3, 3, 3]  # third attempts
        assert results.retried == 6
        assert (results.completed, results.failed) == (3, 0)
    for key in keys:
        first, second, third = ray.get(attempts.of.remote(key))
        assert second - first >= 0.2 * 0.9  # delay, less the jitter
        assert third - second >= 0.4 * 0.9  # delay * backoff


@pytest.mark.anyio
async def test_map_raises_the_last_error_once_attempts_are_spent(attempts: Any) -> None:
    [key] = _keys(1)
    policy = Retry(2, delay=0)
    async with ray_anyio.map(flaky, [attempts], [key], [5], retry=policy) as results:
        with pytest.raises(ValueError, match="attempt 2 fails"):
            await anext(results)
    assert len(ray.get(attempts.of.remote(key))) == 2


@pytest.mark.anyio
async def test_map_never_retries_what_not_on_or_on_excludes(attempts: Any) -> None:
    keys = _keys(2)
    policy = Retry(5, delay=0, on=(ValueError, KeyError), not_on=KeyError)
    async with ray_anyio.map(
        flaky,
        [attempts] * 2,
        keys,
        [1, 1],
        ["key", "value"],
        retry=policy,
        return_exceptions=True,
    ) as results:
        got = [value async for value in results]
    assert isinstance(got[0], KeyError) and got[1] == 2
    assert [len(ray.get(attempts.of.remote(k))) for k in keys] == [1, 2]
    [key] = _keys(1)
    async with ray_anyio.map(
        flaky, [attempts], [key], [1], retry=Retry(on=KeyError, delay=0)
    ) as results:
        with pytest.raises(ValueError):
            await anext(results)
    assert len(ray.get(attempts.of.remote(key))) == 1


@pytest.mark.anyio
async def test_ordered_output_holds_across_retries(attempts: Any) -> None:
    keys = _keys(12)
    failures = [1 if i % 3 == 0 else 0 for i in range(12)]
    async with ray_anyio.map(
        flaky, [attempts] * 12, keys, failures, retry=Retry(delay=0.05)
    ) as results:
        got = [value async for value in results]
    assert got == [2 if f else 1 for f in failures]


@pytest.mark.anyio
async def test_a_waiting_retry_holds_no_place(attempts: Any) -> None:
    # One place: the second item runs while the first waits out its delay.
    keys = _keys(2)
    async with ray_anyio.map(
        flaky,
        [attempts] * 2,
        keys,
        [1, 0],
        max_in_flight=1,
        ordered=False,
        retry=Retry(delay=5, jitter=0),
    ) as results:
        assert [value async for value in results] == [1, 2]
    (second,) = ray.get(attempts.of.remote(keys[1]))
    first_a, first_b = ray.get(attempts.of.remote(keys[0]))
    assert first_a < second < first_b


@pytest.mark.anyio
async def test_a_retry_counts_as_a_start_for_max_per_second(attempts: Any) -> None:
    keys = _keys(3)
    async with ray_anyio.map(
        flaky,
        [attempts] * 3,
        keys,
        [1, 1, 1],
        max_per_second=4,
        retry=Retry(delay=0),
    ) as results:
        assert [value async for value in results] == [2, 2, 2]
    starts = sorted(t for k in keys for t in ray.get(attempts.of.remote(k)))
    # Six starts at four a second: the last comes at least a second after the first.
    assert starts[-1] - starts[0] >= 1.0 * 0.9


@pytest.mark.anyio
async def test_leaving_the_block_cancels_and_never_retries(track: Track) -> None:
    policy = Retry(5, delay=0)
    async with ray_anyio.map(
        lambda x: spin.remote(track.actor, track.key), range(3), retry=policy
    ) as results:
        await ray_anyio.get(track.wait_for(running=3))
    # The block cancelled the three; none was started again.
    await ray_anyio.get(track.wait_idle())
    assert track.stats()["started"] == 3
    assert results.retried == 0


# --- ActorPool ------------------------------------------------------------------------


@pytest.fixture
def workers() -> Iterator[list[Any]]:
    handles = [start(PoolWorker) for _ in range(2)]
    ray.get([h.stats.remote() for h in handles])
    yield handles
    for handle in handles:
        ray.kill(handle)


@pytest.mark.anyio
async def test_pool_map_retries_on_any_actor(attempts: Any, workers: list[Any]) -> None:
    keys = _keys(6)
    pool = ray_anyio.ActorPool(workers)
    async with pool.map(
        lambda a, key: a.flaky.remote(attempts, key, 2),
        keys,
        retry=Retry(3, delay=0.1),
    ) as results:
        assert [value async for value in results] == [3] * 6
        assert results.retried == 12
    assert len(pool.actors) == 2


@pytest.mark.anyio
async def test_pool_submit_retries_then_raises(
    attempts: Any, workers: list[Any]
) -> None:
    pool = ray_anyio.ActorPool(workers)
    ok, spent = _keys(2)
    assert (
        await pool.submit(
            lambda a: a.flaky.remote(attempts, ok, 1), retry=Retry(delay=0.1)
        )
        == 2
    )
    with pytest.raises(ValueError, match="attempt 2 fails"):
        await pool.submit(
            lambda a: a.flaky.remote(attempts, spent, 9), retry=Retry(2, delay=0)
        )
    first, second = ray.get(attempts.of.remote(ok))
    assert second - first >= 0.1 * 0.9
    # Without retry, an error is raised at once, as before.
    [once] = _keys(1)
    with pytest.raises(ValueError):
        await pool.submit(lambda a: a.flaky.remote(attempts, once, 1))
    assert len(ray.get(attempts.of.remote(once))) == 1


@pytest.mark.anyio
async def test_a_cancelled_submit_is_not_retried(workers: list[Any]) -> None:
    pool = ray_anyio.ActorPool(workers[:1])
    ray.get(workers[0].hold.remote(True))
    with anyio.move_on_after(0.5) as scope:
        await pool.submit(lambda a: a.double.remote(1), retry=Retry(5, delay=0))
    assert scope.cancelled_caught
    ray.get(workers[0].hold.remote(False))
    assert ray.get(workers[0].stats.remote())["calls"] == [1]
