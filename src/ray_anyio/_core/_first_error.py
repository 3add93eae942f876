"""A task group whose first failure is raised as itself, not in an ExceptionGroup.

The one base for blocks that run tasks beside their body (`get` of a
structure, `wait`, `as_completed`, `map`): a failing item, or the body,
raises its own exception, so a caller can write ``except ValueError`` exactly
as around ``ray.get``; trio and AnyIO task groups would wrap it.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from types import TracebackType
from typing import Any

import anyio
from anyio.abc import TaskGroup


class FirstErrorGroup:
    """Run tasks together; the first exception cancels the rest and is re-raised.

    ``get`` and ``wait`` promise to raise a failing item's own exception, so a
    caller can write ``except ValueError`` exactly as around ``ray.get``.
    Cancellation (and other ``BaseException``) is left to AnyIO untouched.
    """

    def __init__(self) -> None:
        self._tg: TaskGroup = anyio.create_task_group()
        self._error: Exception | None = None

    async def __aenter__(self) -> FirstErrorGroup:
        await self._tg.__aenter__()
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> bool:
        if isinstance(exc, Exception):
            self._fail(exc)
            exc_type = exc = tb = None
        try:
            suppressed = await self._tg.__aexit__(exc_type, exc, tb)
        finally:
            if self._error is not None:
                error, self._error = self._error, None
                raise error
        return bool(suppressed)

    def start_soon(self, fn: Callable[..., Awaitable[Any]], *args: Any) -> None:
        """Start ``fn(*args)`` in the group; its exception fails the group."""
        self._tg.start_soon(self._guard, fn, *args)

    def cancel(self) -> None:
        """Cancel every task of the group (and the body of the ``async with``)."""
        self._tg.cancel_scope.cancel()

    async def _guard(self, fn: Callable[..., Awaitable[Any]], *args: Any) -> None:
        try:
            await fn(*args)
        except Exception as exc:
            self._fail(exc)

    def _fail(self, exc: Exception) -> None:
        if self._error is None:
            self._error = exc
        self._tg.cancel_scope.cancel()
