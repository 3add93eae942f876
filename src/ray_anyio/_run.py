"""``run_until_complete``: the seed document's entry point, on any backend."""

from __future__ import annotations

from collections.abc import Awaitable
from typing import Any, TypeVar

import anyio

from ._core._awaitables import discard

T = TypeVar("T")

_BACKENDS = ("asyncio", "trio")


def run_until_complete(
    awaitable: Awaitable[T],
    *,
    backend: str = "asyncio",
    backend_options: dict[str, Any] | None = None,
) -> T:
    """Run ``awaitable`` on a fresh event loop of ``backend`` and return its result.

    The old ``async_api.run_until_complete``'s counterpart, for any awaitable.
    It blocks the calling thread: call it from synchronous code only (it
    raises ``RuntimeError`` inside a running event loop).

    Raises:
        TypeError: ``awaitable`` is not awaitable.
        ValueError: ``backend`` is not ``"asyncio"`` or ``"trio"``.
        Exception: whatever the awaitable raises.

    Example::

        value = ray_anyio.run_until_complete(ray_anyio.get(ref), backend="trio")
    """
    if not hasattr(awaitable, "__await__"):
        raise TypeError(
            f"awaitable must be a coroutine or another awaitable, got "
            f"{type(awaitable).__name__}"
        )
    if backend not in _BACKENDS:
        discard(awaitable)  # never awaited now: no "never awaited" warning later
        raise ValueError(
            f"backend must be one of {_BACKENDS}, got {backend!r}; "
            "install trio for backend='trio'"
        )

    async def main() -> T:
        return await awaitable

    return anyio.run(main, backend=backend, backend_options=backend_options)
