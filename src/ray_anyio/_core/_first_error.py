"""A task group whose first failure is raised as itself, not in an ExceptionGroup.

So a caller of `get`, `wait`, `as_completed` or `map` can write ``except
ValueError`` exactly as around ``ray.get``.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from types import TracebackType
from typing import Any

import anyio
from anyio.abc import TaskGroup


class FirstErrorGroup:
    """Run tasks together; the first exception cancels the rest and is re-raised.

    Later failures are added to the first as notes. A ``BaseException`` that
    is not a cancellation (``KeyboardInterrupt``...) wins over a failure and
    is raised on its own, the failure added as a note. Cancellation is
    left to AnyIO.
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
        except BaseException as raised:
            error, self._error = self._error, None
            fatal = _not_cancelled(raised)
            if fatal is None:
                if error is not None:
                    raise error from None
                raise
            if error is not None:
                add_note(fatal, f"raised while a task had failed with {error!r}")
            if fatal is raised:
                raise
            raise fatal from None
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
        elif exc is not self._error:
            add_note(self._error, f"another task failed too: {exc!r}")
        self._tg.cancel_scope.cancel()


def _not_cancelled(exc: BaseException) -> BaseException | None:
    """``exc`` without its cancellations (a lone one unwrapped), or None."""
    cancelled = anyio.get_cancelled_exc_class()
    if not _is_group(exc):
        return None if isinstance(exc, cancelled) else exc
    _, rest = exc.split(cancelled)  # type: ignore[attr-defined]
    while rest is not None and _is_group(rest) and len(rest.exceptions) == 1:
        rest = rest.exceptions[0]
    return rest  # type: ignore[no-any-return]


def _is_group(exc: BaseException) -> bool:
    # By shape: on Python 3.10 the groups are the exceptiongroup backport's.
    return isinstance(getattr(exc, "exceptions", None), tuple) and hasattr(exc, "split")


def add_note(exc: BaseException, note: str) -> None:
    """``exc.add_note(note)``, also on 3.10 (shown via the exceptiongroup backport)."""
    if hasattr(exc, "add_note"):
        exc.add_note(note)
    else:
        exc.__notes__ = [*getattr(exc, "__notes__", ()), note]  # type: ignore[attr-defined]
