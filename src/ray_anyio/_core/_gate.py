"""The shutdown gate: the package's threads call Ray only while their session lives.

Ray has no shutdown hook, so ``ray.shutdown`` is wrapped (:mod:`._ray`) to
close the gate first: a thread calling into the core worker (freeing a ref,
say) while it is torn down ends the process.
"""

from __future__ import annotations

import threading
from collections.abc import Callable, Iterator
from contextlib import contextmanager


class Gate:
    """Counts the threads inside Ray; closed, it keeps the others at its door.

    ``session`` tells the live session now. The closing thread goes through,
    with ``live`` false, since it cannot race itself.
    """

    def __init__(self, session: Callable[[], object | None]) -> None:
        self._session = session
        self._cond = threading.Condition()
        self._active = 0
        self._closer: threading.Thread | None = None

    @contextmanager
    def using(self, owner: object | None) -> Iterator[bool]:
        """Enter if ``owner`` is still the live session; yields whether it is."""
        me = threading.current_thread()
        with self._cond:
            while self._closer is not None and self._closer is not me:
                self._cond.wait()
            live = (
                self._closer is None and owner is not None and self._session() is owner
            )
            if live:
                self._active += 1
        try:
            yield live
        finally:
            if live:
                with self._cond:
                    self._active -= 1
                    self._cond.notify_all()

    def close(self, timeout: float) -> None:
        """Wait (at most ``timeout`` s) until no thread is inside; keep them out."""
        with self._cond:
            self._closer = threading.current_thread()
            self._cond.wait_for(lambda: self._active == 0, timeout)

    def reopen(self) -> None:
        with self._cond:
            self._closer = None
            self._cond.notify_all()
