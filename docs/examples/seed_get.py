"""The seed document's ``async_api.get`` examples, on any AnyIO backend."""

from __future__ import annotations

from typing import Any

import anyio
import ray

import ray_anyio


@ray.remote
def f() -> dict[str, list[str]]:
    return {"key1": ["value"]}


async def single_object_ref() -> None:
    # A single ObjectRef: get() returns a coroutine; awaiting it gives the value.
    coroutine_object = ray_anyio.get(f.remote())
    assert await coroutine_object == {"key1": ["value"]}


async def coroutine_returning_a_ref() -> None:
    # A single coroutine (or future) that returns an ObjectRef.
    async def make_ref() -> ray.ObjectRef[Any]:
        return ray.put({"key1": ["value"]})

    assert await ray_anyio.get(make_ref()) == {"key1": ["value"]}


async def chain_of_refs() -> None:
    # A chain: each value is a list holding the next ref, seven levels deep.
    obj_ref: Any = {"key1": ["value"]}
    for _ in range(7):
        obj_ref = ray.put([obj_ref])

    async def recurrent_get(obj_ref: Any) -> Any:
        if isinstance(obj_ref, dict):
            return obj_ref
        value = await ray_anyio.get(obj_ref)
        if isinstance(value, list):
            return await recurrent_get(value[0])
        return value

    assert await recurrent_get(obj_ref) == {"key1": ["value"]}


async def list_of_the_above() -> None:
    # A list (or tuple, or dict) of refs and awaitables, resolved concurrently.
    async def make_ref() -> ray.ObjectRef[Any]:
        return ray.put(2)

    values = await ray_anyio.get([ray.put(1), make_ref(), {"three": ray.put(3)}])
    assert values == [1, 2, {"three": 3}]


async def main() -> None:
    await single_object_ref()
    await coroutine_returning_a_ref()
    await chain_of_refs()
    await list_of_the_above()


if __name__ == "__main__":
    # address="local" starts a new Ray; pass a cluster's address to join it.
    ray.init(address="local")
    anyio.run(main)  # or anyio.run(main, backend="trio")
