"""``run_until_complete``: a fresh loop of the chosen backend."""

from __future__ import annotations

import asyncio
import inspect

import pytest
import ray

import ray_anyio


@pytest.mark.parametrize("backend", ["asyncio", "trio"])
def test_runs_get_on_backend(backend: str) -> None:
    seen: list[str] = []

    async def main() -> int:
        import sniffio

        seen.append(sniffio.current_async_library())
        return int(await ray_anyio.get(ray.put(41))) + 1

    assert ray_anyio.run_until_complete(main(), backend=backend) == 42
    assert seen == [backend]


def test_default_backend_is_asyncio() -> None:
    async def which() -> bool:
        return asyncio.get_running_loop() is not None

    assert ray_anyio.run_until_complete(which()) is True


def test_backend_options_are_passed() -> None:
    async def debug() -> bool:
        return asyncio.get_running_loop().get_debug()

    assert ray_anyio.run_until_complete(debug(), backend_options={"debug": True})


def test_exception_propagates() -> None:
    async def broken() -> None:
        raise KeyError("inside")

    with pytest.raises(KeyError, match="inside"):
        ray_anyio.run_until_complete(broken(), backend="trio")


def test_bad_backend_closes_the_coroutine() -> None:
    coro = ray_anyio.get(ray.put(1))
    with pytest.raises(ValueError, match="backend"):
        ray_anyio.run_until_complete(coro, backend="curio")
    # Closed, so no "coroutine was never awaited" warning when it is collected.
    assert inspect.getcoroutinestate(coro) == inspect.CORO_CLOSED


def test_not_awaitable() -> None:
    with pytest.raises(TypeError, match="awaitable"):
        ray_anyio.run_until_complete(42)  # type: ignore[arg-type]
