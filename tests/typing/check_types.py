"""Static checks of the public API's types; mypy checks this file, nobody runs it.

Each ``assert_type`` fails the ``typecheck`` session if the type a checker
infers drifts from the one written here.
"""

from __future__ import annotations

from typing import Any

import ray
from typing_extensions import assert_type

import ray_anyio


@ray.remote
def square(x: int) -> int:
    return x * x


async def check_get(ref: ray.ObjectRef[int], refs: list[ray.ObjectRef[int]]) -> None:
    assert_type(await ray_anyio.get(ref), int)
    assert_type(await ray_anyio.get(ref, timeout=1.5), int)
    assert_type(await ray_anyio.get(refs), list[int])
    assert_type(await ray_anyio.get(square.remote(3)), int)
    assert_type(await ray_anyio.get([square.remote(i) for i in range(3)]), list[int])
    # Anything else (a coroutine, a dict of refs...) resolves to Any.
    assert_type(await ray_anyio.get({"a": ref}), Any)


async def check_put() -> None:
    assert_type(await ray_anyio.put(3), ray.ObjectRef[int])


async def check_get_errors(
    ref: ray.ObjectRef[int], refs: list[ray.ObjectRef[int]]
) -> None:
    assert_type(await ray_anyio.get(ref, return_exceptions=True), int | Exception)
    assert_type(
        await ray_anyio.get(refs, return_exceptions=True), list[int | Exception]
    )


async def check_wait(refs: list[ray.ObjectRef[int]]) -> None:
    ready, remaining = await ray_anyio.wait(refs, num_returns=1, timeout=2.5)
    assert_type(ready, list[ray.ObjectRef[int]])
    assert_type(remaining, list[ray.ObjectRef[int]])


async def check_as_completed(refs: list[ray.ObjectRef[int]]) -> None:
    async with ray_anyio.as_completed(refs) as results:
        assert_type(results, ray_anyio.AsCompleted[int])
        async for pair in results:
            assert_type(pair, tuple[int, int])
        assert_type(results.completed, int)
        assert_type(results.total, int | None)
        assert_type(results.add(refs[0]), int)
        async for batch in results.batches():
            assert_type(batch, list[tuple[int, int]])


async def check_map() -> None:
    async with ray_anyio.map(square, range(3)) as results:
        assert_type(results, ray_anyio.MapResults[int])
        async for value in results:
            assert_type(value, int)


def _double(actor: Any, x: int) -> ray.ObjectRef[int]:
    ref: ray.ObjectRef[int] = actor.double.remote(x)
    return ref


async def check_pool(actors: list[Any]) -> None:
    pool = ray_anyio.ActorPool(actors)
    assert_type(await pool.submit(_double, 2), int)
    async with pool.map(_double, range(3)) as results:
        async for value in results:
            assert_type(value, int)


async def check_scope() -> None:
    async with ray_anyio.open_scope() as scope:
        assert_type(scope, ray_anyio.TaskScope)
        assert_type(scope.remote(square, 2), ray.ObjectRef[int])


def check_run_until_complete(ref: ray.ObjectRef[int]) -> None:
    assert_type(ray_anyio.run_until_complete(ray_anyio.get(ref)), int)


async def check_scope_can_swallow(ref: ray.ObjectRef[int]) -> int:
    # open_scope can swallow its own cancellation: the line after the block is
    # reachable, so a function returning inside it needs one there too.
    async with ray_anyio.open_scope():
        return await ray_anyio.get(ref)
    return -1
