"""Recipe: take the first good result, then cancel the tasks still running.

``as_completed`` does not own Ray tasks: leaving its block stops waiting, and
the tasks keep running. Start them through an ``open_scope`` and cancel the
scope once the result is in.
"""

from __future__ import annotations

import time

import anyio
import ray
from ray.exceptions import TaskCancelledError

import ray_anyio


@ray.remote
def ask(replica: int) -> str:
    if replica == 0:
        raise RuntimeError("replica 0 is down")
    for _ in range(1 if replica == 1 else 600):  # replica 1 answers; others hang
        time.sleep(0.1)  # short sleeps: a polite ray.cancel() stops the task
    return f"answer from replica {replica}"


async def first_good_result() -> str | None:
    answer = None
    async with ray_anyio.open_scope() as scope:
        refs = [scope.remote(ask, replica) for replica in range(4)]
        async with ray_anyio.as_completed(refs, return_exceptions=True) as results:
            async for _index, value in results:
                if not isinstance(value, Exception):  # a failed replica: go on
                    answer = value
                    break
        # Leave quietly, cancelling every task that is still running. Without
        # this the scope would wait for them, and raise the first failure.
        scope.cancel()
    outcomes = await ray_anyio.get(refs, return_exceptions=True)
    assert isinstance(outcomes[0], RuntimeError)
    assert all(isinstance(o, TaskCancelledError) for o in outcomes[2:]), outcomes
    return answer


async def main() -> None:
    assert await first_good_result() == "answer from replica 1"


if __name__ == "__main__":
    import sys

    # address="local" starts a new Ray; pass a cluster's address to join it.
    ray.init(address="local")
    anyio.run(main, backend=sys.argv[1] if len(sys.argv) > 1 else "trio")
    ray.shutdown()
