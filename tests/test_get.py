"""``get``: refs, awaitables, chains, structures, errors, timeouts, cancellation."""

from __future__ import annotations

import asyncio
import concurrent.futures
import math
import threading
from collections import namedtuple
from typing import Any

import anyio
import pytest
import ray
from ray.exceptions import GetTimeoutError, RayTaskError

import ray_anyio
from ray_anyio._core import _fetch

from .helpers import fail, sleep_then, square

pytestmark = pytest.mark.anyio


async def test_ref_value() -> None:
    assert await ray_anyio.get(square.remote(7)) == 49


async def test_put_ref_value_is_the_same_object_as_ray_get() -> None:
    value = {"key1": ["value"]}
    ref = ray.put(value)
    assert await ray_anyio.get(ref) == ray.get(ref) == value


async def test_pending_ref(gate: Any) -> None:
    ref = gate.value_after("later")
    async with anyio.create_task_group() as tg:
        result: list[Any] = []

        async def getter() -> None:
            result.append(await ray_anyio.get(ref))

        tg.start_soon(getter)
        await anyio.sleep(0)
        assert result == []
        gate.open()
    assert result == ["later"]


async def test_task_error_is_ray_task_error_and_user_class() -> None:
    with pytest.raises(ValueError, match="boom") as info:
        await ray_anyio.get(fail.remote("boom"))
    assert isinstance(info.value, RayTaskError)


async def test_coroutine_returning_ref() -> None:
    async def make() -> ray.ObjectRef[Any]:
        await anyio.sleep(0)
        return ray.put({"key1": ["value"]})

    assert await ray_anyio.get(make()) == {"key1": ["value"]}


async def test_chain_of_awaitables() -> None:
    async def inner() -> ray.ObjectRef[Any]:
        return square.remote(3)

    async def outer() -> Any:
        return inner()

    assert await ray_anyio.get(outer()) == 9


async def test_concurrent_future_on_either_backend() -> None:
    pool = concurrent.futures.ThreadPoolExecutor(1)
    try:
        started = threading.Event()
        release = threading.Event()

        def work() -> ray.ObjectRef[Any]:
            started.set()
            release.wait(10)
            return square.remote(5)

        fut = pool.submit(work)
        started.wait(10)
        release.set()
        assert await ray_anyio.get(fut) == 25
    finally:
        pool.shutdown()


async def test_ref_future_from_ray() -> None:
    # ObjectRef.future() is a concurrent future that already holds the value.
    assert await ray_anyio.get(square.remote(4).future()) == 16


async def test_asyncio_future(anyio_backend_name: str) -> None:
    if anyio_backend_name != "asyncio":
        fut: Any = asyncio.Future
        with pytest.raises(TypeError, match="asyncio event loop"):
            await ray_anyio.get(_detached_asyncio_future())
        del fut
        return
    loop = asyncio.get_running_loop()
    fut2: asyncio.Future[Any] = loop.create_future()
    loop.call_soon(fut2.set_result, square.remote(6))
    assert await ray_anyio.get(fut2) == 36


def _detached_asyncio_future() -> asyncio.Future[Any]:
    loop = asyncio.new_event_loop()
    fut: asyncio.Future[Any] = loop.create_future()
    loop.close()
    return fut


async def test_object_with_dunder_await() -> None:
    class Custom:
        def __await__(self) -> Any:
            yield from anyio.sleep(0).__await__()
            return square.remote(8)

    assert await ray_anyio.get(Custom()) == 64


async def test_nested_structure_same_shape() -> None:
    async def coro() -> ray.ObjectRef[Any]:
        return square.remote(2)

    Point = namedtuple("Point", "x y")
    obj = {
        "a": [square.remote(1), coro(), 5, "text"],
        "b": (square.remote(3), {"c": ray.put("v")}),
        "p": Point(square.remote(4), 0),
    }
    assert await ray_anyio.get(obj) == {
        "a": [1, 4, 5, "text"],
        "b": (9, {"c": "v"}),
        "p": Point(16, 0),
    }


async def test_list_of_refs_matches_ray_get() -> None:
    refs = [square.remote(i) for i in range(50)] + [ray.put(None)]
    assert await ray_anyio.get(refs) == ray.get(refs)


async def test_duplicate_refs_in_list() -> None:
    ref = square.remote(9)
    assert await ray_anyio.get([ref, ref, ref]) == [81, 81, 81]


async def test_fetched_values_are_not_walked() -> None:
    inner = [square.remote(1), square.remote(2)]
    outer = ray.put(inner)
    value = await ray_anyio.get(outer)
    assert all(isinstance(r, ray.ObjectRef) for r in value)
    assert [r.hex() for r in value] == [r.hex() for r in inner]


async def test_plain_values_returned_unchanged() -> None:
    marker = object()
    assert await ray_anyio.get(marker) is marker
    assert await ray_anyio.get(None) is None
    assert await ray_anyio.get([]) == []


async def test_elements_resolve_concurrently(gate: Any) -> None:
    # The coroutine only finishes after the ref's gate opens, which it does
    # itself: with sequential resolution the ref would never become ready.
    ref = gate.value_after("gated")

    async def opener() -> str:
        await anyio.to_thread.run_sync(gate.open)
        return "opened"

    assert await ray_anyio.get([ref, opener()]) == ["gated", "opened"]


async def test_first_failure_wins_and_cancels_siblings(gate: Any) -> None:
    cancelled = anyio.Event()

    async def slow() -> None:
        try:
            await anyio.sleep_forever()
        finally:
            cancelled.set()

    async def broken() -> None:
        await anyio.sleep(0)
        raise KeyError("first")

    with pytest.raises(KeyError, match="first"):
        await ray_anyio.get([gate.value_after(1), slow(), broken()])
    assert cancelled.is_set()


async def test_task_error_in_list_raised_unwrapped() -> None:
    with pytest.raises(ValueError, match="in list"):
        await ray_anyio.get([square.remote(1), fail.remote("in list")])


async def test_timeout_raises_timeout_error(gate: Any) -> None:
    with pytest.raises(TimeoutError) as info:
        await ray_anyio.get(gate.value_after(1), timeout=0.2)
    assert isinstance(info.value, GetTimeoutError)


async def test_timeout_zero_on_ready_ref_returns() -> None:
    ref = ray.put(3)
    assert await ray_anyio.get(ref, timeout=0) == 3
    assert await ray_anyio.get([ref], timeout=0) == [3]


async def test_timeout_cancels_awaitables() -> None:
    cancelled = anyio.Event()

    async def never() -> None:
        try:
            await anyio.sleep_forever()
        finally:
            cancelled.set()

    with pytest.raises(TimeoutError):
        await ray_anyio.get([never()], timeout=0.05)
    assert cancelled.is_set()


@pytest.mark.parametrize("bad", [-1, math.nan, -0.5])
async def test_bad_timeout_value(bad: float) -> None:
    with pytest.raises(ValueError, match="timeout"):
        await ray_anyio.get(ray.put(1), timeout=bad)


async def test_bad_timeout_type() -> None:
    with pytest.raises(TypeError, match="timeout"):
        await ray_anyio.get(ray.put(1), timeout="1")  # type: ignore[call-overload]


async def test_outer_cancel_leaves_nothing_registered(gate: Any) -> None:
    refs = [gate.value_after(i) for i in range(20)]
    ids = [r.hex().encode() for r in refs]
    with anyio.move_on_after(0.2) as scope:
        await ray_anyio.get(refs)
    assert scope.cancelled_caught
    worker: Any = ray._private.worker.global_worker
    counts = worker.core_worker.get_all_reference_counts()
    for ref_id in ids:
        # Only the test's own list still holds the refs.
        assert counts[ref_id]["local"] == 1
    gate.open()
    assert await ray_anyio.get(refs) == list(range(20))


async def test_many_ready_refs_use_worker_thread_chunks() -> None:
    refs = [ray.put(i) for i in range(_fetch.INLINE_FETCH_MAX * 3)]
    assert await ray_anyio.get(refs) == list(range(len(refs)))


async def test_many_pending_refs(gate: Any) -> None:
    n = _fetch.INLINE_FETCH_MAX * 2
    refs = [gate.value_after(i) for i in range(n)]
    async with anyio.create_task_group() as tg:
        out: list[Any] = []

        async def getter() -> None:
            out.extend(await ray_anyio.get(refs))

        tg.start_soon(getter)
        await anyio.to_thread.run_sync(gate.open)
    assert out == list(range(n))


async def test_object_on_another_node() -> None:
    ref = sleep_then.options(resources={"remote": 1}).remote(0.1, b"x" * 200_000)
    assert await ray_anyio.get(ref) == b"x" * 200_000


# --- inputs that are common mistakes ----------------------------------------------


@ray.remote
def _numbers() -> Any:
    yield 1


@pytest.mark.parametrize(
    ("make", "hint"),
    [
        (lambda: {ray.put(1)}, "pass a list"),
        (lambda: frozenset([ray.put(1)]), "pass a list"),
        (lambda: (ray.put(i) for i in range(2)), r"list\(\.\.\.\)"),
        (lambda: iter([ray.put(1)]), r"list\(\.\.\.\)"),
        (lambda: _numbers.remote(), "ray_anyio.stream"),
        (lambda: square, r"\.remote\(\.\.\.\)"),
        (lambda: [ray.put(1), square], r"\.remote\(\.\.\.\)"),
        (lambda: {"gen": (x for x in [1])}, r"list\(\.\.\.\)"),
        (lambda: square.remote, r"the \.remote method itself: call it"),
        (lambda: square.options(num_cpus=0).remote, r"\.remote method itself"),
        (lambda: [ray.put(1), square.remote], r"\.remote method itself"),
    ],
    ids=[
        "set",
        "frozenset",
        "generator",
        "iterator",
        "ObjectRefGenerator",
        "remote function",
        "remote function in a list",
        "generator in a dict",
        ".remote",
        ".options(...).remote",
        ".remote in a list",
    ],
)
async def test_a_common_mistake_is_a_type_error_with_a_hint(
    make: Any, hint: str
) -> None:
    with pytest.raises(TypeError, match=hint):
        await ray_anyio.get(make())


async def test_a_list_that_contains_itself_is_a_value_error() -> None:
    cyclic: list[Any] = [ray.put(1)]
    cyclic.append(cyclic)
    with pytest.raises(ValueError, match="contains itself"):
        await ray_anyio.get(cyclic)


async def test_a_structure_nested_too_deep_is_a_value_error() -> None:
    deep: Any = ray.put(1)
    for _ in range(1000):
        deep = [deep]
    with pytest.raises(ValueError, match="nested more than"):
        await ray_anyio.get(deep)


async def test_the_same_list_twice_is_not_a_cycle() -> None:
    shared = [ray.put(1)]
    assert await ray_anyio.get([shared, shared]) == [[1], [1]]


async def test_return_exceptions_puts_each_failure_in_its_place(gate: Any) -> None:
    async def broken() -> None:
        raise KeyError("awaitable")

    refs = [square.remote(2), fail.remote("task"), gate.value_after(5)]
    gate.open()
    values = await ray_anyio.get(refs, return_exceptions=True)
    assert values[0] == 4 and values[2] == 5
    assert isinstance(values[1], ValueError)
    mixed = await ray_anyio.get(
        {"ok": square.remote(3), "bad": broken()}, return_exceptions=True
    )
    assert mixed["ok"] == 9 and isinstance(mixed["bad"], KeyError)
    assert isinstance(
        await ray_anyio.get(fail.remote("one"), return_exceptions=True), ValueError
    )


async def test_return_exceptions_still_raises_a_timeout(gate: Any) -> None:
    with pytest.raises(TimeoutError):
        await ray_anyio.get([gate.value_after(1)], timeout=0.1, return_exceptions=True)


async def test_bad_return_exceptions() -> None:
    with pytest.raises(TypeError, match="return_exceptions"):
        await ray_anyio.get(ray.put(1), return_exceptions="yes")  # type: ignore[call-overload]


async def test_an_actor_methods_remote_itself_is_a_type_error_with_a_hint(
    gates_actor: Any,
) -> None:
    with pytest.raises(TypeError, match=r"\.remote method itself: call it"):
        await ray_anyio.get(gates_actor.ping.remote)
    with pytest.raises(TypeError, match=r"items\[0\].*\.remote method itself"):
        await ray_anyio.wait([gates_actor.ping.remote])
