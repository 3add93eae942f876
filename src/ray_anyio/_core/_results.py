"""The one base of the result iterators (``as_completed``, ``map``, pools).

:class:`Results` holds the progress counters, the guard against use outside
the block and the hand-out of an outcome; :func:`running` is the block's middle.
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Any, ClassVar, Generic, TypeVar

from ._first_error import FirstErrorGroup
from ._outcome import Outcome
from ._watcher import Watcher

T = TypeVar("T")


class Results(Generic[T]):
    """An async iterator of results with progress counters.

    The counters (properties below) are read-only ints, safe to poll from the
    same event loop.
    """

    #: The verb that made it, for messages.
    _verb: ClassVar[str] = "results"

    def __init__(self, total: int | None, return_exceptions: bool) -> None:
        self._total = total
        self._submitted = 0
        self._completed = 0
        self._failed = 0
        self._return_exceptions = return_exceptions
        self._open = False
        self._closed = False

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

    def __aiter__(self) -> Results[T]:
        return self

    async def __anext__(self) -> T:
        """The next result (see the verb); a checkpoint.

        Raises:
            RuntimeError: the iterator is used outside its block.
        """
        if not self._open or self._closed:
            raise RuntimeError(
                f"use the iterator inside `async with {self._verb}(...) as results:`"
            )
        return await self._next()

    async def _next(self) -> T:  # pragma: no cover - every subclass has one
        raise StopAsyncIteration

    def _hand_out(self, outcome: Outcome) -> Any:
        """Count ``outcome`` as handed out: its value, or its error (or raise it)."""
        if outcome.error is None:
            self._completed += 1
            return outcome.value
        self._failed += 1
        if self._return_exceptions:
            return outcome.error
        raise outcome.error

    def _watch_local(self) -> bool:
        """Whether the block's watcher reports a ref only once it is on this node."""
        return False

    def _start(self, group: FirstErrorGroup, watcher: Watcher, owner: Any) -> None:
        """Start the background tasks in ``group`` (the block has begun)."""

    def _stop(self) -> None:
        """The body has ended: no new work (the group is cancelled next)."""


@asynccontextmanager
async def running(
    results: Results[Any], owner: Any = None
) -> AsyncIterator[Results[Any]]:
    """Run ``results``' background tasks while the body runs; close it after.

    ``owner`` (``map``'s TaskScope) is handed to the iterator. Leaving closes
    the iterator and cancels its tasks; the watcher they use closes last.
    """
    with Watcher(fetch_local=results._watch_local()) as watcher:
        async with FirstErrorGroup() as group:
            results._open = True
            results._start(group, watcher, owner)
            try:
                yield results
            finally:
                results._closed = True
                results._stop()
                group.cancel()
