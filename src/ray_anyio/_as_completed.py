"""``as_completed``: the results of refs and awaitables in the order they finish.

Pull-driven: the next ready batch is taken from the watcher only when nothing
is left to hand out (or when ``batches()`` asks for one), and fetched with one
batched ``ray.get``. Work added while iterating (``add``) takes the same way
as the items given: refs through the watcher, awaitables in the block's group.
"""

from __future__ import annotations

import concurrent.futures
import math
from collections import deque
from collections.abc import AsyncIterator, Awaitable, Sequence
from typing import TYPE_CHECKING, Any, TypeVar, overload

import anyio
import ray
from ray.exceptions import GetTimeoutError

from ._core._awaitables import start_resolving
from ._core._block import Block, block
from ._core._checks import check_bool, check_item, check_items, check_timeout
from ._core._fetch import fetch_outcomes
from ._core._first_error import FirstErrorGroup
from ._core._multimap import MultiMap
from ._core._outcome import Outcome
from ._core._readiness import split_ready
from ._core._reports import take_reports
from ._core._results import Batches, Results, running
from ._core._watcher import Watcher

if TYPE_CHECKING:
    Ref = ray.ObjectRef[Any]

T = TypeVar("T")


@overload
def as_completed(
    items: Sequence[ray.ObjectRef[T]],
    *,
    timeout: float | None = ...,
    with_refs: bool = ...,
    return_exceptions: bool = ...,
) -> Block[AsCompleted[T]]: ...
@overload
def as_completed(
    items: Sequence[Any],
    *,
    timeout: float | None = ...,
    with_refs: bool = ...,
    return_exceptions: bool = ...,
) -> Block[AsCompleted[Any]]: ...


def as_completed(
    items: Sequence[Any],
    *,
    timeout: float | None = None,
    with_refs: bool = False,
    return_exceptions: bool = False,
) -> Block[AsCompleted[Any]]:
    """Iterate over ``(index, value)`` pairs of ``items`` as they finish.

    ``items`` is what :func:`wait` accepts. The iterator is only valid inside
    the block::

        async with ray_anyio.as_completed(refs) as results:
            async for index, value in results:
                ...

    Each position is yielded once, as its result reaches this node's store
    (refs already there first, in input order), fetched in batches; with
    ``with_refs=True`` a ref is yielded unfetched once its task has finished.
    An awaitable is followed along its chain; an empty ``items`` yields
    nothing. Progress is counted (see :class:`AsCompleted`). Work can be
    added while iterating (:meth:`AsCompleted.add`), and results taken as
    lists of what has arrived (:meth:`AsCompleted.batches`).

    Errors: a failure is raised when its item is reached (the items before
    it have been yielded), or yielded as ``(index, exception)`` with
    ``return_exceptions=True``. With ``with_refs=True`` task errors are not
    raised.

    Timeout and cancellation: ``timeout`` counts from entering the block;
    waiting for a result past it raises ``ray.exceptions.GetTimeoutError`` (a
    ``TimeoutError``), then again on every step. Each step is a checkpoint
    (as :func:`map`'s); cancelling one leaves the iterator usable. Leaving
    the block cancels the awaitables still running (given or added) and
    withdraws every registration with Ray. **Ray tasks are not cancelled**:
    to stop the rest after the first good result, start them in an
    :func:`open_scope` and call ``scope.cancel()`` (the docs' recipe).

    Raises:
        TypeError: ``items`` is not a list or tuple of ObjectRefs and
            awaitables, or an argument has the wrong type.
        ValueError: ``timeout`` is negative or NaN.
        RuntimeError: the iterator is used outside its block.
        ray.exceptions.RaySystemError: Ray is not running, or stopped.
    """
    check_items(items, "as_completed")
    seconds = check_timeout(timeout)
    check_bool(with_refs, "with_refs")
    check_bool(return_exceptions, "return_exceptions")
    return _block(AsCompleted(items, seconds, with_refs, return_exceptions))


@block("as_completed")
async def _block(results: AsCompleted[T]) -> AsyncIterator[AsCompleted[T]]:
    async with running(results):
        yield results


class AsCompleted(Results[tuple[int, T]]):
    """The iterator of an :func:`as_completed` block, with progress counters.

    ``total`` and ``submitted`` are ``len(items)`` plus the items added;
    ``completed`` and ``failed`` count the results handed out, with a value
    and with an error.
    """

    _verb = "as_completed"

    def __init__(
        self,
        items: Sequence[Any],
        seconds: float | None,
        with_refs: bool,
        return_exceptions: bool,
    ) -> None:
        super().__init__(len(items), return_exceptions)
        self._items = items
        self._seconds = seconds
        self._with_refs = with_refs
        self._deadline = math.inf
        self._timed_out = False
        # Registered with the watcher; reported but not fetched yet.
        self._waiting: MultiMap[Ref, int] = MultiMap()
        self._ready: MultiMap[Ref, int] = MultiMap()
        self._outcomes: deque[tuple[int, Outcome]] = deque()
        self._watcher: Watcher | None = None
        self._group: FirstErrorGroup | None = None

    def add(
        self, item: ray.ObjectRef[T] | Awaitable[Any] | concurrent.futures.Future[Any]
    ) -> int:
        """Add ``item`` (a ref or an awaitable, as in ``items``); return its index.

        Its index is ``len(items)`` plus the number added before it. It is
        delivered once, as a given item; the iteration ends when every given
        and added item has been delivered. ``total`` and ``submitted`` count
        it. Add from the loop body or another task of the loop, in the block::

            async for index, links in results:
                for link in links:
                    results.add(crawl.remote(link))

        Not a checkpoint. An added awaitable runs in the block and is
        cancelled when the block ends, as a given one; a ref's task is not
        cancelled. ``timeout`` keeps counting from entering the block.

        Raises:
            TypeError: ``item`` is not an ObjectRef or an awaitable.
            RuntimeError: outside the block, or a step has ended the iteration
                (an awaitable ``item`` is then closed).
            ray.exceptions.RaySystemError: Ray is not running, or stopped.
        """
        check_item(item, "item", "add", one=True)
        index = self._add(item)
        if isinstance(item, ray.ObjectRef):
            self._place(index, item)
        else:
            assert self._group is not None
            start_resolving(self._group, [(index, item)], self._found)
        return index

    def batches(self) -> AsyncIterator[list[tuple[int, T]]]:
        """Iterate over lists of the ``(index, value)`` pairs that have arrived.

        A step waits for one result, then takes every one ready (one batched
        ``ray.get``). It ends when every given and added item has been
        delivered. Mixed with ``async for`` over ``results``, each item is
        still delivered once, by whichever step comes first.

        Errors: a batch stops before a failure, which the next step raises;
        with ``return_exceptions=True`` it is in its batch as the value.
        Timeout and cancellation: each step is a checkpoint, and a cancelled
        one loses nothing; past ``timeout`` a step that finds nothing arrived
        raises ``GetTimeoutError``. After any exception, the same iterator (or
        a new ``batches()``) continues where it stopped.

        Raises:
            RuntimeError: a step is taken outside the block.
        """
        return Batches(self)

    def _peek(self) -> Outcome | None:
        return self._outcomes[0][1] if self._outcomes else None

    def _take(self) -> tuple[int, T]:
        index, outcome = self._outcomes.popleft()
        return index, self._hand_out(outcome)

    async def _wait_ready(self, every: bool = False) -> None:
        if every and self._outcomes:
            await self._advance()  # what has been reported joins this batch
        while not self._outcomes:
            if self.in_flight == 0:
                raise StopAsyncIteration
            await self._advance()

    def _watch_local(self) -> bool:
        # Fetch once local (never waiting for a transfer); refs once finished.
        return not self._with_refs

    def _start(self, group: FirstErrorGroup, watcher: Watcher, owner: Any) -> None:
        self._watcher = watcher
        self._group = group
        if self._seconds is not None:
            self._deadline = anyio.current_time() + self._seconds
        refs: MultiMap[Ref, int] = MultiMap()
        others: list[tuple[int, Any]] = []
        for index, item in enumerate(self._items):
            if isinstance(item, ray.ObjectRef):
                refs.add(item, index)
            else:
                others.append((index, item))
        start_resolving(group, others, self._found)
        self._submitted = len(self._items)
        ready, pending = split_ready(refs.keys(), fetch_local=not self._with_refs)
        for ref in ready:
            for index in refs.pop(ref):
                self._ready.add(ref, index)
        self._waiting = refs
        watcher.watch(pending)

    async def _advance(self) -> None:
        """Fetch every reported result in one batch; wait for one if none is out."""
        assert self._watcher is not None
        waiting = not self._outcomes
        if waiting and self._timed_out:
            raise self._timeout_error()
        with anyio.move_on_at(self._deadline if waiting else math.inf) as deadline:
            self._reported(self._watcher.take_arrived())
            # A cancelled wait loses no report (the watcher's promise).
            await take_reports(
                self._watcher,
                self._reported,
                until=lambda: bool(self._ready or self._outcomes),
            )
            if self._ready:
                await self._take_ready()
        if deadline.cancelled_caught:
            self._timed_out = True
            raise self._timeout_error()

    def _reported(self, batch: list[Ref]) -> None:
        for ref in batch:
            for index in self._waiting.pop(ref):
                self._ready.add(ref, index)

    async def _take_ready(self) -> None:
        refs = self._ready.keys()
        if self._with_refs:
            outcomes = [Outcome(ref) for ref in refs]
        else:
            outcomes = await fetch_outcomes(refs)
        for ref, outcome in zip(refs, outcomes, strict=True):
            for index in self._ready.pop(ref):
                self._outcomes.append((index, outcome))

    def _found(self, index: int, outcome: Outcome) -> None:
        """Item ``index`` resolved: its ref to wait for, or its outcome."""
        if isinstance(outcome.value, ray.ObjectRef):
            self._place(index, outcome.value)
        else:
            self._outcomes.append((index, outcome))
        assert self._watcher is not None
        self._watcher.poke()

    def _place(self, index: int, ref: Ref) -> None:
        """Wait for ``ref`` at ``index``: with its fetch if one is due, else watched."""
        assert self._watcher is not None
        if ref in self._ready:
            self._ready.add(ref, index)
        elif self._waiting.add(ref, index):
            # A failure to register is raised by add(), or through the group.
            self._watcher.watch((ref,))

    def _timeout_error(self) -> GetTimeoutError:
        return GetTimeoutError(
            f"ray_anyio.as_completed timed out after {self._seconds} s"
        )
