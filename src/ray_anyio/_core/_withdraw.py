"""Withdrawals: taking registrations back from Ray, now or on the background lane.

Withdrawing a registration costs Ray a little and runs its callback once
more; a cancelled call over many refs would pay that on the loop thread, so
large sets go to the background lane (:mod:`._threads`) and the call returns
at once. The lane also frees the call's bookkeeping, in the same gated job:
freeing refs on a thread while ``ray.shutdown`` runs would end the process.
"""

from __future__ import annotations

from collections.abc import Collection
from functools import partial

from . import _ray, _threads
from ._readiness import Withdraw

#: Up to this many registrations are withdrawn on the loop thread when a call
#: ends; more go to the background lane.
INLINE_WITHDRAW_MAX = 512


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
    if withdraws and len(withdraws) <= inline_max:
        _threads.gated(session, partial(_call_all, withdraws), _ignore)()
        withdraws = ()
    if withdraws or drop is not None:
        job = partial(_call_all, withdraws, drop)
        del withdraws, drop
        _threads.BACKGROUND.submit(_threads.gated(session, job, _ignore))


def drop_later(obj: object, size: int) -> None:
    """Free ``obj``, a structure of ``size`` items, on the lane if it is large.

    A cancelled call hands over the per-ref bookkeeping it no longer needs,
    so that freeing it does not delay the cancellation. The caller must drop
    its own reference right after.
    """
    if size > INLINE_WITHDRAW_MAX:
        withdraw((), _ray.session(), drop=obj)


def withdrawals_pending() -> int:
    """Withdrawal jobs handed to the background lane and not finished yet."""
    return _threads.BACKGROUND.pending()


def wait_withdrawn(timeout: float) -> bool:
    """Block until everything handed over is withdrawn; False on timeout."""
    return _threads.BACKGROUND.wait_idle(timeout)


def _call_all(withdraws: Collection[Withdraw], drop: object = None) -> None:
    for undo in withdraws:
        undo()


def _ignore() -> None:
    """Nothing to withdraw from a session that has gone."""
