"""Recipe: spread calls over a pool of existing actors."""

from __future__ import annotations

import asyncio

import anyio
import ray

import ray_anyio


@ray.remote(num_cpus=0)
class Model:
    def __init__(self, name: str) -> None:
        self.name = name

    def predict(self, x: int) -> tuple[str, int]:
        return self.name, 2 * x

    async def think(self, seconds: float) -> str:
        await asyncio.sleep(seconds)  # an async method: a cancel stops it here
        return "done"


Answer = tuple[str, int]


def predict(actor: ray.actor.ActorHandle[Model], x: int) -> ray.ObjectRef[Answer]:
    # fn(actor, *args) makes one call on the actor it is given and returns its ref.
    ref: ray.ObjectRef[Answer] = actor.predict.remote(x)
    return ref


async def map_over_a_pool(pool: ray_anyio.ActorPool) -> None:
    async with pool.map(predict, range(20)) as results:  # in input order
        answers = [answer async for answer in results]
    assert [value for _name, value in answers] == [2 * x for x in range(20)]
    assert {name for name, _value in answers} <= {"a", "b"}


async def submit_one_call(pool: ray_anyio.ActorPool) -> None:
    _name, value = await pool.submit(predict, 21)  # on the next free actor
    assert value == 42


async def cancel_a_call(pool: ray_anyio.ActorPool) -> None:
    with anyio.move_on_after(0.5) as deadline:
        await pool.submit(lambda actor: actor.think.remote(60))
    assert deadline.cancelled_caught
    # The call was cancelled (ray.cancel), which stops an async method at its
    # next await, and its place went back to the pool: both actors serve again.
    with anyio.fail_after(30):
        async with pool.map(predict, range(4)) as results:
            assert len([answer async for answer in results]) == 4
    assert len(pool.actors) == 2


async def a_dead_actor_leaves(pool: ray_anyio.ActorPool) -> None:
    ray.kill(pool.actors[0])
    async with pool.map(predict, range(10)) as results:
        answers = [answer async for answer in results]  # retried on the other
    assert [value for _name, value in answers] == [2 * x for x in range(10)]
    assert len(pool.actors) == 1


async def main() -> None:
    # Ray's type stubs hide .remote() on a decorated class.
    actors = [Model.remote(name) for name in "ab"]  # type: ignore[attr-defined]
    pool = ray_anyio.ActorPool(actors)
    await map_over_a_pool(pool)
    await submit_one_call(pool)
    await cancel_a_call(pool)
    await a_dead_actor_leaves(pool)


if __name__ == "__main__":
    import sys

    # address="local" starts a new Ray; pass a cluster's address to join it.
    ray.init(address="local")
    anyio.run(main, backend=sys.argv[1] if len(sys.argv) > 1 else "trio")
    ray.shutdown()
