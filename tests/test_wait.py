"""``wait``: the rules of the seed document's ``wait``, on both backends."""

from __future__ import annotations

import inspect
import math
from typing import Any

import anyio
import pytest
import ray

import ray_anyio
from ray_anyio.testing import live_registrations

from .helpers import fail, sleep_then, square

pytestmark = pytest.mark.anyio


async def test_ready_subset_in_input_order(gate: Any, engine_path: str) -> None:
    a, b = ray.put("a"), gate.value_after("b")
    c = ray.put("c")
    ready, remaining = await ray_anyio.wait([a, b, c], num_returns=2)
    assert ready == [a, c]
    assert remaining == [b]


async def test_returns_when_pending_ref_becomes_ready(
    gate: Any, engine_path: str
) -> None:
    refs = [gate.value_after(i) for i in range(3)]
    async with anyio.create_task_group() as tg:
        result: list[Any] = []

        async def waiter() -> None:
            result.append(await ray_anyio.wait(refs, num_returns=3))

        tg.start_soon(waiter)
        await anyio.sleep(0)
        assert result == []
        await anyio.to_thread.run_sync(gate.open)
    assert result == [(refs, [])]


async def test_ready_has_exactly_num_returns() -> None:
    refs = [ray.put(i) for i in range(4)]
    ready, remaining = await ray_anyio.wait(refs, num_returns=2)
    assert ready == refs[:2]
    assert remaining == refs[2:]


async def test_duplicates_are_independent_slots() -> None:
    ref = ray.put(1)
    ready, remaining = await ray_anyio.wait([ref, ref, ref], num_returns=2)
    assert ready == [ref, ref]
    assert remaining == [ref]


async def test_failed_task_ref_is_ready_not_raised() -> None:
    ref = fail.remote("no raise from wait")
    ready, remaining = await ray_anyio.wait([ref])
    assert ready == [ref]
    assert remaining == []
    with pytest.raises(ValueError):
        ray.get(ref)


async def test_timeout_returns_what_is_ready(gate: Any, engine_path: str) -> None:
    done, pending = ray.put(0), gate.value_after(1)
    ready, remaining = await ray_anyio.wait([pending, done], num_returns=2, timeout=0.2)
    assert ready == [done]
    assert remaining == [pending]


async def test_timeout_zero_reports_now(gate: Any) -> None:
    done, pending = ray.put(0), gate.value_after(1)
    ready, remaining = await ray_anyio.wait([done, pending], num_returns=2, timeout=0)
    assert (ready, remaining) == ([done], [pending])


async def test_awaitable_resolving_to_plain_value_is_ready() -> None:
    async def plain() -> int:
        await anyio.sleep(0)
        return 42

    ready, remaining = await ray_anyio.wait([plain()])
    assert (ready, remaining) == ([42], [])


async def test_awaitable_resolving_to_ref(gate: Any, engine_path: str) -> None:
    pending = gate.value_after(1)
    done = square.remote(2)

    async def make(ref: ray.ObjectRef[Any]) -> ray.ObjectRef[Any]:
        await anyio.sleep(0)
        return ref

    ready, remaining = await ray_anyio.wait([make(pending), make(done)], timeout=10)
    assert ready == [done]
    assert remaining == [pending]


async def test_chain_resolving_to_ready_ref_of_existing_slot() -> None:
    ref = ray.put(5)

    async def same() -> ray.ObjectRef[Any]:
        return ref

    ready, remaining = await ray_anyio.wait([ref, same()], num_returns=2)
    assert ready == [ref, ref]
    assert remaining == []


async def test_unresolved_slot_is_none_and_awaitable_cancelled() -> None:
    cancelled = anyio.Event()

    async def slow_ref() -> ray.ObjectRef[Any]:
        try:
            await anyio.sleep_forever()
        finally:
            cancelled.set()
        raise AssertionError("unreachable")

    done = ray.put(1)
    ready, remaining = await ray_anyio.wait(
        [slow_ref(), done], num_returns=2, timeout=0.1
    )
    assert ready == [done]
    assert remaining == [None]
    assert cancelled.is_set()


async def test_not_started_coroutine_is_closed() -> None:
    async def never_started() -> ray.ObjectRef[Any]:
        raise AssertionError("must not run")

    coro = never_started()
    done = ray.put(1)
    ready, remaining = await ray_anyio.wait([done, coro], num_returns=1)
    assert ready == [done]
    assert remaining == [None]
    assert inspect.getcoroutinestate(coro) == inspect.CORO_CLOSED


async def test_awaitable_exception_propagates_unwrapped(gate: Any) -> None:
    async def broken() -> ray.ObjectRef[Any]:
        await anyio.sleep(0)
        raise KeyError("awaitable failed")

    with pytest.raises(KeyError, match="awaitable failed"):
        await ray_anyio.wait([gate.value_after(1), broken()], num_returns=2)


async def test_outer_cancellation_leaves_nothing(gate: Any, engine_path: str) -> None:
    refs = [gate.value_after(i) for i in range(10)]
    with anyio.move_on_after(0.1) as scope:
        await ray_anyio.wait(refs, num_returns=10)
    assert scope.cancelled_caught
    assert live_registrations() == 0


async def test_fetch_local_on_another_node(engine_path: str) -> None:
    payload = b"y" * 300_000
    remote = sleep_then.options(resources={"remote": 1})
    ref = remote.remote(0.05, payload)
    ready, _ = await ray_anyio.wait([ref], fetch_local=True, timeout=30)
    assert ready == [ref]
    assert ray.wait([ref], timeout=0, fetch_local=True)[0] == [ref]

    ref2 = remote.remote(0.05, payload)
    ready, _ = await ray_anyio.wait([ref2], fetch_local=False, timeout=30)
    assert ready == [ref2]


async def test_empty_items() -> None:
    assert await ray_anyio.wait([]) == ([], [])


async def test_tuple_items() -> None:
    ref = ray.put(1)
    assert await ray_anyio.wait((ref,)) == ([ref], [])


async def test_single_ref_gets_a_hint() -> None:
    with pytest.raises(TypeError, match=r"wrap it: wait\(\[ref\]\)"):
        await ray_anyio.wait(ray.put(1))  # type: ignore[call-overload]


@pytest.mark.parametrize("items", [{1, 2}, "abc", None, iter([])])
async def test_items_not_a_list(items: Any) -> None:
    with pytest.raises(TypeError, match="items must be a list or tuple"):
        await ray_anyio.wait(items)


async def test_item_of_wrong_type() -> None:
    with pytest.raises(
        TypeError, match=r"items\[1\] must be an ObjectRef or an awaitable"
    ):
        await ray_anyio.wait([ray.put(1), 3])


@pytest.mark.parametrize("num_returns", [0, -1, 3])
async def test_num_returns_out_of_range(num_returns: int) -> None:
    with pytest.raises(ValueError, match="num_returns"):
        await ray_anyio.wait([ray.put(1), ray.put(2)], num_returns=num_returns)


async def test_num_returns_wrong_type() -> None:
    with pytest.raises(TypeError, match="num_returns"):
        await ray_anyio.wait([ray.put(1)], num_returns=1.0)  # type: ignore[call-overload]


@pytest.mark.parametrize("timeout", [-0.1, math.nan])
async def test_bad_timeout(timeout: float) -> None:
    with pytest.raises(ValueError, match="timeout"):
        await ray_anyio.wait([ray.put(1)], timeout=timeout)


async def test_bad_fetch_local() -> None:
    with pytest.raises(TypeError, match="fetch_local"):
        await ray_anyio.wait([ray.put(1)], fetch_local="yes")  # type: ignore[call-overload]
