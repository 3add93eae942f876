"""The watcher: the one place refs are registered with Ray and reports taken.

Ray reports each registered ref on its own thread; the watcher queues the
report and wakes the loop only while its owner is blocked in
:meth:`Watcher.next_ready`, once per burst, and the owner takes the burst.
"""

from __future__ import annotations

import threading
from collections.abc import Callable, Iterable
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

_open: set[Watcher] = set()
_open_lock = threading.Lock()


def _nothing() -> None:
    """The withdrawal of a registration being made."""


class Watcher:
    """Watches pending refs for one task and reports them ready in batches.

    Create it on the loop thread, use it from one task, and always
    :meth:`close` it. With ``fetch_local=True`` a ref is only reported once
    its object is in this node's store, as ``ray.wait(fetch_local=True)``.

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
        # Only while the owner is blocked in next_ready does a report wake the
        # loop; others are picked up without a wake-up.
        self._waiting = False
        self._closed = False
        self._poked = False
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

        With ``grouped=True`` (distinct refs, all needed), a large set is
        watched through one sentinel per group of neighbours (:mod:`._sentinels`):
        a member is reported with its sentinel or at the next sweep.
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

        With ``block=True`` and nothing reported, arm a fresh ``self._event``.

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

        A checkpoint; returns ``[]`` early after :meth:`poke`. Cancellation is
        only taken before a batch is taken or while nothing has been reported,
        so a cancelled call never loses reports.

        Raises:
            ray.exceptions.RaySystemError: Ray stopped the wait (shutting down).
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
                # Reports came in, none local yet (they went to the poller);
                # the event is only armed when nothing came in: look again.
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
        # A grouped watch's registrations go with its bookkeeping: one hand-over.
        withdraw(
            withdraws.values(),
            self._session,
            inline_max=INLINE_WITHDRAW_MAX if groups is None else 0,
            drop=groups,
        )
        del groups

    def _keep_local(self, batch: list[Ref]) -> list[Ref]:
        # The hook reports existence anywhere; the poller watches the way here.
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
