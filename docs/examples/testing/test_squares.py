"""An example test file for code that uses ray-anyio, run on asyncio and trio.

The ``ray_anyio`` pytest plugin (installed with the package) gives the
``ray_session`` fixture; AnyIO's plugin runs ``@pytest.mark.anyio`` tests on
each backend that ``anyio_backend`` names.
"""

from __future__ import annotations

import time
from typing import Any

import anyio
import pytest
import ray
from ray.exceptions import TaskCancelledError

import ray_anyio
from ray_anyio.testing import assert_nothing_left


@ray.remote
def square(x: int) -> int:
    return x * x


@ray.remote
def nap(seconds: float) -> float:
    for _ in range(int(seconds * 10)):
        time.sleep(0.1)  # short sleeps: a polite ray.cancel() stops the task
    return seconds


@pytest.fixture(params=["asyncio", "trio"])
def anyio_backend(request: pytest.FixtureRequest) -> Any:
    return request.param


@pytest.mark.anyio
async def test_map_squares(ray_session: Any) -> None:
    async with ray_anyio.map(square, range(10), max_in_flight=2) as results:
        assert [value async for value in results] == [x * x for x in range(10)]


@pytest.mark.anyio
async def test_a_deadline_cancels_the_task(ray_session: Any) -> None:
    with anyio.move_on_after(0.5):
        async with ray_anyio.open_scope(cancel_timeout=2) as scope:
            ref = scope.remote(nap, 60)
            await ray_anyio.get(ref)
    with pytest.raises(TaskCancelledError):
        await ray_anyio.get(ref)


@pytest.mark.anyio
async def test_a_cancelled_get_leaves_nothing(ray_session: Any) -> None:
    ref = nap.remote(60)
    with anyio.move_on_after(0.2):
        await ray_anyio.get(ref)
    assert_nothing_left()  # every registration with Ray was withdrawn
    ray.cancel(ref)
