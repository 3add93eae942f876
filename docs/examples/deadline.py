"""Recipe: a deadline that cancels the Ray tasks started under it."""

from __future__ import annotations

import time

import anyio
import ray
from ray.exceptions import TaskCancelledError

import ray_anyio


@ray.remote
def nap(seconds: float) -> float:
    for _ in range(int(seconds * 10)):
        # Short sleeps: a polite ray.cancel() interrupts the task between two
        # of them. One time.sleep(60) would not see it until it returned.
        time.sleep(0.1)
    return seconds


async def move_on_after_a_deadline() -> None:
    refs: list[ray.ObjectRef[float]] = []
    with anyio.move_on_after(1) as deadline:
        async with ray_anyio.open_scope() as scope:
            refs = [scope.remote(nap, 60) for _ in range(3)]
            await ray_anyio.get(refs)
    assert deadline.cancelled_caught
    # The scope cancelled its three tasks before the block was left.
    outcomes = await ray_anyio.get(refs, return_exceptions=True)
    assert all(isinstance(o, TaskCancelledError) for o in outcomes), outcomes


async def fail_after_a_deadline() -> None:
    try:
        with anyio.fail_after(1):
            async with ray_anyio.open_scope(cancel_timeout=2) as scope:
                ref = scope.remote(nap, 60)
                await ray_anyio.get(ref)
    except TimeoutError:
        pass  # raised once the scope has cancelled the task
    else:
        raise AssertionError("expected a timeout")
    outcome = await ray_anyio.get(ref, return_exceptions=True)
    assert isinstance(outcome, TaskCancelledError), outcome


async def main() -> None:
    await move_on_after_a_deadline()
    await fail_after_a_deadline()


if __name__ == "__main__":
    import sys

    # address="local" starts a new Ray; pass a cluster's address to join it.
    ray.init(address="local")
    anyio.run(main, backend=sys.argv[1] if len(sys.argv) > 1 else "trio")
    ray.shutdown()
