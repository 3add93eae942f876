"""Resume: a ``map`` run's use of its checkpoint file.

Before an input starts, the file may hold its result (same position, same
arguments, same ``fn``): it is handed out without a task. Every other result
is committed as it is handed out, so a driver that dies loses at most the
inputs in flight.
"""

from __future__ import annotations

from typing import Any

from ._checkpoint import Checkpoint, function_digest
from ._core import _ray
from ._core._outcome import Outcome


class Resume:
    """One run's checkpoint: what it restores, and the commit of the rest.

    Synchronous and quick (SQLite in WAL mode, tens of microseconds a call):
    called on the loop thread. Not a checkpoint of the event loop.
    """

    __slots__ = ("_from_file", "_keep_errors", "_store", "restored")

    def __init__(self, path: str, fn: Any, keep_errors: bool) -> None:
        """Open (and lock) the file of ``path`` for a run of ``fn``.

        Raises:
            CheckpointBusyError: another live run holds the file.
            ValueError: the file is not a checkpoint.
        """
        body = _ray.python_function(fn) or fn  # a remote function's own code
        self._store = Checkpoint.open(path, function_digest(body))
        self._keep_errors = keep_errors
        self._from_file: set[int] = set()
        #: How many results came from the file.
        self.restored = 0

    def take(self, number: int, args: tuple[Any, ...]) -> Outcome | None:
        """The stored outcome of input ``number``, or None to run it.

        Arguments that cannot be pickled are that input's ``TypeError``.
        """
        try:
            outcome = self._store.restored(number, args)
        except TypeError as exc:
            return Outcome(error=exc)
        if outcome is not None:
            self._from_file.add(number)
            self.restored += 1
        return outcome

    def hand_out(self, number: int, args: tuple[Any, ...], outcome: Outcome) -> Outcome:
        """Commit a result as it is handed out; return what to hand out.

        Errors are stored only if the run returns them. A result that cannot
        be pickled is stored as nothing and becomes the item's ``TypeError``.
        """
        if number in self._from_file:
            self._from_file.discard(number)
        elif outcome.error is None or self._keep_errors:
            try:
                self._store.commit(number, args, outcome)
            except TypeError as exc:  # this item's error only
                return Outcome(error=exc)
        return outcome

    def close(self) -> None:
        """Close the file and release its lock; closing again does nothing."""
        self._store.close()
