"""The fetch: the one place values come back from Ray (batched ``ray.get``).

Ready refs are fetched at once, the others in batches as Ray reports them
ready *in this node's store*, so a fetch never waits for a transfer. A batch
that is large, in refs or in bytes, goes to the fetch lane in pieces. A lone
ref is :mod:`._single`'s.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from functools import partial
from typing import TYPE_CHECKING, Any, TypeVar

from ray.exceptions import GetTimeoutError

from . import _ray, _threads
from ._multimap import MultiMap
from ._outcome import Outcome, as_value
from ._readiness import split_ready
from ._reports import watch_all
from ._withdraw import drop_later

if TYPE_CHECKING:
    import ray

    Ref = ray.ObjectRef[Any]

R = TypeVar("R")

#: Batches of at most this many refs *and* ``INLINE_FETCH_BYTES`` bytes are
#: fetched on the loop thread; the others go to the fetch lane, so that
#: deserialising them does not stall the loop.
INLINE_FETCH_MAX = 1024
#: Pure-Python values unpickle at a few hundred MB/s on one core: 256 KiB is
#: about a millisecond of the loop, a thread hop a tenth of that. Arrays are
#: not unpickled at all, but their size alone cannot tell them apart.
INLINE_FETCH_BYTES = 256 * 1024
#: Largest ``ray.get`` of the fetch lane, in refs and in bytes (a larger value
#: is a piece of its own): Ray deserialises a piece with the GIL held, so a
#: piece bounds how long a cancellation or ``ray.shutdown`` waits for the lane.
THREAD_CHUNK = 500
PIECE_BYTES = 4 * 1024 * 1024

_MISSING: Any = object()


def _get_ready_now(refs: list[Ref]) -> tuple[list[Any], list[Ref]]:
    """Values of the refs that are local now (``_MISSING`` for the others)."""
    try:
        return _ray.get(refs, timeout=0), []
    except GetTimeoutError:
        pass
    distinct = list(dict.fromkeys(refs))
    ready, pending = split_ready(distinct, fetch_local=True)
    values = dict(zip(ready, _ray.get(ready), strict=True)) if ready else {}
    return [values.get(ref, _MISSING) for ref in refs], pending


def _get(refs: list[Ref]) -> list[Any]:
    values: list[Any] = _ray.get(refs)
    return values


async def _in_chunks(refs: Sequence[Ref], fn: Callable[[list[Ref]], R]) -> list[R]:
    """``[fn(piece) ...]``: inline if ``refs`` is small, else on the fetch lane.

    Small means few refs, and few bytes in those that are here now (those not
    here are not fetched by ``fn`` now: a batch of them, once reported, comes
    back through here). One lane job for all the pieces, each a gated call of
    its own, so that ``ray.shutdown`` waits for one piece at most and a
    cancelled call stops the job between two pieces.
    """
    known = _ray.objects()
    if (
        len(refs) <= INLINE_FETCH_MAX
        and known is not None
        and not known.exceeds(refs, INLINE_FETCH_BYTES)
    ):
        return [fn(list(refs))]
    session, count = _ray.session(), len(refs)
    held = [refs]  # the job holds the refs only through this, to drop them gated
    stopped: list[bool] = []

    def job() -> list[R]:
        results: list[R] = []
        start = 0
        try:
            while start < count and not stopped:
                piece = partial(_piece, held, start, fn)
                result, start = _threads.gated(session, piece)()
                results.append(result)
        finally:
            _threads.gated(session, held.clear, held.clear)()
        return results

    return await _threads.run(_threads.FETCH, job, partial(stopped.append, True))


def _piece(
    held: list[Sequence[Ref]], start: int, fn: Callable[[list[Ref]], R]
) -> tuple[R, int]:
    """``fn`` of the piece at ``start``, and where the next piece starts."""
    # The piece's list is made and freed here, inside the gate.
    refs = held[0][start : start + THREAD_CHUNK]
    count = _fitting(refs)
    return fn(list(refs[:count])), start + count


def _fitting(refs: Sequence[Ref]) -> int:
    """How many of ``refs``, from the first, make a piece (at least one)."""
    known = _ray.objects()
    if known is None or not _ray.HAS_OBJECT_SIZES:
        return len(refs)
    if not known.exceeds(refs, PIECE_BYTES):
        return len(refs)
    total, count = 0.0, 0
    for size in known.sizes(refs):
        total += size
        if count and total > PIECE_BYTES:
            break
        count += 1
    return count


async def get_values(refs: Sequence[Ref]) -> list[Any]:
    """``ray.get`` of refs that Ray reported ready: the one batched fetch."""
    values: list[Any] = []
    for part in await _in_chunks(refs, _get):
        values.extend(part)
    return values


async def fetch(refs: Sequence[Ref]) -> list[Any]:
    """Return the values of ``refs`` in order, as ``ray.get(list(refs))`` would.

    A checkpoint only when something has to be waited for or fetched off the
    loop. Cancellation withdraws every registration and returns promptly (a
    chunk being deserialised on the fetch lane is finished first).

    Raises:
        Exception: the error of the first failed ref, as ``ray.get`` raises it.
        ray.exceptions.RaySystemError: Ray is not running.
    """
    parts = await _in_chunks(refs, _get_ready_now)
    if len(parts) == 1:
        values, pending = parts[0]
    else:
        values, pending = [], []
        for part_values, part_pending in parts:
            values.extend(part_values)
            pending.extend(part_pending)
    if not pending:
        return values
    # Free what is not needed while waiting: a cancelled call frees its
    # frame inside the cancellation (on trio, before the scope exits).
    del parts, pending
    positions: MultiMap[Ref, int] = MultiMap()
    for index, value in enumerate(values):
        if value is _MISSING:
            positions.add(refs[index], index)

    async def take(batch: list[Ref]) -> None:
        positions.fill(values, batch, await get_values(batch))

    try:
        # The map itself, not a list of its refs: nothing the size of the call
        # is left to free on the loop thread when it is cancelled.
        await watch_all(
            positions, fetch_local=True, grouped=True, coalesce=True, on_batch=take
        )
    except BaseException:
        # Cancelled or failed: let the background lane free the map.
        drop_later(positions, len(positions))
        del positions
        raise
    return values


async def fetch_outcomes(
    refs: Sequence[Ref], *, reported: bool = False
) -> list[Outcome]:
    """Fetch the values of ``refs``, keeping each failure at its own position.

    ``reported``: Ray has reported every ref ready. If the batched fetch
    fails, each ref is fetched alone.

    Raises:
        ray.exceptions.RaySystemError: Ray is not running.
    """
    try:
        values = await (get_values(refs) if reported else fetch(refs))
        return [Outcome(value) for value in values]
    except Exception as exc:
        as_value(exc)
    outcomes = []
    for ref in refs:
        # A batch of one, through this module's own watcher if it is not here
        # (a reported copy can be evicted): never through a loop's hub, whose
        # leader may be the caller.
        try:
            outcomes.append(Outcome((await fetch([ref]))[0]))
        except Exception as exc:
            outcomes.append(Outcome(error=as_value(exc)))
    return outcomes
