"""One background thread that learns readiness through the public ``ray.wait``.

The engine prefers Ray's per-ref readiness callback (``ObjectRef._on_ready``).
This thread is the public fallback: for Ray versions without that hook, and for
``wait(..., fetch_local=True)`` when an object exists on another node but has
not reached this one yet (the hook reports existence, not locality).

There is at most one such thread per process, whatever the number of pending
refs or event loops; it exits as soon as nothing is registered.
"""

from __future__ import annotations

import threading
from collections.abc import Callable
from typing import Any

import ray
from ray.exceptions import RaySystemError

#: Called once, on this thread, with ``None`` when the ref is ready or with the
#: exception that stopped the wait (e.g. Ray shutting down).
ReadyCallback = Callable[[BaseException | None], None]

#: How long one blocking ``ray.wait`` may hold the thread before it looks for
#: new registrations and cancellations. It bounds how long a cancelled entry
#: can stay inside Ray's wait, not how late a ready ref is reported.
_SLICE = 0.05


class SharedWaiter:
    def __init__(self) -> None:
        self._cond = threading.Condition()
        self._entries: dict[tuple[ray.ObjectRef[Any], bool], list[ReadyCallback]] = {}
        self._thread: threading.Thread | None = None

    def add(
        self, ref: ray.ObjectRef[Any], fetch_local: bool, callback: ReadyCallback
    ) -> Callable[[], None]:
        """Report ``ref`` ready to ``callback``; return a function that cancels it."""
        key = (ref, fetch_local)
        with self._cond:
            self._entries.setdefault(key, []).append(callback)
            if self._thread is None:
                self._thread = threading.Thread(
                    target=self._run, name="ray-anyio-waiter", daemon=True
                )
                self._thread.start()
            self._cond.notify()

        def cancel() -> None:
            with self._cond:
                callbacks = self._entries.get(key)
                if callbacks is not None and callback in callbacks:
                    callbacks.remove(callback)
                    if not callbacks:
                        del self._entries[key]

        return cancel

    def pending(self) -> int:
        """How many refs are registered (for tests and diagnostics)."""
        with self._cond:
            return len(self._entries)

    def _run(self) -> None:
        while True:
            with self._cond:
                if not self._entries:
                    self._thread = None
                    return
                groups: dict[bool, list[ray.ObjectRef[Any]]] = {True: [], False: []}
                for ref, fetch_local in self._entries:
                    groups[fetch_local].append(ref)
            try:
                ready = self._wait_some(groups)
            except Exception as exc:  # Ray shut down or failed: tell everyone
                error = RaySystemError(f"ray.wait failed while waiting: {exc!r}")
                error.__cause__ = exc
                self._report(None, error)
                continue
            self._report(ready, None)

    @staticmethod
    def _wait_some(
        groups: dict[bool, list[ray.ObjectRef[Any]]],
    ) -> list[tuple[ray.ObjectRef[Any], bool]]:
        active = [(fl, refs) for fl, refs in groups.items() if refs]
        ready: list[tuple[ray.ObjectRef[Any], bool]] = []
        for fetch_local, refs in active:
            found, _ = ray.wait(
                refs,
                num_returns=1,
                timeout=_SLICE / len(active),
                fetch_local=fetch_local,
            )
            if found and len(refs) > 1:
                found, _ = ray.wait(
                    refs, num_returns=len(refs), timeout=0, fetch_local=fetch_local
                )
            ready.extend((ref, fetch_local) for ref in found)
        return ready

    def _report(
        self,
        keys: list[tuple[ray.ObjectRef[Any], bool]] | None,
        exc: BaseException | None,
    ) -> None:
        fire: list[ReadyCallback] = []
        with self._cond:
            for key in list(self._entries) if keys is None else keys:
                fire.extend(self._entries.pop(key, ()))
        for callback in fire:
            callback(exc)


#: The process-wide waiter.
SHARED_WAITER = SharedWaiter()
