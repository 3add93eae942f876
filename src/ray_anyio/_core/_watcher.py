"""The watcher: the one place refs are registered with Ray and reports taken.

A call registers the refs it waits for with a :class:`Watcher`; Ray reports
each one on its own thread (:mod:`._readiness`); the watcher queues the
report and wakes the loop (:mod:`._wakeup`) only while its owner is blocked in
:meth:`Watcher.next_ready`, once per burst. The owner takes the whole burst
at once; closing withdraws every registration (:mod:`._withdraw`).
:func:`take_reports` is the one loop that takes reports, for every verb;
:func:`watch_all` is it over refs that must all be reported.
"""

from __future__ import annotations

import inspect
import threading
from collections.abc import Awaitable, Callable, Collection, Iterable
from typing import TYPE_CHECKING, Any

import anyio
import anyio.lowlevel

from . import _ray
from ._readiness import Withdraw, register, split_local, uses_hook
from ._sentinels import GROUP_FROM, Groups
from ._wakeup import current_waker
from ._withdraw import INLINE_WITHDRAW_MAX, withdraw

if TYPE_CHECKING:
    import ray

    Ref = ray.ObjectRef[Any]

#: When fewer refs than this are reported at once while more are pending,
#: :func:`watch_all` (with ``coalesce``) waits ``COALESCE_WINDOW`` seconds for
#: more before handing the batch on. The last refs of a call are never delayed.
COALESCE_BELOW = 64
COALESCE_WINDOW = 0.010

_open: set[Watcher] = set()
_open_lock = threading.Lock()


def _nothing() -> None:
    """The withdrawal of a registration being made."""


class Watcher:
    """Watches pending refs for one task and reports them ready in batches.

    Create it on the loop thread, use it from one task, and always
    :meth:`close` it (``with Watcher(...) as w``). With ``fetch_local=True`` a
    ref is only reported once its object is in this node's object store, as
    ``ray.wait(fetch_local=True)`` would.

    Raises:
        ray.exceptions.RaySystemError: Ray is not running.
    """

    # No ``__dict__``: one object less per pending ``get(ref)`` for the
    # garbage collector to visit.
    __slots__ = (
        "__weakref__", "_arrived", "_closed", "_event", "_failure", "_fetch_local",
        "_groups", "_hook", "_lock", "_poked", "_session", "_waiting", "_wake",
        "_wake_scheduled", "_withdraws"
    )  # fmt: skip

    def __init__(self, *, fetch_local: bool = False) -> None:
        self._session = _ray.session()
        if self._session is None:
            raise _ray.not_running()
        self._wake = current_waker()
        self._hook = uses_hook()
        self._fetch_local = fetch_local
        self._lock = threading.Lock()
        self._arrived: list[Ref] = []
        self._failure: BaseException | None = None
        self._wake_scheduled = False
        # Whether the owner is blocked in next_ready: only then does a report
        # wake the loop. Reports that come while it is busy (or sleeping to
        # coalesce a batch) are picked up without a wake-up.
        self._waiting = False
        self._closed = False
        self._poked = False
        # Made when the owner blocks (take_arrived(block=True)).
        self._event: anyio.Event | None = None
        self._withdraws: dict[Ref, Withdraw] = {}
        # Only a grouped watch (a large ``get``) creates it.
        self._groups: Groups | None = None
        with _open_lock:
            _open.add(self)

    def __enter__(self) -> Watcher:
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.close()

    def watch(self, refs: Iterable[Ref], *, grouped: bool = False) -> None:
        """Register refs; each is reported once by :meth:`next_ready`.

        With ``grouped=True`` (distinct refs that the caller needs all of), a
        large set is watched through one sentinel per group of neighbours
        (:mod:`._sentinels`): far fewer registrations with Ray, at the price of
        reporting a member when its group's sentinel is reported, or at the
        next sweep of all members.
        """
        if grouped:
            refs = list(refs)
            if len(refs) >= GROUP_FROM:
                if self._groups is None:
                    self._groups = Groups(fetch_local=self._fetch_local)
                refs = self._groups.split(refs)
        self._register(refs, self._hook)

    def _register(self, refs: Iterable[Ref], hook: bool) -> None:
        withdraws = self._withdraws
        fetch_local = self._fetch_local
        for ref in refs:
            if ref not in withdraws:
                # In the map before Ray can report it: a report of a ref that
                # is not in the map (withdrawn) is ignored.
                withdraws[ref] = _nothing
                withdraws[ref] = register(ref, fetch_local, self._callback(ref), hook)

    def unwatch(self, ref: Ref) -> None:
        """Withdraw ``ref`` if not reported yet (Ray's report of it is ignored)."""
        undo = self._withdraws.pop(ref, None)
        if undo is not None:
            withdraw((undo,), self._session)

    def __len__(self) -> int:
        """How many refs are registered and not yet reported."""
        return len(self._withdraws)

    def pending(self) -> int:
        """How many watched refs are not reported yet (group members included)."""
        groups = self._groups
        return len(self._withdraws) + (len(groups) if groups is not None else 0)

    def poke(self) -> None:
        """Wake :meth:`next_ready` from the loop thread (it returns ``[]``)."""
        self._poked = True
        if self._event is not None:
            self._event.set()

    def take_arrived(self, *, block: bool = False) -> list[Ref]:
        """Return what Ray has reported so far, without waiting.

        With ``block=True`` and nothing reported, the next report wakes the
        loop and sets a fresh ``self._event`` (for :meth:`next_ready`).

        Raises:
            ray.exceptions.RaySystemError: Ray stopped the wait.
        """
        with self._lock:
            batch, self._arrived = self._arrived, []
            failure = self._failure
            if block and not batch and failure is None and not self._poked:
                self._waiting = True
                self._event = anyio.Event()
        if failure is not None:
            raise failure
        withdraws = self._withdraws
        for ref in batch:
            withdraws.pop(ref, None)
        if batch and self._fetch_local and self._hook:
            batch = self._keep_local(batch)
        if batch and self._groups is not None and self._groups:
            members, to_register = self._groups.expand(batch)
            self._register(to_register, self._hook)
            batch += members
        return batch

    async def next_ready(self) -> list[Ref]:
        """Wait until Ray reports at least one watched ref; return the batch.

        A checkpoint. Returns ``[]`` early when :meth:`poke` was called.
        Cancellation is only taken before a batch is taken or while nothing
        has been reported, so a cancelled call never loses reports.

        Raises:
            ray.exceptions.RaySystemError: Ray stopped the wait (for example
                because Ray is shutting down).
        """
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
                # went to the poller, whose report must wake us. The event is
                # only armed when nothing had come in: look again.
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
        with self._lock:  # a report being queued now is queued before this
            self._closed = True
            self._arrived = []
        with _open_lock:
            _open.discard(self)
        withdraws, self._withdraws = self._withdraws, {}
        groups, self._groups = self._groups, None
        # A grouped watch belongs to a large call: its few registrations go to
        # the background lane with its bookkeeping, so that a cancellation
        # pays for one hand-over only.
        withdraw(
            withdraws.values(),
            self._session,
            inline_max=INLINE_WITHDRAW_MAX if groups is None else 0,
            drop=groups,
        )
        del groups

    def _keep_local(self, batch: list[Ref]) -> list[Ref]:
        # Ray's hook reports existence anywhere in the cluster; the rest of the
        # way to this node is watched by the poller.
        local, remote = split_local(batch)
        self._register(remote, False)
        return local

    def _callback(self, ref: Ref) -> Callable[[BaseException | None], None]:
        return lambda exc: self._arrive(ref, exc)

    def _arrive(self, ref: Ref, exc: BaseException | None) -> None:
        # Runs on Ray's callback thread (or the poller's), or on the thread
        # that withdraws the registration, which Ray then reports as an error.
        with self._lock:
            if self._closed or ref not in self._withdraws:
                return
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


def registered() -> int:
    """How many refs the open watchers of the process have registered."""
    with _open_lock:
        return sum(len(watcher) for watcher in _open)


async def take_reports(
    watcher: Watcher,
    on_batch: Callable[[list[Ref]], Awaitable[None] | None],
    *,
    until: Callable[[], bool] | None = None,
    coalesce: bool = False,
) -> None:
    """Hand each batch Ray reports to ``on_batch`` until ``until()`` is true.

    The one loop that takes reports. ``until`` is asked before every wait
    (``None``: take reports until cancelled); a :meth:`Watcher.poke` makes it
    ask again. With ``coalesce``, a trickle of reports is gathered for
    ``COALESCE_WINDOW`` seconds into one batch rather than paying a wake-up
    and a fetch per ref; a cancellation then may drop the batch gathered,
    so only callers that stop on a cancellation use it.

    Cancellation: a checkpoint; a report taken is handed on before the next
    cancellation is taken (except with ``coalesce``, see above).

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

    ``on_batch`` gets each batch of reported refs as it comes;
    ``coalesce`` is :func:`take_reports`'. Cancellation withdraws every
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
