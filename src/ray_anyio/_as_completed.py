"""``as_completed``: the results of refs and awaitables in the order they finish.

Pull-driven: the iterator asks the engine for the next batch of ready refs only
when it has nothing left to hand out, and fetches that batch with one batched
``ray.get``. A task group exists only to follow awaitable items along their
chains; it lives exactly as long as the ``async with`` block.
"""

from __future__ import annotations

import math
from collections import deque
from collections.abc import Sequence
from types import TracebackType
from typing import Any

import anyio
import ray
from anyio.abc import TaskGroup
from ray.exceptions import GetTimeoutError

from ._checks import check_items, check_timeout
from ._engine import Outcome, Watcher, fetch_outcomes, split_ready
from ._slots import resolve_chain
from ._wakeup import checkpoint


def as_completed(
    items: Sequence[Any], *, timeout: float | None = None, with_refs: bool = False
) -> AsCompleted:
    """Iterate over ``(index, value)`` pairs of ``items`` as they finish.

    ``items`` is what :func:`wait` accepts: a list or tuple of ObjectRefs and
    awaitables (a chain is followed to its ref or value). Use it as an async
    context manager; the iterator it gives is only valid inside the block::

        async with ray_anyio.as_completed(refs) as results:
            async for index, value in results:
                ...

    Each position of ``items`` is yielded once, with its index, in the order
    the results reach this node's object store; refs that are there on entry
    come first, in input order. Values are fetched as :func:`get` fetches
    them: the refs that are reported ready together are fetched with one
    batched ``ray.get``. With ``with_refs=True`` a ref is yielded as soon as its
    task has finished (wherever its result is), without fetching it; an
    awaitable that ends in a plain value yields that value. An empty ``items``
    yields nothing.

    Errors: a failed task's error (or an awaitable's exception) is raised by the
    iteration at the point where that item is reached; the items before it
    have been yielded. With ``with_refs=True`` task errors are not raised.

    Timeout and cancellation: ``timeout`` counts from entering the block; when
    the iteration has to wait for a result past it, it raises
    ``ray.exceptions.GetTimeoutError`` (a ``TimeoutError``), and keeps raising it
    afterwards. Each step is a checkpoint; cancelling one leaves the iterator
    usable. Leaving the block (``break``, an exception, a cancellation) cancels
    the awaitables still running and withdraws every registration with Ray;
    Ray tasks are not cancelled (start them with :func:`open_scope` for that).

    Raises:
        TypeError: ``items`` is not a list or tuple of ObjectRefs and
            awaitables, or an argument has the wrong type.
        ValueError: ``timeout`` is negative or NaN.
        RuntimeError: the iterator is used outside its block.
    """
    check_items(items, "as_completed")
    seconds = check_timeout(timeout)
    if not isinstance(with_refs, bool):
        raise TypeError(f"with_refs must be a bool, got {type(with_refs).__name__}")
    return AsCompleted(items, seconds, with_refs)


class AsCompleted:
    """The async context manager and iterator returned by :func:`as_completed`."""

    def __init__(
        self, items: Sequence[Any], seconds: float | None, with_refs: bool
    ) -> None:
        self._items = items
        self._seconds = seconds
        self._with_refs = with_refs
        self._left = len(items)
        self._deadline = math.inf
        self._timed_out = False
        self._entered = False
        self._closed = False
        # Refs registered with the watcher, and refs it reported but whose
        # values are not fetched yet; both map a ref to the indexes it fills.
        self._waiting: dict[ray.ObjectRef[Any], list[int]] = {}
        self._ready: dict[ray.ObjectRef[Any], list[int]] = {}
        self._outcomes: deque[tuple[int, Outcome]] = deque()
        self._watcher: Watcher | None = None
        self._tg: TaskGroup | None = None

    async def __aenter__(self) -> AsCompleted:
        if self._entered:
            raise RuntimeError("as_completed() can only be entered once")
        self._entered = True
        if self._seconds is not None:
            self._deadline = anyio.current_time() + self._seconds
        # Values are fetched once in this node's store, so a fetch never waits
        # for a transfer; refs are yielded once their task has finished.
        self._watcher = Watcher(fetch_local=not self._with_refs)
        self._tg = anyio.create_task_group()
        await self._tg.__aenter__()
        try:
            self._start()
        except BaseException:
            await self.__aexit__(None, None, None)
            raise
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self._closed = True
        assert self._tg is not None and self._watcher is not None
        self._tg.cancel_scope.cancel()
        try:
            await self._tg.__aexit__(None, None, None)
        finally:
            self._watcher.close()

    def __aiter__(self) -> AsCompleted:
        return self

    async def __anext__(self) -> tuple[int, Any]:
        """The next ``(index, value)``; see :func:`as_completed`."""
        if not self._entered or self._closed:
            raise RuntimeError(
                "use the iterator inside `async with as_completed(...) as results:`"
            )
        await checkpoint()
        while not self._outcomes:
            if not self._left:
                raise StopAsyncIteration
            await self._advance()
        index, outcome = self._outcomes.popleft()
        self._left -= 1
        return index, outcome.unwrap()

    def _start(self) -> None:
        assert self._tg is not None and self._watcher is not None
        indexes: dict[ray.ObjectRef[Any], list[int]] = {}
        for index, item in enumerate(self._items):
            if isinstance(item, ray.ObjectRef):
                indexes.setdefault(item, []).append(index)
            else:
                self._tg.start_soon(self._resolve, index, item)
        ready, pending = split_ready(list(indexes), fetch_local=not self._with_refs)
        self._ready = {ref: indexes[ref] for ref in ready}
        self._waiting = {ref: indexes[ref] for ref in pending}
        self._watcher.watch(pending)

    async def _advance(self) -> None:
        """Turn the next ready batch into outcomes, waiting for one if need be."""
        assert self._watcher is not None
        if self._timed_out:
            raise self._timeout_error()
        with anyio.move_on_at(self._deadline) as deadline:
            if not self._ready:
                try:
                    batch = await self._watcher.next_ready()
                except BaseException:
                    # A cancelled next_ready may have taken reports with it:
                    # registering the refs again makes Ray report them again.
                    self._watcher.watch(self._waiting)
                    raise
                for ref in batch:
                    if ref in self._waiting:
                        self._ready[ref] = self._waiting.pop(ref)
            if self._ready:
                await self._take_ready()
        if deadline.cancelled_caught:
            self._timed_out = True
            raise self._timeout_error()

    async def _take_ready(self) -> None:
        refs = list(self._ready)
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
                self._ready[value].append(index)
            elif value in self._waiting:
                self._waiting[value].append(index)
            else:
                self._waiting[value] = [index]
                self._watcher.watch((value,))
        self._watcher.poke()

    def _timeout_error(self) -> GetTimeoutError:
        return GetTimeoutError(
            f"ray_anyio.as_completed timed out after {self._seconds} s"
        )
