"""Limits on starts: at most ``per_second`` starts in any one-second window.

A limiter on starts, as aiometer's: starts are spaced by at least a
``1 / per_second`` of a second, measured from the previous start itself (not
from when it was due), so any ``per_second + 1`` starts span more than one
second and a late start never lets two through at once.
"""

from __future__ import annotations

import math

import anyio
import anyio.lowlevel

# Spacing is a hair over 1/per_second so that rounding can never fit one
# start too many into a window.
_MARGIN = 1 + 1e-9


class StartLimiter:
    """Waits before each start so that starts keep to the rate."""

    __slots__ = ("_interval", "_last")

    def __init__(self, per_second: float) -> None:
        self._interval = _MARGIN / per_second
        self._last = -math.inf

    async def wait(self) -> None:
        """Return when the next start may happen; record it as started then.

        A checkpoint; cancellation records nothing.
        """
        due = self._last + self._interval
        if due > anyio.current_time():
            await anyio.sleep_until(due)
        else:
            await anyio.lowlevel.checkpoint()
        self._last = anyio.current_time()
