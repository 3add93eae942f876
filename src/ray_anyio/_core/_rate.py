"""Limits on starts: at most ``per_second`` starts in any one-second window.

Starts are spaced by ``1 / per_second`` s from the previous start itself (not
from when it was due), so a late start never lets two through at once.
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

    __slots__ = ("_interval", "_last", "_turn")

    def __init__(self, per_second: float) -> None:
        self._interval = _MARGIN / per_second
        self._last = -math.inf
        self._turn = anyio.Lock(fast_acquire=True)

    async def wait(self) -> None:
        """Record a start when it may happen; a checkpoint (cancelled: no record).

        Several tasks may wait (``map``'s feeder and its retries): they take
        turns, first come first served, each spaced from the start before it.
        """
        async with self._turn:
            due = self._last + self._interval
            if due > anyio.current_time():
                await anyio.sleep_until(due)
            else:
                await anyio.lowlevel.checkpoint()
            self._last = anyio.current_time()
