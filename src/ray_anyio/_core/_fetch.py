"""The fetch: the one place values come back from Ray (batched ``ray.get``).

Refs that are ready are fetched at once; the others are watched
(:mod:`._watcher`) and fetched in batches as Ray reports them ready *in this
node's store*, so that a fetch never waits for a transfer from another node.
Batches too large to deserialise without stalling the loop are fetched on the
fetch lane (:mod:`._threads`) in chunks, one job for the whole batch, stopped
between chunks if the call is cancelled.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import TYPE_CHECKING, Any, TypeVar

from ray.exceptions import GetTimeoutError

from . import _hub, _ray, _threads
from ._positions import Positions
from ._readiness import split_ready
from ._watcher import watch_all
from ._withdraw import drop_later

if TYPE_CHECKING:
    import ray

    Ref = ray.ObjectRef[Any]

R = TypeVar("R")

#: Batches up to this size are fetched on the loop thread; larger ones go to
#: the fetch lane so that deserialising them does not stall the loop.
INLINE_FETCH_MAX = 1024
#: Largest ``ray.get`` the fetch lane makes at once. Ray turns a whole batch
#: into Python objects without giving up the GIL, so a chunk bounds how long
#: the loop thread can be kept waiting; between chunks a cancelled job stops.
THREAD_CHUNK = 500

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


class _Chunks:
    """A fetch-lane job: ``fn`` over the chunks of ``refs``, stoppable between them."""

    __slots__ = ("fn", "refs", "session", "stop")

    def __init__(self, refs: Sequence[Ref], fn: Callable[[list[Ref]], R]) -> None:
        self.refs = refs
        self.fn = fn
        self.session = _ray.session()
        self.stop = False

    def __call__(self) -> list[Any]:
        # Stopped early, the results are partial; only a cancelled call, which
        # never reads them, stops a job.
        results: list[Any] = []
        try:
            for start in range(0, len(self.refs), THREAD_CHUNK):
                if self.stop:
                    break
                # The gate is entered per chunk, so that ray.shutdown() waits
                # for one chunk at most.
                with _ray.GATE.using(self.session) as live:
                    if not live:
                        raise _ray.not_running()
                    chunk = list(self.refs[start : start + THREAD_CHUNK])
                    results.append(self.fn(chunk))
                    del chunk
        finally:
            with _ray.GATE.using(self.session):
                self.refs = ()  # refs are only ever freed inside the gate
        return results

    def halt(self) -> None:
        self.stop = True


async def _in_chunks(refs: Sequence[Ref], fn: Callable[[list[Ref]], R]) -> list[R]:
    """``[fn(chunk) ...]``: inline if ``refs`` is small, else on the fetch lane."""
    if len(refs) <= INLINE_FETCH_MAX:
        return [fn(list(refs))]
    job = _Chunks(refs, fn)
    return await _threads.run(_threads.FETCH, job, job.halt)


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
    positions = Positions()
    for index, value in enumerate(values):
        if value is _MISSING:
            positions.add(refs[index], index)

    async def take(batch: list[Ref]) -> None:
        positions.fill(values, batch, await get_values(batch))

    try:
        # The map itself, not a list of its refs: nothing the size of the call
        # is left to free on the loop thread when it is cancelled.
        await watch_all(
            positions,
            fetch_local=True,
            grouped=True,
            coalesce=True,
            on_batch=take,
        )
    except BaseException:
        # Cancelled or failed: let the background lane free the map.
        drop_later(positions, len(positions))
        del positions
        raise
    return values


async def fetch_one(ref: Ref) -> Any:
    """The value of one ref: at once if it is here, else through the loop's hub.

    Raises:
        Exception: the ref's error, as ``ray.get`` raises it.
    """
    # Asking the core worker costs well under a microsecond for a pending ref,
    # where a ray.get(timeout=0) raises (and costs a lot) first.
    is_local = _ray.local_check()
    if is_local is None:  # Ray Client: ask with a fetch that does not wait
        try:
            return _ray.get(ref, timeout=0)
        except GetTimeoutError:
            pass
    elif is_local(ref):
        return _ray.get(ref)
    return await _hub.current_hub().get(ref)


class Outcome:
    """A value, or the exception that takes its place."""

    __slots__ = ("error", "value")

    def __init__(self, value: Any = None, error: Exception | None = None) -> None:
        self.value = value
        self.error = error

    def unwrap(self) -> Any:
        """Return the value or raise the error."""
        if self.error is not None:
            raise self.error
        return self.value


def as_value(exc: Exception) -> Exception:
    """``exc`` as an item's result (``return_exceptions``), unless Ray is gone.

    Raises:
        Exception: ``exc`` itself when Ray is not running: that is no item's
            failure, and no later item would fare better.
    """
    if not _ray.ray_is_running():
        raise exc
    return exc


async def fetch_outcomes(
    refs: Sequence[Ref], *, reported: bool = False
) -> list[Outcome]:
    """Fetch the values of ``refs``, keeping each failure at its own position.

    ``reported``: Ray has reported every ref ready (nothing to wait for).

    One batched fetch when nothing failed; if something did, each ref is
    fetched alone so that every failure stays where it belongs (for iterators
    that hand results out one by one, and ``return_exceptions``).

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
        try:
            outcomes.append(Outcome(await fetch_one(ref)))
        except Exception as exc:
            outcomes.append(Outcome(error=as_value(exc)))
    return outcomes
