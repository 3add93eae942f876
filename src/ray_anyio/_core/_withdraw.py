"""Withdrawals: taking registrations back from Ray, now or on the background lane.

Each withdrawal costs Ray a little and runs its callback once more, so large
sets go to the background lane and a cancelled call returns at once. The lane
frees the call's bookkeeping in the same gated job (see ``_threads.gated``).
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

    Nothing is called if ``session``, the registrations', has gone. A hand-over
    takes ``drop`` (the call's bookkeeping) along, to be freed on the lane; the
    caller must drop its own reference right after.
    """
    if withdraws and len(withdraws) <= inline_max:
        _threads.gated(session, partial(_call_all, withdraws), _ignore)()
        withdraws = ()
    if withdraws or drop is not None:
        job = partial(_call_all, withdraws, drop)
        del withdraws, drop
        _threads.BACKGROUND.submit(_threads.gated(session, job, _ignore))


def drop_later(obj: object, size: int) -> None:
    """Free ``obj`` (``size`` items) on the lane if large; then drop your own ref.

    So freeing a cancelled call's bookkeeping does not delay the cancellation.
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
