"""The one base of the result iterators (``as_completed``, ``map``, pools).

:class:`Results` holds the progress counters, the guard against use outside
the block, the hand-out of an outcome and of a batch (:class:`Batches`, the
steps of an iterator's ``batches()``); :func:`running` is the block's middle.
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Any, ClassVar, Generic, Protocol, TypeVar

from ._awaitables import discard
from ._first_error import FirstErrorGroup
from ._outcome import Outcome
from ._wakeup import Pace, checkpoint
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
        self._ended = False  # a step has raised StopAsyncIteration
        self._pace = Pace()  # the checkpoints of steps that find a result ready

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
        self._check_open()
        try:
            return await self._next()
        except StopAsyncIteration:
            self._ended = True
            raise

    def _check_open(
        self, doing: str = "use the iterator", *, before_end: bool = False
    ) -> None:
        """Raise ``RuntimeError`` (``doing`` is refused) unless inside the block.

        ``before_end``: refused too once a step has ended the iteration.
        """
        if not self._open or self._closed or (before_end and self._ended):
            until = ", before the iteration has ended" if before_end else ""
            raise RuntimeError(
                f"{doing} inside `async with {self._verb}(...) as results:`{until}"
            )

    def _add(self, item: object) -> int:
        """Count one more item, added while iterating; return its index.

        Raises ``RuntimeError`` outside the block or once a step has ended the
        iteration; an awaitable ``item`` is then closed.
        """
        try:
            self._check_open("add work", before_end=True)
        except RuntimeError:
            discard(item)  # never awaited now: no "never awaited" warning later
            raise
        index = self._submitted
        self._submitted += 1
        if self._total is not None:
            self._total += 1
        return index

    async def _next(self) -> T:
        """The next result: wait for one ready, hand it out; a checkpoint."""
        await self._pace.step()
        await self._wait_ready()
        return self._take()

    async def _next_batch(self) -> list[T]:
        """The next batch: the results ready, up to the first error; a checkpoint.

        A batch ends before an error, which the next step raises; with
        ``return_exceptions`` the errors stay in their batch.
        """
        self._check_open()
        await checkpoint()
        try:
            await self._wait_ready(every=True)
        except StopAsyncIteration:
            self._ended = True
            raise
        batch = [self._take()]
        while (outcome := self._peek()) is not None and (
            self._return_exceptions or outcome.error is None
        ):
            batch.append(self._take())
        return batch

    # The hooks of the steps above; an iterator with a _next of its own
    # (map's) has no use for them.

    async def _wait_ready(self, every: bool = False) -> None:  # pragma: no cover
        """Wait until a result is ready to hand out; ``StopAsyncIteration`` at the end.

        ``every``: make every result reported so far ready too (a batch's).
        """
        raise StopAsyncIteration

    def _peek(self) -> Outcome | None:  # pragma: no cover - as _wait_ready
        """The outcome :meth:`_take` hands out next, or None if none is ready."""
        return None

    def _take(self) -> T:  # pragma: no cover - as _wait_ready
        """Hand out the next ready result (see :meth:`_hand_out`)."""
        raise StopAsyncIteration

    def _hand_out(self, outcome: Outcome) -> Any:
        """Count ``outcome`` as handed out: its value, or its error (or raise it)."""
        if outcome.error is None:
            return self._hand_out_value(outcome.value)
        self._failed += 1
        if self._return_exceptions:
            return outcome.error
        raise outcome.error

    def _hand_out_value(self, value: Any) -> Any:
        """Count ``value`` as handed out; return it."""
        self._completed += 1
        return value

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


class InBatches(Protocol[T]):
    """What hands out lists: a result iterator, a channel's receiver."""

    async def _next_batch(self) -> list[T]: ...


class Batches(AsyncIterator[list[T]]):
    """What an iterator's ``batches()`` returns: its steps are the iterator's."""

    def __init__(self, results: InBatches[T]) -> None:
        self._results = results

    async def __anext__(self) -> list[T]:
        return await self._results._next_batch()
