"""The seed document's ``run_until_complete``, from synchronous code."""

from __future__ import annotations

import ray

import ray_anyio


@ray.remote
def f() -> dict[str, list[str]]:
    return {"key1": ["value"]}


def main(backend: str = "asyncio") -> None:
    # A fresh event loop of the chosen backend runs the coroutine to its end.
    coroutine_object = ray_anyio.get(f.remote())
    value = ray_anyio.run_until_complete(coroutine_object, backend=backend)
    assert value == {"key1": ["value"]}

    ready, remaining = ray_anyio.run_until_complete(
        ray_anyio.wait([f.remote(), f.remote()], num_returns=2, timeout=60),
        backend=backend,
    )
    assert len(ready) == 2
    assert remaining == []


if __name__ == "__main__":
    # address="local" starts a new Ray; pass a cluster's address to join it.
    ray.init(address="local")
    main("trio")
