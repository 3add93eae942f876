"""How this process learns that a ref is ready: one seam, two implementations.

* **The hook** (Ray 2.60 and later, not through Ray Client): Ray's per-ref
  readiness callback, ``ObjectRef._on_ready`` (in :mod:`._ray`). It reports
  that an object exists somewhere in the cluster, without fetching it, and
  gives a handle that withdraws the registration.
* **The poller** (every other Ray, and Ray Client): one thread per process
  that calls the public ``ray.wait`` over every registered ref, whatever the
  number of refs or event loops, and exits when nothing is registered.

:func:`register` picks one per session; the watcher (:mod:`._watcher`) is its
only caller. :func:`split_ready` and :func:`split_local` ask Ray once, now.
"""

from __future__ import annotations

import threading
from collections.abc import Callable, Sequence
from functools import partial
from typing import TYPE_CHECKING, Any

from ray.exceptions import RaySystemError

from . import _ray, _threads

if TYPE_CHECKING:
    import ray

    Ref = ray.ObjectRef[Any]

#: Called once with ``None`` when the ref is ready, or with the exception that
#: stopped the wait (Ray shut down). Runs on Ray's or the poller's thread.
Callback = Callable[[BaseException | None], None]
#: Withdraws a registration; safe to call more than once.
Withdraw = Callable[[], None]

#: Tests set this to False to run the hook's users through the poller.
PREFER_HOOK = True


def uses_hook() -> bool:
    """Whether registrations made now go to Ray's hook (else to the poller)."""
    return PREFER_HOOK and _ray.HAS_ON_READY and not _ray.in_client_mode()


def register(ref: Ref, fetch_local: bool, callback: Callback, hook: bool) -> Withdraw:
    """Have ``callback`` called once ``ref`` is ready; return its withdrawal.

    With ``hook`` (see :func:`uses_hook`) "ready" means the object exists
    somewhere; the caller checks locality itself. Otherwise it means ready as
    ``ray.wait(fetch_local=fetch_local)`` says.
    """
    if hook:
        return _ray.on_ready(ref, callback)
    return POLLER.add(ref, fetch_local, callback)


def split_ready(
    refs: Sequence[Ref], *, fetch_local: bool
) -> tuple[list[Ref], list[Ref]]:
    """Split distinct refs into (ready now, not ready) with one ``ray.wait``."""
    if not refs:
        return [], []
    ready: list[Ref]
    pending: list[Ref]
    ready, pending = _ray.wait(
        list(refs), num_returns=len(refs), timeout=0, fetch_local=fetch_local
    )
    return ready, pending


def split_local(refs: list[Ref]) -> tuple[list[Ref], list[Ref]]:
    """Split distinct refs known to exist into (on this node, not here yet)."""
    exists = _ray.local_check()
    if exists is None:
        return split_ready(refs, fetch_local=True)
    local: list[Ref] = []
    remote: list[Ref] = []
    for ref in refs:
        (local if exists(ref) else remote).append(ref)
    return local, remote


#: How long one blocking ``ray.wait`` of the poller may last before it looks
#: for new registrations and withdrawals. It bounds how long a withdrawn ref
#: stays inside Ray's wait, not how late a ready ref is reported.
POLL_SLICE = 0.05


class Poller:
    """The public readiness path: one thread calling ``ray.wait``."""

    def __init__(self) -> None:
        self._cond = threading.Condition()
        # fetch_local -> ref -> its callbacks. A registration is one entry (or
        # one more callback) and a partial: a wait over many pending refs
        # registers each of them, so what one costs is kept small.
        self._entries: dict[bool, dict[Ref, list[Callback]]] = {True: {}, False: {}}
        self._running = False

    def add(self, ref: Ref, fetch_local: bool, callback: Callback) -> Withdraw:
        """Report ``ref`` ready to ``callback``; return a function that withdraws it."""
        with self._cond:
            entries = self._entries[fetch_local]
            callbacks = entries.get(ref)
            if callbacks is None:
                entries[ref] = [callback]
            else:
                callbacks.append(callback)
            if not self._running:
                self._running = True
                _threads.POLL.submit(self._run)
        return partial(self._withdraw, ref, fetch_local, callback)

    def _withdraw(self, ref: Ref, fetch_local: bool, callback: Callback) -> None:
        with self._cond:
            entries = self._entries[fetch_local]
            callbacks = entries.get(ref)
            if callbacks is not None and callback in callbacks:
                callbacks.remove(callback)
                if not callbacks:
                    del entries[ref]

    def pending(self) -> int:
        """How many refs are registered (for :mod:`ray_anyio.testing`)."""
        with self._cond:
            return sum(len(entries) for entries in self._entries.values())

    def _run(self) -> None:
        while self._round():
            pass

    def _round(self) -> bool:
        """One ``ray.wait`` over everything registered; False once nothing is.

        The whole round runs inside the gate, the freeing of its lists of refs
        included: a ref freed on this thread while ``ray.shutdown`` runs would
        end the process.
        """
        session = _ray.session()
        with _ray.GATE.using(session) as live:
            with self._cond:
                groups = {fl: list(entries) for fl, entries in self._entries.items()}
                if not any(groups.values()):
                    self._running = False
                    return False
            try:
                if not live:
                    raise _ray.not_running()
                self._report(self._wait_some(groups), None)
            except Exception as exc:  # Ray shut down or failed: tell everyone
                error = exc
                if not isinstance(exc, RaySystemError):
                    error = RaySystemError(f"ray.wait failed while waiting: {exc!r}")
                    error.__cause__ = exc
                self._report(None, error)
                del error, exc
            del groups
        return True

    @staticmethod
    def _wait_some(groups: dict[bool, list[Ref]]) -> list[tuple[Ref, bool]]:
        active = [(fl, refs) for fl, refs in groups.items() if refs]
        ready: list[tuple[Ref, bool]] = []
        for fetch_local, refs in active:
            found, _ = _ray.wait(
                refs,
                num_returns=1,
                timeout=POLL_SLICE / len(active),
                fetch_local=fetch_local,
            )
            if found and len(refs) > 1:
                found, _ = split_ready(refs, fetch_local=fetch_local)
            ready.extend((ref, fetch_local) for ref in found)
        return ready

    def _report(
        self, keys: list[tuple[Ref, bool]] | None, exc: BaseException | None
    ) -> None:
        fire: list[Callback] = []
        with self._cond:
            if keys is None:  # everyone
                for entries in self._entries.values():
                    for callbacks in entries.values():
                        fire.extend(callbacks)
                    entries.clear()
            else:
                for ref, fetch_local in keys:
                    fire.extend(self._entries[fetch_local].pop(ref, ()))
        for callback in fire:
            callback(exc)


#: The process-wide poller.
POLLER = Poller()
