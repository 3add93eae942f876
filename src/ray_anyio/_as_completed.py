"""``as_completed``: the results of refs and awaitables in the order they finish.

Pull-driven: the next ready batch is taken from the watcher only when nothing
is left to hand out, and fetched with one batched ``ray.get``.
"""

from __future__ import annotations

import math
from collections import deque
from collections.abc import AsyncIterator, Sequence
from typing import TYPE_CHECKING, Any, TypeVar, overload

import anyio
import ray
from ray.exceptions import GetTimeoutError

from ._core._awaitables import resolve_chain
from ._core._block import Block, block
from ._core._checks import check_bool, check_items, check_timeout
from ._core._fetch import fetch_outcomes
from ._core._first_error import FirstErrorGroup
from ._core._multimap import MultiMap
from ._core._outcome import Outcome
from ._core._readiness import split_ready
from ._core._reports import take_reports
from ._core._results import Results, running
from ._core._wakeup import checkpoint
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
    nothing. Progress is counted (see :class:`AsCompleted`).

    Errors: a failure is raised when its item is reached (the items before
    it have been yielded), or yielded as ``(index, exception)`` with
    ``return_exceptions=True``. With ``with_refs=True`` task errors are not
    raised.

    Timeout and cancellation: ``timeout`` counts from entering the block;
    waiting for a result past it raises ``ray.exceptions.GetTimeoutError`` (a
    ``TimeoutError``), then again on every step. Each step is a checkpoint;
    cancelling one leaves the iterator usable. Leaving the block cancels the
    awaitables still running and withdraws every registration with Ray.
    **Ray tasks are not cancelled**: to stop the rest after the first good
    result, start them in an :func:`open_scope` and call ``scope.cancel()``
    (the docs' recipe).

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

    ``total`` and ``submitted`` are ``len(items)``; ``completed`` and
    ``failed`` count the results handed out, with a value and with an error.
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

    async def _next(self) -> tuple[int, T]:
        """The next ``(index, value)``; see :func:`as_completed`."""
        await checkpoint()
        while not self._outcomes:
            if self.in_flight == 0:
                raise StopAsyncIteration
            await self._advance()
        index, outcome = self._outcomes.popleft()
        return index, self._hand_out(outcome)

    def _watch_local(self) -> bool:
        # Fetch once local (never waiting for a transfer); refs once finished.
        return not self._with_refs

    def _start(self, group: FirstErrorGroup, watcher: Watcher, owner: Any) -> None:
        self._watcher = watcher
        if self._seconds is not None:
            self._deadline = anyio.current_time() + self._seconds
        refs: MultiMap[Ref, int] = MultiMap()
        for index, item in enumerate(self._items):
            if isinstance(item, ray.ObjectRef):
                refs.add(item, index)
            else:
                group.start_soon(self._resolve, index, item)
        self._submitted = len(self._items)
        ready, pending = split_ready(refs.keys(), fetch_local=not self._with_refs)
        for ref in ready:
            for index in refs.pop(ref):
                self._ready.add(ref, index)
        self._waiting = refs
        watcher.watch(pending)

    async def _advance(self) -> None:
        """Turn the next ready batch into outcomes, waiting for one if need be."""
        assert self._watcher is not None
        if self._timed_out:
            raise self._timeout_error()
        with anyio.move_on_at(self._deadline) as deadline:
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

    async def _resolve(self, index: int, item: Any) -> None:
        assert self._watcher is not None
        try:
            value = await resolve_chain(item)
        except Exception as exc:
            self._outcomes.append((index, Outcome(error=exc)))
        else:
            if not isinstance(value, ray.ObjectRef):
                self._outcomes.append((index, Outcome(value)))
            elif value in self._ready:
                self._ready.add(value, index)
            elif self._waiting.add(value, index):
                # A failure to register reaches the caller through the group.
                self._watcher.watch((value,))
        self._watcher.poke()

    def _timeout_error(self) -> GetTimeoutError:
        return GetTimeoutError(
            f"ray_anyio.as_completed timed out after {self._seconds} s"
        )
