"""Withdrawals: many registrations go to the background lane, and all come back."""

from __future__ import annotations

from functools import partial
from typing import Any

import anyio
import pytest

import ray_anyio
from ray_anyio._core import _withdraw
from ray_anyio.testing import live_registrations

pytestmark = pytest.mark.anyio


async def test_cancelling_many_registrations_withdraws_them_all(gate: Any) -> None:
    refs = [gate.value_after(i) for i in range(_withdraw.INLINE_WITHDRAW_MAX * 2)]
    with anyio.move_on_after(30) as scope:
        async with anyio.create_task_group() as tg:
            # ``wait`` registers every ref (``get`` would group them).
            tg.start_soon(partial(ray_anyio.wait, refs, num_returns=len(refs)))
            while live_registrations() < len(refs):
                await anyio.sleep(0.01)
            tg.cancel_scope.cancel()
    assert not scope.cancelled_caught
    assert _withdraw.wait_withdrawn(10)
    assert live_registrations() == 0
