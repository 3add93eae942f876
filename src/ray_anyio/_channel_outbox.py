"""Items sent ahead on credit leave a process in batches, from one thread.

A sender the channel has made room for puts items into its outbox and
returns. The outbox goes to the actor in one call when it holds ``FLUSH_AT``
items (from the sending thread), before the sender waits for an answer or
closes, and otherwise ``FLUSH_DELAY`` seconds after its first item, from the
thread of the ``FLUSHES`` lane, which exits once nothing is left to flush.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable

from ._core import _ray
from ._core._threads import Lane, gated

#: Items an outbox holds before the sending thread sends it itself.
FLUSH_AT = 1024
#: Seconds an item waits at most in an outbox, on an idle sender.
FLUSH_DELAY = 0.002
#: The one lane of delayed flushes: a single long job at a time.
FLUSHES = Lane("channel-flushes", 1)

_cond = threading.Condition()
_pending: list[tuple[float, object, Callable[[], None]]] = []
_running = False


def flush_soon(flush: Callable[[], None]) -> None:
    """Call ``flush`` within ``FLUSH_DELAY`` seconds, on the lane's thread."""
    global _running
    with _cond:
        _pending.append((time.monotonic() + FLUSH_DELAY, _ray.session(), flush))
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
            due = [entry for entry in _pending if entry[0] <= time.monotonic()]
            del _pending[: len(due)]
        for _, session, flush in due:
            gated(session, flush, _nothing)()
        del due


def _nothing() -> None:
    return None
