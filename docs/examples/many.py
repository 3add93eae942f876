"""Both tutorials, part 3: results as they finish, bounded maps, streams.

Nothing here depends on the backend: the same functions run on trio and on
asyncio (``python many.py asyncio`` or ``python many.py trio``)."""

from __future__ import annotations

from collections.abc import Iterator

import anyio
import ray

import ray_anyio

BACKENDS = ("asyncio", "trio")


@ray.remote
def square(x: int) -> int:
    return x * x


@ray.remote
def countdown(n: int) -> Iterator[int]:
    while n > 0:
        yield n
        n -= 1


async def as_they_finish() -> None:
    refs = [square.remote(i) for i in range(10)]
    seen: dict[int, int] = {}
    async with ray_anyio.as_completed(refs) as results:
        async for index, value in results:
            seen[index] = value  # the order is the order the tasks finish
    assert seen == {i: i * i for i in range(10)}


async def a_bounded_map() -> None:
    values = []
    async with ray_anyio.map(square, range(50), max_in_flight=4) as results:
        async for value in results:  # in input order; at most 4 tasks at once
            values.append(value)
    assert values == [i * i for i in range(50)]


async def a_streaming_generator() -> None:
    async with ray_anyio.stream(countdown.remote(3), values=True) as items:
        received = [value async for value in items]
    assert received == [3, 2, 1]


async def main() -> None:
    await as_they_finish()
    await a_bounded_map()
    await a_streaming_generator()


if __name__ == "__main__":
    import sys

    # address="local" starts a new Ray; pass a cluster's address to join it.
    ray.init(address="local")
    anyio.run(main, backend=sys.argv[1] if len(sys.argv) > 1 else "trio")
