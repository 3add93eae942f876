"""Withdraw registrations from Ray off the loop thread when there are many.

Withdrawing one readiness callback costs Ray about a microsecond and runs our
callback once more (with a "cancelled" error that the watcher ignores). For a
cancelled ``get`` over 10,000 pending refs that is over 10 ms on the loop
thread, so large sets go to one short-lived background thread instead and the
cancelled call returns at once. The thread exits when it has nothing to do.
"""

from __future__ import annotations

import _thread
import threading
from collections import deque
from collections.abc import Callable, Collection
from typing import Any

import ray

#: Up to this many registrations are withdrawn inline.
INLINE_MAX = 512

_lock = threading.Condition()
_queue: deque[tuple[Collection[Callable[[], None]], object, object]] = deque()
_pending = 0
_running = False


def current_session() -> object:
    """The Ray session that registrations made now belong to (None if none)."""
    if not ray.is_initialized():
        return None
    worker: Any = ray._private.worker.global_worker
    return getattr(worker, "core_worker", None)


def _still_current(session: object) -> bool:
    # Withdrawing from a Ray that has shut down (or been restarted) would call
    # into a core worker that no longer exists: it ends the process.
    return session is not None and current_session() is session


def withdraw(
    cancels: Collection[Callable[[], None]],
    session: object,
    *,
    inline_max: int = INLINE_MAX,
    drop: object = None,
) -> None:
    """Call every function in ``cancels``: now if few, soon on a thread if many.

    ``session`` is :func:`current_session` as it was when the registrations
    were made; if Ray has shut down since, they died with it and nothing is
    called. A call that goes to the thread takes ``drop`` (bookkeeping of the
    same call) along, to be freed there; the caller must drop its own
    reference right after.
    """
    if not _still_current(session):
        return
    if len(cancels) <= inline_max:
        for cancel in cancels:
            cancel()
        return
    _hand_over(cancels, session, drop)


def drop_later(obj: object, size: int) -> None:
    """Free ``obj``, a structure of ``size`` items, on the thread if it is large.

    A cancelled call hands over the per-ref bookkeeping it no longer needs,
    so that freeing it does not delay the cancellation (for 10,000 refs that
    is a few hundred microseconds). The caller must drop its own reference
    right after.
    """
    if size > INLINE_MAX:
        _hand_over((), None, obj)


def _hand_over(
    cancels: Collection[Callable[[], None]], session: object, drop: object
) -> None:
    global _pending, _running
    with _lock:
        _queue.append((cancels, session, drop))
        _pending += len(cancels)
        if not _running:
            _running = True
            # The low-level start: ``threading.Thread.start`` would also wait
            # until the new thread has run (and taken the GIL), which costs
            # the cancelled call a few hundred microseconds.
            _thread.start_new_thread(_run, ())


def pending() -> int:
    """Registrations handed to the thread and not withdrawn yet."""
    with _lock:
        return _pending


def wait_idle(timeout: float) -> bool:
    """Block until everything handed over is withdrawn; False on timeout."""
    with _lock:
        return _lock.wait_for(lambda: _pending == 0, timeout)


def _run() -> None:
    global _pending, _running
    while True:
        with _lock:
            if not _queue:
                _running = False
                return
            cancels, session, dropped = _queue.popleft()
        if cancels and _still_current(session):
            for cancel in cancels:
                cancel()
        with _lock:
            _pending -= len(cancels)
            if _pending == 0:
                _lock.notify_all()
        # Free here, outside the lock.
        del cancels, session, dropped
