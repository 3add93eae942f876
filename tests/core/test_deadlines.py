"""``Deadlines``: one task expires many keys, each by its latest start."""

from __future__ import annotations

import anyio
import pytest

from ray_anyio._core._deadlines import Deadlines

pytestmark = pytest.mark.anyio


async def test_expired_in_order_and_stopped_keys_never() -> None:
    deadlines: Deadlines[str] = Deadlines(0.05)
    expired: list[str] = []
    both = anyio.Event()

    def expire(key: str) -> None:
        expired.append(key)
        if len(expired) == 2:
            both.set()

    async with anyio.create_task_group() as tg:
        tg.start_soon(deadlines.run, expire)
        for key in "abc":
            deadlines.start(key, 0)
        deadlines.stop("b")
        with anyio.fail_after(5):
            await both.wait()
        await anyio.sleep(0.1)  # time for a wrong expiry of "b" to show
        tg.cancel_scope.cancel()
    assert expired == ["a", "c"]


async def test_a_restarted_key_expires_by_its_latest_start() -> None:
    deadlines: Deadlines[str] = Deadlines(0.2)
    expired: list[tuple[str, float]] = []
    done = anyio.Event()

    def expire(key: str) -> None:
        expired.append((key, anyio.current_time()))
        done.set()

    async with anyio.create_task_group() as tg:
        tg.start_soon(deadlines.run, expire)
        deadlines.start("a", 0)
        await anyio.sleep(0.1)
        restarted = anyio.current_time()
        deadlines.start("a", 1)  # its first deadline no longer counts
        with anyio.fail_after(5):
            await done.wait()
        await anyio.sleep(0.25)  # time for a second expiry to show
        tg.cancel_scope.cancel()
    [(key, when)] = expired
    assert key == "a" and when >= restarted + 0.2
