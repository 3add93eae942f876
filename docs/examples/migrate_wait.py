"""Migration: ``asyncio.wait`` and ``asyncio.as_completed`` over refs."""

from __future__ import annotations

import asyncio

import anyio
import ray

import ray_anyio


@ray.remote
def square(x: int) -> int:
    return x * x


async def before_wait(refs: list[ray.ObjectRef[int]]) -> int:
    # Ray's own: wrap each ref in a future, then wait on the futures.
    futures = [asyncio.wrap_future(ref.future()) for ref in refs]
    done, pending = await asyncio.wait(futures, return_when=asyncio.FIRST_COMPLETED)
    return len(done) + len(pending)


async def after_wait(refs: list[ray.ObjectRef[int]]) -> int:
    # ray_anyio: refs in, refs out, in input order, like ray.wait.
    ready, remaining = await ray_anyio.wait(refs, num_returns=1)
    return len(ready) + len(remaining)


async def before_as_completed(refs: list[ray.ObjectRef[int]]) -> int:
    # Ray's own: each ref becomes an asyncio task, awaited in completion order.
    total = 0
    for next_done in asyncio.as_completed(refs):
        total += await next_done
    return total


async def after_as_completed(refs: list[ray.ObjectRef[int]]) -> int:
    # ray_anyio: (index, value) pairs; the ready refs are fetched in batches.
    total = 0
    async with ray_anyio.as_completed(refs) as results:
        async for _index, value in results:
            total += value
    return total


def running_on_asyncio() -> bool:
    """Ray's own ``await ref`` needs asyncio: the "before" code runs only there."""
    try:
        asyncio.get_running_loop()
    except RuntimeError:
        return False
    return True


async def main() -> None:
    refs = [square.remote(i) for i in range(10)]
    assert await after_wait(refs) == 10
    assert await after_as_completed(refs) == 285
    if running_on_asyncio():
        assert await before_wait(refs) == 10
        assert await before_as_completed(refs) == 285


if __name__ == "__main__":
    # address="local" starts a new Ray; pass a cluster's address to join it.
    ray.init(address="local")
    anyio.run(main)
