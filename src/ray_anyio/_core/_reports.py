"""Taking reports: the one loop over a watcher's batches, for every verb."""

from __future__ import annotations

import inspect
from collections.abc import Awaitable, Callable, Collection
from typing import TYPE_CHECKING, Any

import anyio

from ._watcher import Watcher

if TYPE_CHECKING:
    import ray

    Ref = ray.ObjectRef[Any]

#: When fewer refs than this are reported at once while more are pending,
#: :func:`take_reports` (with ``coalesce``) waits ``COALESCE_WINDOW`` seconds
#: for more before handing the batch on. The last refs are never delayed.
COALESCE_BELOW = 64
COALESCE_WINDOW = 0.010


async def take_reports(
    watcher: Watcher,
    on_batch: Callable[[list[Ref]], Awaitable[None] | None],
    *,
    until: Callable[[], bool] | None = None,
    coalesce: bool = False,
) -> None:
    """Hand each batch Ray reports to ``on_batch`` until ``until()`` is true.

    ``until`` is asked before every wait (``None``: until cancelled) and
    again after a :meth:`Watcher.poke`. ``coalesce`` gathers a trickle of
    reports for ``COALESCE_WINDOW`` seconds into one batch.

    A checkpoint; a report taken is handed on before the next cancellation is
    taken, except with ``coalesce`` (for callers that stop when cancelled).

    Raises:
        ray.exceptions.RaySystemError: Ray stopped the wait.
        Exception: what ``on_batch`` raised.
    """
    while until is None or not until():
        pending = watcher.pending()
        batch = await watcher.next_ready()
        if coalesce and len(batch) < min(COALESCE_BELOW, pending):
            await anyio.sleep(COALESCE_WINDOW)
            batch += watcher.take_arrived()
        if batch:
            result = on_batch(batch)
            if inspect.isawaitable(result):
                await result


async def watch_all(
    refs: Collection[Ref],
    *,
    fetch_local: bool = False,
    grouped: bool = False,
    coalesce: bool = False,
    on_batch: Callable[[list[Ref]], Awaitable[None] | None] | None = None,
) -> None:
    """Wait until Ray has reported every one of ``refs`` (distinct), once each.

    ``on_batch`` gets each batch as it comes. Cancellation withdraws every
    registration.

    Raises:
        ray.exceptions.RaySystemError: Ray stopped the wait.
        Exception: what ``on_batch`` raised.
    """
    if not refs:
        return
    with Watcher(fetch_local=fetch_local) as watcher:
        watcher.watch(refs, grouped=grouped)
        await take_reports(
            watcher,
            on_batch or _ignore,
            until=lambda: not watcher.pending(),
            coalesce=coalesce,
        )


def _ignore(batch: list[Ref]) -> None:
    """Reports that only count."""
