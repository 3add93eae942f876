"""``map``: one Ray task per input, a bounded number at a time, results streamed.

Three parts share the state of one ``map`` block: a *feeder* task that starts a
task per input once the limiters let it, a *collector* task that learns from the
engine which tasks have finished (freeing their place at once), and the
iterator, which fetches finished results in batches when the consumer asks.
Tasks are started through a :class:`TaskScope`, so leaving the block cancels
whatever is still running.
"""

from __future__ import annotations

from collections import deque
from collections.abc import AsyncIterable, Callable, Iterable
from types import TracebackType
from typing import Any, Generic, TypeVar, overload

import anyio
import ray

from ._checks import check_positive_int
from ._engine import Outcome, Watcher, fetch_outcomes
from ._scope import DEFAULT_CANCEL_TIMEOUT, RemoteCallable, TaskScope, is_remote
from ._slots import is_awaitable, resolve_chain
from ._wakeup import checkpoint

T = TypeVar("T")

#: Default bound on tasks running at once: enough to keep a small cluster busy,
#: small enough that a long input does not flood the scheduler.
DEFAULT_MAX_IN_FLIGHT = 64


@overload
def map(
    fn: RemoteCallable[T],
    iterable: Iterable[Any] | AsyncIterable[Any],
    *,
    max_in_flight: int = ...,
    ordered: bool = ...,
) -> MapResults[T]: ...
@overload
def map(
    fn: Callable[[Any], Any],
    iterable: Iterable[Any] | AsyncIterable[Any],
    *,
    max_in_flight: int = ...,
    ordered: bool = ...,
) -> MapResults[Any]: ...


def map(
    fn: Any,
    iterable: Iterable[Any] | AsyncIterable[Any],
    *,
    max_in_flight: int = DEFAULT_MAX_IN_FLIGHT,
    ordered: bool = True,
) -> MapResults[Any]:
    """Run ``fn`` on every input as a Ray task and iterate over the results.

    ``fn`` is a ``@ray.remote`` function, an actor method or ``.options(...)`` of
    either (the task is ``fn.remote(x)``), or any other callable whose result
    ``fn(x)`` is an ObjectRef or an awaitable (a chain, followed to its ref or
    plain value). ``iterable`` may be a plain or an async iterable; it is read
    lazily, as places free up. Use it as an async context manager::

        async with ray_anyio.map(square, range(100), max_in_flight=8) as results:
            async for value in results:
                ...

    Bound: at most ``max_in_flight`` tasks run at once (default
    ``DEFAULT_MAX_IN_FLIGHT`` = 64); a new one starts as soon as one finishes,
    not when a whole batch has. So that a slow consumer (or, with
    ``ordered=True``, a slow early task) cannot make finished results pile up,
    at most ``2 * max_in_flight`` inputs are in progress or finished but not
    yet yielded.

    Order: ``ordered=True`` yields in input order, ``ordered=False`` in the order
    the tasks finish. Values are fetched as :func:`get` fetches them, in batches
    of the finished results that are next in line.

    Errors: a failed task raises its error where its result would have been
    yielded; an exception from ``fn(x)`` or from the iterable itself is raised
    after the results of the inputs before it (in input order when
    ``ordered=True``, at once otherwise). Nothing is retried.

    Leaving the block early (``break``, an exception, a cancellation) cancels
    the tasks still running, as :func:`open_scope` does (``force=False``), and
    the awaitables in progress; so does an error raised by the iteration. Refs
    returned by a plain callable ``fn`` count as its tasks and are cancelled
    too (``ray.cancel`` does nothing to objects that are not running tasks).
    Each step of the iteration is a checkpoint.

    Raises:
        TypeError: ``fn`` is not callable and has no ``.remote``; ``iterable`` is
            not iterable; ``fn(x)`` returns something that is neither an
            ObjectRef nor an awaitable (raised in the iteration); a wrong
            argument type.
        ValueError: ``max_in_flight`` is below 1.
        RuntimeError: the iterator is used outside its block.
    """
    remote = is_remote(fn)
    if not remote and not callable(fn):
        raise TypeError(
            "fn must be a @ray.remote function, an actor method or a callable "
            f"returning an ObjectRef or an awaitable, got {type(fn).__name__}"
        )
    if not isinstance(iterable, (Iterable, AsyncIterable)):
        raise TypeError(
            f"iterable must be an iterable or an async iterable, got "
            f"{type(iterable).__name__}"
        )
    check_positive_int(max_in_flight, "max_in_flight")
    if not isinstance(ordered, bool):
        raise TypeError(f"ordered must be a bool, got {type(ordered).__name__}")
    return MapResults(fn, remote, iterable, max_in_flight, ordered)


class MapResults(Generic[T]):
    """The async context manager and iterator returned by :func:`map`."""

    def __init__(
        self,
        fn: Any,
        remote: bool,
        iterable: Iterable[Any] | AsyncIterable[Any],
        max_in_flight: int,
        ordered: bool,
    ) -> None:
        self._fn = fn
        self._remote = remote
        self._iterable = iterable
        self._max_in_flight = max_in_flight
        self._ordered = ordered
        self._scope = TaskScope(force=False, cancel_timeout=DEFAULT_CANCEL_TIMEOUT)
        self._entered = False
        self._closed = False
        self._started = 0  # inputs taken so far; the next one gets this number
        self._next = 0  # ordered=True: the number of the next result to yield
        self._fed_all = False
        self._failure: Exception | None = None  # the engine stopped watching
        # Inputs in progress or not yet yielded, by number: the ref of the task,
        # None while an awaitable resolves, or the Outcome once known.
        self._slots: dict[int, ray.ObjectRef[Any] | Outcome | None] = {}
        self._finished: set[int] = set()  # ready to yield (value maybe unfetched)
        self._by_ref: dict[ray.ObjectRef[Any], list[int]] = {}  # still running
        self._order: deque[int] = deque()  # ordered=False: finished, in order

    async def __aenter__(self) -> MapResults[T]:
        if self._entered:
            raise RuntimeError("map() can only be entered once")
        self._entered = True
        # A place in _running is held while a task runs; one in _window until
        # its result has been yielded.
        self._running = anyio.Semaphore(self._max_in_flight)
        self._window = anyio.Semaphore(2 * self._max_in_flight)
        self._changed = anyio.Event()
        await self._scope.__aenter__()
        self._watcher = Watcher()
        self._tg = anyio.create_task_group()
        try:
            await self._tg.__aenter__()
        except BaseException as exc:
            self._watcher.close()
            await self._scope.__aexit__(type(exc), exc, exc.__traceback__)
            raise
        self._tg.start_soon(self._feed)
        self._tg.start_soon(self._collect)
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> bool:
        self._closed = True
        self._tg.cancel_scope.cancel()
        error: BaseException | None = None
        try:
            await self._tg.__aexit__(None, None, None)
        except BaseException as raised:  # a cancellation from outside
            error = raised
        finally:
            self._watcher.close()
        # Whatever ended the block, tasks still running are not wanted.
        self._scope.cancel()
        if error is None:
            return await self._scope.__aexit__(exc_type, exc, tb)
        if not await self._scope.__aexit__(type(error), error, error.__traceback__):
            raise error
        return False

    def __aiter__(self) -> MapResults[T]:
        return self

    async def __anext__(self) -> T:
        """The next result; see :func:`map`."""
        if not self._entered or self._closed:
            raise RuntimeError(
                "use the iterator inside `async with map(...) as results:`"
            )
        await checkpoint()
        while (number := self._next_finished()) is None:
            if self._failure is not None:
                raise self._failure
            if self._fed_all and not self._slots:
                raise StopAsyncIteration
            self._changed = anyio.Event()
            await self._changed.wait()
        if not isinstance(self._slots[number], Outcome):
            await self._fetch_from(number)
        outcome = self._slots.pop(number)
        assert isinstance(outcome, Outcome)
        self._finished.discard(number)
        if self._ordered:
            self._next += 1
        else:
            self._order.popleft()
        self._window.release()
        value: T = outcome.unwrap()
        return value

    def _next_finished(self) -> int | None:
        if self._ordered:
            return self._next if self._next in self._finished else None
        return self._order[0] if self._order else None

    async def _fetch_from(self, number: int) -> None:
        """Fetch the finished results next in line, starting at ``number``."""
        line = range(number, self._started) if self._ordered else list(self._order)
        numbers: list[int] = []
        refs: list[ray.ObjectRef[Any]] = []
        for n in line:
            if n not in self._finished:
                break
            slot = self._slots[n]
            if isinstance(slot, ray.ObjectRef):
                numbers.append(n)
                refs.append(slot)
        outcomes = await fetch_outcomes(refs)
        for n, ref, outcome in zip(numbers, refs, outcomes, strict=True):
            self._scope._forget(ref)
            self._slots[n] = outcome

    async def _feed(self) -> None:
        try:
            if isinstance(self._iterable, AsyncIterable):
                async for item in self._iterable:
                    await self._submit(item)
            else:
                for item in self._iterable:
                    await self._submit(item)
        except Exception as exc:
            # Raised after the results of the inputs taken before it.
            await self._window.acquire()
            number = self._take_number()
            self._finish(number, Outcome(error=exc), ran=False)
        finally:
            self._fed_all = True
            self._changed.set()

    async def _submit(self, item: Any) -> None:
        await self._window.acquire()
        await self._running.acquire()
        try:
            result = self._start(item)
        except BaseException:
            self._running.release()
            self._window.release()
            raise
        number = self._take_number()
        if isinstance(result, ray.ObjectRef):
            self._watch(number, result)
        else:
            self._tg.start_soon(self._resolve, number, result)

    def _take_number(self) -> int:
        number = self._started
        self._started += 1
        self._slots[number] = None
        return number

    def _start(self, item: Any) -> Any:
        if self._remote:
            result = self._scope.remote(self._fn, item)
        else:
            result = self._fn(item)
            self._scope._track(result)
        if not (isinstance(result, ray.ObjectRef) or is_awaitable(result)):
            raise TypeError(
                "map needs one ObjectRef or awaitable per input; fn returned "
                f"{type(result).__name__}"
            )
        return result

    async def _resolve(self, number: int, awaitable: Any) -> None:
        try:
            value = await resolve_chain(awaitable)
        except Exception as exc:
            self._finish(number, Outcome(error=exc))
            return
        if isinstance(value, ray.ObjectRef):
            self._scope._track(value)
            self._watch(number, value)
        else:
            self._finish(number, Outcome(value))

    def _watch(self, number: int, ref: ray.ObjectRef[Any]) -> None:
        self._slots[number] = ref
        self._by_ref.setdefault(ref, []).append(number)
        self._watcher.watch((ref,))

    async def _collect(self) -> None:
        try:
            while True:
                for ref in await self._watcher.next_ready():
                    for number in self._by_ref.pop(ref, ()):
                        self._finish(number, None)
        except Exception as exc:  # Ray stopped the wait (e.g. shutting down)
            self._failure = exc
            self._changed.set()

    def _finish(
        self, number: int, outcome: Outcome | None, *, ran: bool = True
    ) -> None:
        """Mark input ``number`` finished; give its place to the next task."""
        if outcome is not None:
            self._slots[number] = outcome
        self._finished.add(number)
        if not self._ordered:
            self._order.append(number)
        if ran:
            self._running.release()
        self._changed.set()
