"""An item's result: its value, or the exception that takes its place."""

from __future__ import annotations

from typing import Any

from . import _ray


class Outcome:
    """A value, or the exception that takes its place."""

    __slots__ = ("error", "value")

    def __init__(self, value: Any = None, error: Exception | None = None) -> None:
        self.value = value
        self.error = error

    def unwrap(self) -> Any:
        """Return the value or raise the error."""
        if self.error is not None:
            raise self.error
        return self.value


def as_value(exc: Exception) -> Exception:
    """``exc`` as an item's result (``return_exceptions``); raised if Ray is gone.

    Ray not running is no item's failure, and no later item would fare better.
    """
    if not _ray.ray_is_running():
        raise exc
    return exc
