"""Recipe: a tqdm progress bar driven by the iterators' progress counters."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import anyio
import ray
from tqdm import tqdm  # type: ignore  # tqdm ships no type information

import ray_anyio


@ray.remote
def square(x: int) -> int:
    return x * x


async def a_bar_for_a_map() -> None:
    async with ray_anyio.map(square, range(200), max_in_flight=8) as results:
        with tqdm(total=results.total, unit="task") as bar:  # total: 200
            async for _value in results:
                bar.set_postfix(in_flight=results.in_flight, failed=results.failed)
                bar.update(results.completed + results.failed - bar.n)
    assert bar.n == results.total == 200


async def a_bar_that_polls() -> None:
    # A generator has no length: total is None, and tqdm counts without one.
    def inputs() -> Iterator[int]:
        yield from range(100)

    async def refresh(bar: Any, results: ray_anyio.MapResults[int]) -> None:
        while True:  # redraws while the consumer waits, too
            bar.set_postfix(submitted=results.submitted, in_flight=results.in_flight)
            bar.update(results.completed + results.failed - bar.n)
            await anyio.sleep(0.1)

    total = 0
    async with ray_anyio.map(square, inputs(), max_in_flight=8) as results:
        with tqdm(total=results.total, unit="task") as bar:
            async with anyio.create_task_group() as group:
                group.start_soon(refresh, bar, results)
                async for value in results:
                    total += value
                group.cancel_scope.cancel()
            bar.update(results.completed + results.failed - bar.n)
    assert results.total is None
    assert bar.n == 100
    assert total == sum(x * x for x in range(100))


async def a_bar_for_as_completed() -> None:
    refs = [square.remote(i) for i in range(50)]
    async with ray_anyio.as_completed(refs) as results:
        with tqdm(total=results.total, unit="result") as bar:
            async for _index, _value in results:
                bar.update(results.completed + results.failed - bar.n)
    assert bar.n == 50


async def main() -> None:
    await a_bar_for_a_map()
    await a_bar_that_polls()
    await a_bar_for_as_completed()


if __name__ == "__main__":
    import sys

    # address="local" starts a new Ray; pass a cluster's address to join it.
    ray.init(address="local")
    anyio.run(main, backend=sys.argv[1] if len(sys.argv) > 1 else "trio")
    ray.shutdown()
