"""Cancelling Ray tasks: politely, then by force once ``cancel_timeout`` passes.

A polite ``ray.cancel`` is a ``KeyboardInterrupt``, which the workers of a Ray
started from a shell that ignores SIGINT (a background job) ignore too. Ray
refuses ``force`` for actor tasks: those are left running, with a warning
(killing the actor would end every other call on it too).
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from typing import TYPE_CHECKING, Any, TypeVar

import anyio

from . import _ray
from ._log import logger
from ._readiness import split_ready
from ._reports import watch_all

if TYPE_CHECKING:
    import ray

    Ref = ray.ObjectRef[Any]

T = TypeVar("T")

#: Seconds to wait for tasks cancelled by force to stop, on top of
#: ``cancel_timeout``.
FORCED_GRACE = 1.0


async def cancel_tasks(
    refs: Sequence[Ref],
    *,
    force: bool,
    cancel_timeout: float | None,
    cancelled: Sequence[Ref] = (),
) -> None:
    """Cancel the tasks behind ``refs`` (one ref per task) that have not finished.

    ``cancelled`` are refs of tasks already asked to stop (Serve's
    ``response.cancel()``): waited for with the rest, not cancelled again at
    once. A second ``ray.cancel`` is recursive too: arriving while the task's
    cleanup runs, it would cancel the calls that cleanup has just made.

    Waits, shielded, at most ``cancel_timeout`` seconds for them to stop, then
    forces what still runs and waits at most ``FORCED_GRACE`` more. Returns at
    once if Ray is not running: the tasks went with it.
    """
    if not _ray.ray_is_running():
        return
    _, unfinished = split_ready([*refs, *cancelled], fetch_local=False)
    if not unfinished:
        return
    asked = set(cancelled)
    cancel_now([ref for ref in unfinished if ref not in asked], force=force)
    if cancel_timeout == 0:
        return
    with anyio.CancelScope(shield=True):
        with anyio.move_on_after(cancel_timeout):
            await watch_all(unfinished)
            return
        if force or not _ray.ray_is_running():
            return
        _, still = split_ready(unfinished, fetch_local=False)
        left = cancel_now(still, force=True)
        forced = [ref for ref in still if all(ref is not other for other in left)]
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


def cancel_now(targets: Iterable[T], *, force: bool = False) -> list[T]:
    """``ray.cancel`` each target (a ref or a streaming generator), without waiting.

    An actor task (Ray only cancels those politely) gets ``force=False`` and is
    returned; a task that raced to its end, or a gone Ray, is no error (logged
    at DEBUG). Not a checkpoint; never raises.
    """
    if not _ray.ray_is_running():
        return []
    not_forced: list[T] = []
    for target in targets:
        try:
            try:
                _ray.cancel(target, force=force)
            except ValueError:
                if not force:
                    raise
                _ray.cancel(target, force=False)  # an actor task
                not_forced.append(target)
        except Exception as exc:
            logger.debug("ray.cancel failed: %r", exc)
    return not_forced
