"""Progress counters for the iterators of ``as_completed``, ``map`` and pools.

Read-only ints a progress bar can poll, with no dependency: ``submitted``
(items started), ``completed`` and ``failed`` (results handed out, with a
value or with an error), ``in_flight`` (submitted, not handed out yet) and
``total`` (the number of items, or ``None`` when the input's length is
unknown).
"""

from __future__ import annotations


class Progress:
    """The counters; subclasses update the private fields."""

    def __init__(self, total: int | None) -> None:
        self._total = total
        self._submitted = 0
        self._completed = 0
        self._failed = 0

    @property
    def total(self) -> int | None:
        """How many items there are, or ``None`` if the input's length is unknown."""
        return self._total

    @property
    def submitted(self) -> int:
        """How many items have been started."""
        return self._submitted

    @property
    def completed(self) -> int:
        """How many results have been handed out with a value."""
        return self._completed

    @property
    def failed(self) -> int:
        """How many results have been handed out as an error (raised or returned)."""
        return self._failed

    @property
    def in_flight(self) -> int:
        """How many items were started and have not been handed out yet."""
        return self._submitted - self._completed - self._failed
