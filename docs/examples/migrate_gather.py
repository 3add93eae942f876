"""Migration: ``asyncio.gather`` over refs."""

from __future__ import annotations

import asyncio
from typing import Any

import anyio
import ray

import ray_anyio


@ray.remote
def square(x: int) -> int:
    return x * x


async def before(refs: list[ray.ObjectRef[int]]) -> list[Any]:
    # Ray's own: one asyncio future per ref, gathered one by one.
    return list(await asyncio.gather(*refs))


async def after(refs: list[ray.ObjectRef[int]]) -> list[int]:
    # ray_anyio: the same list, fetched with batched ray.get calls.
    return await ray_anyio.get(refs)


def running_on_asyncio() -> bool:
    """Ray's own ``await ref`` needs asyncio: the "before" code runs only there."""
    try:
        asyncio.get_running_loop()
    except RuntimeError:
        return False
    return True


async def main() -> None:
    refs = [square.remote(i) for i in range(1000)]
    expected = [i * i for i in range(1000)]
    assert await after(refs) == expected
    if running_on_asyncio():
        assert await before(refs) == expected


if __name__ == "__main__":
    # address="local" starts a new Ray; pass a cluster's address to join it.
    ray.init(address="local")
    anyio.run(main)
