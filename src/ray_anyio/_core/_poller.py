"""The poller: readiness through the public ``ray.wait``, one thread per process.

The readiness path of every Ray before 2.60, and of Ray Client; the thread
exits when nothing is registered.
"""

from __future__ import annotations

import threading
from collections.abc import Callable
from functools import partial
from typing import TYPE_CHECKING, Any

from ray.exceptions import RaySystemError

from . import _ray, _threads
from ._multimap import MultiMap

if TYPE_CHECKING:
    import ray

    Ref = ray.ObjectRef[Any]

#: Called once with ``None`` when the ref is ready, or with the exception that
#: stopped the wait (Ray shut down). Runs on Ray's or the poller's thread.
Callback = Callable[[BaseException | None], None]
#: Withdraws a registration; safe to call more than once.
Withdraw = Callable[[], None]

#: The longest blocking ``ray.wait`` of the poller: it bounds how long a
#: withdrawn ref stays in Ray's wait, not how late a ready ref is reported.
POLL_SLICE = 0.05


class Poller:
    """The public readiness path: one thread calling ``ray.wait``."""

    def __init__(self) -> None:
        self._cond = threading.Condition()
        # fetch_local -> ref -> its callbacks. A registration is kept small (an
        # entry and a partial): a wait over many pending refs registers each.
        self._entries: dict[bool, MultiMap[Ref, Callback]] = {
            True: MultiMap(),
            False: MultiMap(),
        }
        self._running = False

    def add(self, ref: Ref, fetch_local: bool, callback: Callback) -> Withdraw:
        """Report ``ref`` ready to ``callback``; return a function that withdraws it."""
        with self._cond:
            self._entries[fetch_local].add(ref, callback)
            if not self._running:
                self._running = True
                _threads.POLL.submit(self._run)
        return partial(self._withdraw, ref, fetch_local, callback)

    def _withdraw(self, ref: Ref, fetch_local: bool, callback: Callback) -> None:
        with self._cond:
            self._entries[fetch_local].remove(ref, callback)

    def pending(self) -> int:
        """How many refs are registered (for :mod:`ray_anyio.testing`)."""
        with self._cond:
            return sum(len(entries) for entries in self._entries.values())

    def _run(self) -> None:
        while self._round():
            pass

    def _round(self) -> bool:
        """One gated job: a ``ray.wait`` over all refs; False once none is left."""
        with self._cond:
            groups = {fl: entries.keys() for fl, entries in self._entries.items()}
            if not any(groups.values()):
                self._running = False
                return False
        job = _threads.gated(
            _ray.session(),
            partial(self._wait_and_report, groups),
            partial(self._fail_all, _ray.not_running()),
        )
        del groups
        job()
        return True

    def _wait_and_report(self, groups: dict[bool, list[Ref]]) -> None:
        try:
            self._report(self._wait_some(groups))
        except Exception as exc:  # Ray shut down or failed: tell everyone
            self._fail_all(exc)

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
                found, _ = _ray.wait(
                    refs, num_returns=len(refs), timeout=0, fetch_local=fetch_local
                )
            ready.extend((ref, fetch_local) for ref in found)
        return ready

    def _report(self, keys: list[tuple[Ref, bool]]) -> None:
        fire: list[Callback] = []
        with self._cond:
            for ref, fetch_local in keys:
                fire.extend(self._entries[fetch_local].pop(ref))
        for callback in fire:
            callback(None)

    def _fail_all(self, exc: BaseException) -> None:
        if not isinstance(exc, RaySystemError):
            error = RaySystemError(f"ray.wait failed while waiting: {exc!r}")
            error.__cause__ = exc
            exc = error
        with self._cond:
            fire = [cb for entries in self._entries.values() for cb in entries.values()]
            for entries in self._entries.values():
                entries.clear()
        for callback in fire:
            callback(exc)


POLLER = Poller()
