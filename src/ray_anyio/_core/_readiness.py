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
        self._entries: dict[tuple[Ref, bool], list[Callback]] = {}
        self._running = False

    def add(self, ref: Ref, fetch_local: bool, callback: Callback) -> Withdraw:
        """Report ``ref`` ready to ``callback``; return a function that withdraws it."""
        key = (ref, fetch_local)
        with self._cond:
            self._entries.setdefault(key, []).append(callback)
            if not self._running:
                self._running = True
                _threads.POLL.submit(self._run)

        def withdraw() -> None:
            with self._cond:
                callbacks = self._entries.get(key)
                if callbacks is not None and callback in callbacks:
                    callbacks.remove(callback)
                    if not callbacks:
                        del self._entries[key]

        return withdraw

    def pending(self) -> int:
        """How many refs are registered (for :mod:`ray_anyio.testing`)."""
        with self._cond:
            return len(self._entries)

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
                if not self._entries:
                    self._running = False
                    return False
                groups: dict[bool, list[Ref]] = {True: [], False: []}
                for ref, fetch_local in self._entries:
                    groups[fetch_local].append(ref)
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
            for key in list(self._entries) if keys is None else keys:
                fire.extend(self._entries.pop(key, ()))
        for callback in fire:
            callback(exc)


#: The process-wide poller.
POLLER = Poller()
