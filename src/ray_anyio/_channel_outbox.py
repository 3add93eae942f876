"""Items sent on credit leave a process in batches, from one thread.

A sender the channel has made room for puts items into its outbox and
returns. The outbox goes to the actor in one call when it holds ``FLUSH_AT``
items (from the sending thread), before the sender waits for an answer or
closes, and otherwise ``FLUSH_DELAY`` seconds after its first item, from the
thread of the ``FLUSHES`` lane, which exits once nothing is left to flush.

A sender that is busy at that moment (its outbox already a quarter full)
will most likely fill it itself: the thread asks it once more
``FLUSH_DELAY`` seconds later and then flushes whatever is there. Each call
costs the channel's actor about a millisecond of CPU, so a fast sender sends
fewer, fuller calls; a slow one still waits at most ``FLUSH_DELAY``.
"""

from __future__ import annotations

import bisect
import itertools
import threading
import time
from collections.abc import Callable
from functools import partial

from ._core import _ray
from ._core._threads import Lane, gated

#: Items an outbox holds before the sending thread sends it itself.
FLUSH_AT = 4096
#: Seconds an item waits in an outbox before the thread looks at it (and
#: flushes it, unless its sender is busy: then as long again, at most).
FLUSH_DELAY = 0.002
#: The one lane of delayed flushes: a single long job at a time.
FLUSHES = Lane("channel-flushes", 1)

#: ``flush(last)``: flushes and returns True, or returns False (only when
#: ``last`` is False) to be asked again, with ``last`` True, a delay later.
Flush = Callable[[bool], bool]

_cond = threading.Condition()
#: (due, order, session, flush, last), sorted by due time.
_pending: list[tuple[float, int, object, Flush, bool]] = []
_order = itertools.count()
_running = False


def flush_soon(flush: Flush) -> None:
    """Call ``flush(False)`` within ``FLUSH_DELAY`` seconds, on the lane's thread."""
    _add(time.monotonic() + FLUSH_DELAY, _ray.session(), flush, False)


def _add(due: float, session: object, flush: Flush, last: bool) -> None:
    global _running
    with _cond:
        bisect.insort(_pending, (due, next(_order), session, flush, last))
        if not _running:
            _running = True
            FLUSHES.submit(_flush_all)
        _cond.notify()


def _flush_all() -> None:
    global _running
    while True:
        with _cond:
            if not _pending:
                _cond.wait(1.0)
                if not _pending:
                    _running = False
                    return
            wait = _pending[0][0] - time.monotonic()
            if wait > 0:
                _cond.wait(wait)
                continue
            now = time.monotonic()
            count = bisect.bisect_right(_pending, (now, float("inf")))
            due = _pending[:count]
            del _pending[:count]
        for _, _, session, flush, last in due:
            if not gated(session, partial(flush, last), _done)():
                _add(time.monotonic() + FLUSH_DELAY, session, flush, True)
        del due


def _done() -> bool:
    return True
