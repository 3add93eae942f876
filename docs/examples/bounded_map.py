"""Recipe: a bounded map with a rate limit, errors kept as values."""

from __future__ import annotations

import anyio
import ray

import ray_anyio


@ray.remote
def fetch_page(url: str) -> int:
    if url.endswith("/404"):
        raise LookupError(f"no page at {url}")
    return len(url)


@ray.remote
def scale(value: float, factor: float) -> float:
    return value * factor


async def rate_limited_with_errors() -> None:
    urls = [f"https://example.com/{i}" for i in range(18)] + [
        "https://example.com/404",
        "https://example.com/last",
    ]
    start = anyio.current_time()
    async with ray_anyio.map(
        fetch_page,
        urls,
        max_in_flight=4,  # at most 4 tasks at once
        max_per_second=20,  # and at most 20 starts in any one second
        return_exceptions=True,  # a failure takes its place; the map goes on
    ) as results:
        outcomes = [outcome async for outcome in results]
    elapsed = anyio.current_time() - start
    assert elapsed >= 19 / 20  # 20 starts, at least 1/20 s apart
    assert isinstance(outcomes[18], LookupError)  # in input order
    assert outcomes[19] == len("https://example.com/last")
    assert (results.completed, results.failed) == (19, 1)


async def zipped_inputs_in_completion_order() -> None:
    values = [1.0, 2.0, 3.0]
    factors = [10.0, 100.0, 1000.0, 10_000.0]  # zipped: the shortest ends it
    async with ray_anyio.map(scale, values, factors, ordered=False) as results:
        products = {product async for product in results}
    assert products == {10.0, 200.0, 3000.0}


async def main() -> None:
    await rate_limited_with_errors()
    await zipped_inputs_in_completion_order()


if __name__ == "__main__":
    import sys

    # address="local" starts a new Ray; pass a cluster's address to join it.
    ray.init(address="local")
    anyio.run(main, backend=sys.argv[1] if len(sys.argv) > 1 else "trio")
    ray.shutdown()
