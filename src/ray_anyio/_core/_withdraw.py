"""Withdrawals: taking registrations back from Ray, now or on the background lane.

Withdrawing a registration costs Ray a little and runs its callback once
more; a cancelled call over many refs would pay that on the loop thread, so
large sets go to the background lane (:mod:`._threads`) and the call returns
at once. The lane also frees the call's bookkeeping, inside the gate: freeing
refs on a thread while ``ray.shutdown`` runs would end the process.
"""

from __future__ import annotations

import threading
from collections.abc import Collection

from . import _ray, _threads
from ._readiness import Withdraw

#: Up to this many registrations are withdrawn on the loop thread when a call
#: ends; more go to the background lane.
INLINE_WITHDRAW_MAX = 512

_withdrawing = 0
_withdrawing_cond = threading.Condition()


def withdraw(
    withdraws: Collection[Withdraw],
    session: object,
    *,
    inline_max: int = INLINE_WITHDRAW_MAX,
    drop: object = None,
) -> None:
    """Call every withdrawal: now if few, else soon on the background lane.

    ``session`` is the one the registrations were made in: if Ray has shut
    down since, they died with it and nothing is called. A hand-over to the
    lane takes ``drop`` (bookkeeping of the same call) along, to be freed
    there; the caller must drop its own reference right after.
    """
    if not withdraws and drop is None:
        return
    if len(withdraws) <= inline_max:
        with _ray.GATE.using(session) as live:
            if live:
                for undo in withdraws:
                    undo()
        if drop is None:
            return
        withdraws = ()
    _hand_over(withdraws, session, drop)


def drop_later(obj: object, size: int) -> None:
    """Free ``obj``, a structure of ``size`` items, on the lane if it is large.

    A cancelled call hands over the per-ref bookkeeping it no longer needs,
    so that freeing it does not delay the cancellation. The caller must drop
    its own reference right after.
    """
    if size > INLINE_WITHDRAW_MAX:
        _hand_over((), _ray.session(), obj)


def _hand_over(withdraws: Collection[Withdraw], session: object, drop: object) -> None:
    global _withdrawing
    count = len(withdraws)
    with _withdrawing_cond:
        _withdrawing += count

    def job() -> None:
        global _withdrawing
        nonlocal withdraws, drop
        try:
            # Freeing ObjectRefs calls into Ray too: both inside the gate.
            with _ray.GATE.using(session) as live:
                if live:
                    for undo in withdraws:
                        undo()
                del withdraws, drop
        finally:
            with _withdrawing_cond:
                _withdrawing -= count
                _withdrawing_cond.notify_all()

    _threads.BACKGROUND.submit(job)


def withdrawals_pending() -> int:
    """Registrations handed to the lane and not withdrawn yet."""
    with _withdrawing_cond:
        return _withdrawing


def wait_withdrawn(timeout: float) -> bool:
    """Block until everything handed over is withdrawn; False on timeout."""
    with _withdrawing_cond:
        return _withdrawing_cond.wait_for(lambda: _withdrawing == 0, timeout)
