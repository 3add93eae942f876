"""Remote functions and actors the tests share."""

from __future__ import annotations

import asyncio
import time
from typing import Any

import ray


@ray.remote
def square(x: int) -> int:
    return x * x


@ray.remote
def sleep_then(seconds: float, value: Any) -> Any:
    time.sleep(seconds)
    return value


@ray.remote
def fail(message: str) -> None:
    raise ValueError(message)


@ray.remote(num_cpus=0)
class Gates:
    """Named events: calls block on a gate until a test opens it."""

    def __init__(self) -> None:
        self.events: dict[str, asyncio.Event] = {}
        self.counts: dict[str, int] = {}

    def _event(self, name: str) -> asyncio.Event:
        return self.events.setdefault(name, asyncio.Event())

    async def ping(self) -> bool:
        return True

    async def value_after(self, name: str, value: Any) -> Any:
        self.counts[name] = self.counts.get(name, 0) + 1
        try:
            await self._event(name).wait()
        finally:
            self.counts[name] -= 1
        return value

    async def fail_after(self, name: str, message: str) -> None:
        await self._event(name).wait()
        raise ValueError(message)

    async def open(self, name: str) -> None:
        self._event(name).set()

    async def waiting(self, name: str) -> int:
        return self.counts.get(name, 0)


@ray.remote(max_retries=0)
def crash() -> None:
    import os

    os._exit(1)


@ray.remote(num_cpus=0)
class Nested:
    """An async actor that uses ray_anyio inside Ray's own asyncio loop."""

    async def get_and_wait(self, refs: list[ray.ObjectRef]) -> tuple[list[Any], int]:
        import ray_anyio

        values = await ray_anyio.get(refs)
        ready, _ = await ray_anyio.wait(refs, num_returns=len(refs))
        return values, len(ready)
