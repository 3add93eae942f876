"""API page: the code after an ``open_scope`` block is reachable."""

from __future__ import annotations

import anyio
import ray

import ray_anyio


@ray.remote
def compute(x: int) -> int:
    return x * x


async def compute_once(x: int) -> int:
    async with ray_anyio.open_scope() as scope:
        ref = scope.remote(compute, x)
        if x < 0:
            scope.cancel()  # the block ends quietly at its next checkpoint
        return await ray_anyio.get(ref)
    raise ValueError("x must not be negative")  # reached after scope.cancel()


async def main() -> None:
    assert await compute_once(3) == 9
    try:
        await compute_once(-1)
    except ValueError:
        pass
    else:
        raise AssertionError("expected the scope to swallow its cancellation")


if __name__ == "__main__":
    import sys

    # address="local" starts a new Ray; pass a cluster's address to join it.
    ray.init(address="local")
    anyio.run(main, backend=sys.argv[1] if len(sys.argv) > 1 else "trio")
    ray.shutdown()
