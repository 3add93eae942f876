"""The engine: learns from Ray when refs are ready and fetches them in batches.

Data path: a caller registers the refs that are not ready yet with a
:class:`Watcher`; Ray reports each one on its own callback thread; the watcher
queues it and wakes the loop once per burst (:mod:`._wakeup`); the task that
owns the watcher takes the whole burst with :meth:`Watcher.next_ready` and
fetches it with one batched ``ray.get`` (:func:`fetch`).

Where refs are registered: :meth:`Watcher.watch`. Where the batch ``ray.get``
happens: :func:`_get_batch`. Where the loop is woken: :meth:`Watcher._arrive`.
"""

from __future__ import annotations

import threading
from collections.abc import Callable, Iterable, Sequence
from typing import Any

import anyio
import ray
from ray.exceptions import GetTimeoutError

from ._groups import GROUP_FROM, Groups
from ._offload import run_chunks_in_thread
from ._shared_waiter import SHARED_WAITER
from ._wakeup import current_waker
from ._withdraw import current_session, drop_later, withdraw
from ._withdraw import pending as withdrawing

#: Fetch batches up to this size on the loop thread; larger ones go to a fetch
#: thread (:mod:`._offload`) so that deserialising them does not stall the loop.
INLINE_FETCH_MAX = 1024
#: Largest ``ray.get`` the fetch thread makes at once. Ray turns a whole
#: batch into Python objects without giving up the GIL, so a chunk bounds how
#: long the loop thread can be kept waiting (about 3.5 ms for 500 small values
#: on the reference machine); between chunks the thread stops if the call
#: was cancelled.
THREAD_CHUNK = 500

#: When fewer refs than this arrive at once while more are pending, ``fetch``
#: waits ``COALESCE_WINDOW`` seconds for more before fetching them. The last
#: refs of a call are never delayed.
COALESCE_BELOW = 64
COALESCE_WINDOW = 0.010

_MISSING: Any = object()


def _on_ready_supported() -> bool:
    return callable(getattr(ray.ObjectRef[Any], "_on_ready", None))


#: Whether Ray's per-ref readiness hook is used; when False every pending ref is
#: watched by the shared ``ray.wait`` thread (the public-API path).
USE_ON_READY = _on_ready_supported()

_open_watchers: set[Watcher] = set()
_open_watchers_lock = threading.Lock()


def live_registrations() -> int:
    """Registrations still held: refs of open watchers plus shared-waiter entries.

    Zero whenever no ``get``/``wait`` is in progress: the tests use it to show
    that a cancelled call leaves nothing behind.
    """
    with _open_watchers_lock:
        open_ = sum(len(w) for w in _open_watchers)
    # The shared waiter's entries belong to open watchers and are counted with
    # them; once no watcher is open it must hold nothing either.
    leftover = SHARED_WAITER.pending() if open_ == 0 else 0
    return open_ + leftover + withdrawing()


class Watcher:
    """Watches pending refs for one task and reports them ready in batches.

    Create it on the loop thread, use it from one task, and always
    :meth:`close` it (``with Watcher(...) as w``): closing withdraws every
    registration from Ray, so nothing stays behind after a cancellation.
    With ``fetch_local=True`` a ref is only reported once its object is in this
    node's object store, as ``ray.wait(fetch_local=True)`` would.
    """

    # No ``__dict__``: one object less per pending ``get(ref)`` for the
    # garbage collector to visit.
    __slots__ = (
        "_arrived",
        "_cancels",
        "_closed",
        "_event",
        "_failure",
        "_fetch_local",
        "_groups",
        "_lock",
        "_poked",
        "_session",
        "_waiting",
        "_wake",
        "_wake_scheduled",
    )

    def __init__(self, *, fetch_local: bool = False) -> None:
        self._wake = current_waker()
        self._fetch_local = fetch_local
        self._lock = threading.Lock()
        self._arrived: list[ray.ObjectRef[Any]] = []
        self._failure: BaseException | None = None
        self._wake_scheduled = False
        # Whether the owner is blocked in next_ready: only then does an
        # arrival wake the loop. Refs that arrive while it is busy (or
        # sleeping to coalesce a batch) are picked up without a wake-up.
        self._waiting = False
        self._closed = False
        self._poked = False
        # Made when the owner blocks (take_arrived(block=True)).
        self._event: anyio.Event | None = None
        self._cancels: dict[ray.ObjectRef[Any], Callable[[], None]] = {}
        # Only a grouped watch (a large ``get``) creates it.
        self._groups: Groups | None = None
        self._session = current_session()
        with _open_watchers_lock:
            _open_watchers.add(self)

    def __enter__(self) -> Watcher:
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.close()

    def watch(
        self, refs: Iterable[ray.ObjectRef[Any]], *, grouped: bool = False
    ) -> None:
        """Register refs; each is reported once by :meth:`next_ready`.

        With ``grouped=True`` (distinct refs that the caller needs all of), a
        large set is watched through one sentinel per group of neighbours
        (:mod:`._groups`): far fewer registrations with Ray, at the price of
        reporting a member when its group's sentinel is reported, or at the
        next sweep of all members.
        """
        if grouped:
            refs = list(refs)
            if len(refs) >= GROUP_FROM:
                if self._groups is None:
                    self._groups = Groups(fetch_local=self._fetch_local)
                refs = self._groups.split(refs)
        self._register(refs)

    def _register(self, refs: Iterable[ray.ObjectRef[Any]]) -> None:
        cancels = self._cancels
        for ref in refs:
            if ref in cancels:
                continue
            if USE_ON_READY:
                cancels[ref] = ref._on_ready(self._callback_for(ref))
            else:
                cancels[ref] = SHARED_WAITER.add(
                    ref, self._fetch_local, self._callback_for(ref)
                )

    def __len__(self) -> int:
        """How many refs are registered and not yet reported."""
        return len(self._cancels)

    def poke(self) -> None:
        """Wake :meth:`next_ready` from the loop thread (it returns ``[]``)."""
        self._poked = True
        if self._event is not None:
            self._event.set()

    def take_arrived(self, *, block: bool = False) -> list[ray.ObjectRef[Any]]:
        """Return what Ray has reported so far, without waiting.

        With ``block=True`` and nothing reported, the next report wakes the
        loop and sets a fresh ``self._event`` (for :meth:`next_ready`).
        """
        with self._lock:
            batch, self._arrived = self._arrived, []
            failure = self._failure
            if block and not batch and failure is None and not self._poked:
                self._waiting = True
                self._event = anyio.Event()
        if failure is not None:
            raise failure
        for ref in batch:
            self._cancels.pop(ref, None)
        if batch and self._fetch_local and USE_ON_READY:
            batch = self._keep_local(batch)
        if batch and self._groups is not None and self._groups:
            members, to_register = self._groups.expand(batch)
            self._register(to_register)
            batch += members
        return batch

    async def next_ready(self) -> list[ray.ObjectRef[Any]]:
        """Wait until Ray reports at least one watched ref; return the batch.

        A checkpoint. Returns ``[]`` early when :meth:`poke` was called.

        Raises:
            ray.exceptions.RaySystemError: if Ray stopped the wait (for example
                because Ray is shutting down).
        """
        # Cancellation is only taken before a batch is taken or while nothing
        # has arrived, so that a cancelled call never loses reported refs.
        await anyio.lowlevel.checkpoint_if_cancelled()
        blocked = False
        while True:
            batch = self.take_arrived(block=True)
            groups = self._groups
            if groups is not None and groups.due():
                # Members may be ready (or failed) while their sentinels are
                # still pending: look at all of them now and then.
                with self._lock:
                    self._waiting = False  # not going to wait on this round
                batch += await groups.sweep()
            if batch or self._poked:
                self._poked = False
                if not blocked:  # waiting on the event was the schedule point
                    await anyio.lowlevel.cancel_shielded_checkpoint()
                return batch
            event = self._event
            if not self._waiting or event is None:
                # Reports came in, but none of those refs is local yet: they
                # went to the shared waiter, whose report must wake us. The
                # event is only armed when nothing had come in: look again.
                continue
            try:
                if groups is not None and groups:
                    with anyio.move_on_at(groups.sweep_at):
                        await event.wait()
                else:
                    await event.wait()
            finally:
                with self._lock:
                    self._waiting = False
            blocked = True

    def close(self) -> None:
        """Withdraw every registration; later reports from Ray are ignored."""
        self._closed = True
        with _open_watchers_lock:
            _open_watchers.discard(self)
        cancels, self._cancels = self._cancels, {}
        if self._groups is None:
            withdraw(cancels.values(), self._session)
        else:
            # A grouped watch belongs to a large call: its few registrations
            # go to the withdraw thread with its bookkeeping, so that a
            # cancellation pays for one hand-over only.
            groups, self._groups = self._groups, None
            withdraw(cancels.values(), self._session, inline_max=0, drop=groups)
            del groups
        with self._lock:
            self._arrived = []

    def _keep_local(self, batch: list[ray.ObjectRef[Any]]) -> list[ray.ObjectRef[Any]]:
        # Ray's hook reports existence anywhere in the cluster; the rest of the
        # way to this node is watched by the shared ray.wait thread.
        local, remote = split_local(batch)
        for ref in remote:
            self._cancels[ref] = SHARED_WAITER.add(ref, True, self._callback_for(ref))
        return local

    def _callback_for(
        self, ref: ray.ObjectRef[Any]
    ) -> Callable[[BaseException | None], None]:
        def on_ready(exc: BaseException | None) -> None:
            self._arrive(ref, exc)

        return on_ready

    def _arrive(self, ref: ray.ObjectRef[Any], exc: BaseException | None) -> None:
        # Runs on Ray's callback thread (or the shared waiter thread).
        if self._closed:
            return
        with self._lock:
            if exc is not None and self._failure is None:
                self._failure = exc
            self._arrived.append(ref)
            if self._wake_scheduled or not self._waiting:
                return
            self._wake_scheduled = True
        self._wake(self._on_wake)

    def _on_wake(self) -> None:
        # Runs on the loop thread.
        with self._lock:
            self._wake_scheduled = False
            self._waiting = False
        if self._event is not None:
            self._event.set()


def _object_exists_supported() -> bool:
    core_worker_type = getattr(ray._raylet, "CoreWorker", None)
    return callable(getattr(core_worker_type, "object_exists", None))


#: Whether a reported ref's locality is checked with the core worker's
#: ``object_exists`` (private, behind this feature check): in this process's
#: memory store, or in this node's object store. It answers from memory for
#: the small values a task returns inline, where ``ray.wait(timeout=0,
#: fetch_local=True)`` took 60-80 µs a call under load. Otherwise ``ray.wait``.
USE_OBJECT_EXISTS = _object_exists_supported()


def split_local(
    refs: list[ray.ObjectRef[Any]],
) -> tuple[list[ray.ObjectRef[Any]], list[ray.ObjectRef[Any]]]:
    """Split distinct refs Ray reported as existing into (local, not local yet)."""
    if not USE_OBJECT_EXISTS:
        return split_ready(refs, fetch_local=True)
    worker: Any = ray._private.worker.global_worker
    exists = worker.core_worker.object_exists
    local: list[ray.ObjectRef[Any]] = []
    remote: list[ray.ObjectRef[Any]] = []
    for ref in refs:
        (local if exists(ref) else remote).append(ref)
    return local, remote


def split_ready(
    refs: Sequence[ray.ObjectRef[Any]], *, fetch_local: bool
) -> tuple[list[ray.ObjectRef[Any]], list[ray.ObjectRef[Any]]]:
    """Split distinct refs into (ready now, not ready) with one ``ray.wait``."""
    if not refs:
        return [], []
    return ray.wait(
        list(refs), num_returns=len(refs), timeout=0, fetch_local=fetch_local
    )


def _get_ready_now(
    refs: list[ray.ObjectRef[Any]],
) -> tuple[list[Any], list[ray.ObjectRef[Any]]]:
    """Values of the refs that are local now (``_MISSING`` for the others)."""
    try:
        return ray.get(refs, timeout=0), []
    except GetTimeoutError:
        pass
    distinct = list(dict.fromkeys(refs))
    ready, pending = split_ready(distinct, fetch_local=True)
    values = dict(zip(ready, ray.get(ready), strict=True)) if ready else {}
    return [values.get(ref, _MISSING) for ref in refs], pending


def _get_chunked(refs: list[ray.ObjectRef[Any]]) -> list[Any]:
    return ray.get(refs)


async def _in_chunks(
    refs: Sequence[ray.ObjectRef[Any]], fn: Callable[[list[ray.ObjectRef[Any]]], Any]
) -> list[Any]:
    """Run ``fn`` over chunks of ``refs``: inline if small, else off the loop.

    Off the loop, one job on a fetch thread runs every chunk; a cancellation is
    taken between chunks (:func:`._offload.run_chunks_in_thread`).
    """
    if len(refs) <= INLINE_FETCH_MAX:
        return [fn(list(refs))]
    return await run_chunks_in_thread(refs, THREAD_CHUNK, fn)


async def _get_batch(refs: Sequence[ray.ObjectRef[Any]]) -> list[Any]:
    """``ray.get`` of refs that Ray reported ready: the one batched fetch."""
    values: list[Any] = []
    for part in await _in_chunks(refs, _get_chunked):
        values.extend(part)
    return values


async def fetch(refs: Sequence[ray.ObjectRef[Any]]) -> list[Any]:
    """Return the values of ``refs`` in order, as ``ray.get(list(refs))`` would.

    Refs that are ready are fetched at once in batches; the others are watched
    and fetched in batches as Ray reports them ready *in this node's store*, so
    that the fetch itself never waits for a transfer from another node. A
    checkpoint only when something has to be waited for or fetched off the loop.

    Cancellation: withdraws every registration and returns promptly (a chunk
    being deserialised on the fetch thread is finished first).

    Raises:
        Exception: the error of the first failed ref, as ``ray.get`` raises it.
    """
    parts: list[tuple[list[Any], list[ray.ObjectRef[Any]]]]
    parts = await _in_chunks(refs, _get_ready_now)
    values: list[Any]
    pending: list[ray.ObjectRef[Any]]
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
    # Where each missing ref goes: its first position, and in ``repeats`` its
    # later ones (plain ints, not a list per ref: 10,000 small lists cost a
    # quarter of a millisecond just to free when a call is cancelled).
    position: dict[ray.ObjectRef[Any], int] = {}
    repeats: dict[ray.ObjectRef[Any], list[int]] = {}
    for index, value in enumerate(values):
        if value is _MISSING:
            ref = refs[index]
            if ref in position:
                repeats.setdefault(ref, []).append(index)
            else:
                position[ref] = index
    try:
        with Watcher(fetch_local=True) as watcher:
            watcher.watch(position, grouped=True)
            while position:
                batch = await watcher.next_ready()
                if len(batch) < min(COALESCE_BELOW, len(position)):
                    # A trickle of completions: let it gather into one batch
                    # rather than pay a wake-up, a check and a fetch per ref.
                    await anyio.sleep(COALESCE_WINDOW)
                    batch += watcher.take_arrived()
                for ref, value in zip(batch, await _get_batch(batch), strict=True):
                    values[position.pop(ref)] = value
                    for index in repeats.pop(ref, ()) if repeats else ():
                        values[index] = value
    except BaseException:
        # Cancelled or failed: let the withdraw thread free the map.
        drop_later(position, len(position))
        del position
        raise
    return values


async def fetch_one(ref: ray.ObjectRef[Any]) -> Any:
    """The value of one ref: ``ray.get(ref)`` if it is ready, else watched."""
    try:
        return ray.get(ref, timeout=0)
    except GetTimeoutError:
        pass
    with Watcher(fetch_local=True) as watcher:
        watcher.watch((ref,))
        while not await watcher.next_ready():
            pass
    return (await _get_batch([ref]))[0]


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


async def fetch_outcomes(refs: Sequence[ray.ObjectRef[Any]]) -> list[Outcome]:
    """Fetch the values of ``refs``, keeping each failure at its own position.

    One batched fetch when nothing failed; if something did, each ref is
    fetched alone so that every failure stays where it belongs (for iterators
    that hand results out one by one).
    """
    try:
        return [Outcome(value) for value in await fetch(refs)]
    except Exception:
        pass
    outcomes = []
    for ref in refs:
        try:
            outcomes.append(Outcome(await fetch_one(ref)))
        except Exception as exc:
            outcomes.append(Outcome(error=exc))
    return outcomes
