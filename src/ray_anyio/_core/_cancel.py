"""Cancelling Ray tasks: politely, then by force once ``cancel_timeout`` passes.

A polite ``ray.cancel`` interrupts a running remote function with a
``KeyboardInterrupt``, which Python delivers through its SIGINT handling: when
the driver's Ray was started from a shell that ignores SIGINT (a background
job, most process managers), the workers inherit that and a polite cancel
does nothing. So whatever is still running after ``cancel_timeout`` is
cancelled again with ``force=True``, which kills the worker. Ray refuses
``force`` for actor tasks: those are left running, with a warning (killing
the actor would end every other call on it too).
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import TYPE_CHECKING, Any

import anyio

from . import _ray
from ._log import logger
from ._readiness import split_ready
from ._watcher import watch_all

if TYPE_CHECKING:
    import ray

    Ref = ray.ObjectRef[Any]

#: Seconds to wait for tasks cancelled by force to stop, on top of
#: ``cancel_timeout``.
FORCED_GRACE = 1.0


async def cancel_tasks(
    refs: Sequence[Ref], *, force: bool, cancel_timeout: float | None
) -> None:
    """Cancel the tasks behind ``refs`` (one ref per task) that have not finished.

    Waits, shielded from cancellation, at most ``cancel_timeout`` seconds
    (``None``: for ever) for them to stop; then cancels what still runs with
    ``force=True`` and waits at most ``FORCED_GRACE`` more. Returns at once
    if Ray is not running: the tasks went with it.
    """
    if not _ray.ray_is_running():
        return
    _, unfinished = split_ready(refs, fetch_local=False)
    if not unfinished:
        return
    for ref in unfinished:
        _cancel(ref, force=force)
    if cancel_timeout == 0:
        return
    with anyio.CancelScope(shield=True):
        with anyio.move_on_after(cancel_timeout):
            await watch_all(unfinished)
            return
        if force or not _ray.ray_is_running():
            return
        _, still = split_ready(unfinished, fetch_local=False)
        forced: list[Ref] = []
        left: list[Ref] = []
        for ref in still:
            (forced if _cancel(ref, force=True) else left).append(ref)
        if forced:
            logger.warning(
                "%d Ray task(s) ignored ray.cancel() for %s s and were cancelled "
                "with force=True (their workers were killed)",
                len(forced),
                cancel_timeout,
            )
        if left:
            logger.warning(
                "%d actor task(s) ignored ray.cancel() for %s s and are left "
                "running: Ray cannot force-cancel an actor task (ray.kill the "
                "actor to stop it)",
                len(left),
                cancel_timeout,
            )
        with anyio.move_on_after(FORCED_GRACE):
            await watch_all(forced)


def _cancel(ref: Ref, *, force: bool) -> bool:
    """``ray.cancel`` the task of ``ref``; False if it is an actor task."""
    try:
        _ray.cancel(ref, force=force)
    except ValueError:
        if not force:
            raise
        # An actor task: Ray allows only force=False.
        _ray.cancel(ref, force=False)
        return False
    return True


def cancel_now(refs: Sequence[Ref]) -> None:
    """Cancel (politely) the tasks of ``refs`` without waiting; Ray may be gone."""
    if not _ray.ray_is_running():
        return
    for ref in refs:
        try:
            _ray.cancel(ref, force=False)
        except Exception as exc:  # the task raced to its end, or Ray went
            logger.debug("ray.cancel failed: %r", exc)
