"""Migration: ``await ref`` and ``asyncio.wait_for(ref, ...)``."""

from __future__ import annotations

import asyncio

import anyio
import ray

import ray_anyio


@ray.remote
def square(x: int) -> int:
    return x * x


async def before() -> int:
    # Ray's own: asyncio only, one future per ref.
    value: int = await square.remote(4)
    return value + await asyncio.wait_for(square.remote(5), timeout=10)


async def after() -> int:
    # ray_anyio: asyncio or trio; the timeout raises GetTimeoutError (a TimeoutError).
    value = await ray_anyio.get(square.remote(4))
    return value + await ray_anyio.get(square.remote(5), timeout=10)


def running_on_asyncio() -> bool:
    """Ray's own ``await ref`` needs asyncio: the "before" code runs only there."""
    try:
        asyncio.get_running_loop()
    except RuntimeError:
        return False
    return True


async def main() -> None:
    assert await after() == 41
    if running_on_asyncio():
        assert await before() == 41


if __name__ == "__main__":
    # address="local" starts a new Ray; pass a cluster's address to join it.
    ray.init(address="local")
    anyio.run(main)
