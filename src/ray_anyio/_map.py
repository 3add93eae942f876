"""``map``: one Ray task per input, a bounded number at a time, results streamed.

Three parts share the state of one ``map`` block: a *feeder* task that starts a
task per input once the limiters let it, a *collector* task that learns from
the watcher which tasks have finished (freeing their place at once), and the
iterator, which fetches finished results in batches when the consumer asks.
Tasks are started through an :func:`open_scope`, so leaving the block cancels
whatever is still running.
"""

from __future__ import annotations

from collections import deque
from collections.abc import (
    AsyncGenerator,
    AsyncIterable,
    AsyncIterator,
    Callable,
    Iterable,
)
from typing import TYPE_CHECKING, Any, Generic, TypeVar, overload

import anyio
import ray

from ._core._block import Block, block
from ._core._fetch import Outcome, fetch_outcomes
from ._core._first_error import FirstErrorGroup
from ._core._inputs import (
    check_bool,
    check_positive_int,
    check_timeout,
    is_awaitable,
    resolve_chain,
)
from ._core._positions import Positions
from ._core._progress import Progress
from ._core._rate import StartLimiter, check_rate
from ._core._wakeup import checkpoint
from ._core._watcher import Watcher
from ._scope import (
    DEFAULT_CANCEL_TIMEOUT,
    RemoteCallable,
    TaskScope,
    is_remote,
    open_scope,
)

if TYPE_CHECKING:
    Ref = ray.ObjectRef[Any]

T = TypeVar("T")

#: Default bound on tasks running at once: enough to keep a small cluster busy,
#: small enough that a long input does not flood the scheduler.
DEFAULT_MAX_IN_FLIGHT = 64


@overload
def map(
    fn: RemoteCallable[T],
    /,
    *iterables: Iterable[Any] | AsyncIterable[Any],
    max_in_flight: int = ...,
    max_per_second: float | None = ...,
    ordered: bool = ...,
    return_exceptions: bool = ...,
    force: bool = ...,
    cancel_timeout: float | None = ...,
) -> Block[MapResults[T]]: ...
@overload
def map(
    fn: Callable[..., Any],
    /,
    *iterables: Iterable[Any] | AsyncIterable[Any],
    max_in_flight: int = ...,
    max_per_second: float | None = ...,
    ordered: bool = ...,
    return_exceptions: bool = ...,
    force: bool = ...,
    cancel_timeout: float | None = ...,
) -> Block[MapResults[Any]]: ...


def map(
    fn: Any,
    /,
    *iterables: Iterable[Any] | AsyncIterable[Any],
    max_in_flight: int = DEFAULT_MAX_IN_FLIGHT,
    max_per_second: float | None = None,
    ordered: bool = True,
    return_exceptions: bool = False,
    force: bool = False,
    cancel_timeout: float | None = DEFAULT_CANCEL_TIMEOUT,
) -> Block[MapResults[Any]]:
    """Run ``fn`` on every input as a Ray task and iterate over the results.

    ``fn`` is a ``@ray.remote`` function, an actor method or ``.options(...)`` of
    either (the task is ``fn.remote(*args)``), or any other callable whose result
    ``fn(*args)`` is an ObjectRef or an awaitable (a chain, followed to its ref
    or plain value). Several iterables are zipped, stopping at the shortest, as
    the builtin ``map`` does: ``map(add, xs, ys)`` starts ``add.remote(x, y)``.
    Each may be a plain or an async iterable; they are read lazily, as places
    free up. Use it as an async context manager::

        async with ray_anyio.map(square, range(100), max_in_flight=8) as results:
            async for value in results:
                ...

    Limits: at most ``max_in_flight`` tasks run at once; a new one starts as
    soon as one finishes, not when a whole batch has. So that a slow consumer
    (or, with ``ordered=True``, a slow early task) cannot make finished results
    pile up, at most ``2 * max_in_flight`` inputs are in progress or finished
    but not yet yielded. ``max_per_second`` allows at most that many starts in
    any one-second window (``None``: no limit).

    Order: ``ordered=True`` yields in input order, ``ordered=False`` in the order
    the tasks finish. Values are fetched as :func:`get` fetches them, in batches
    of the finished results that are next in line. The iterator counts its
    progress (see :class:`MapResults`).

    Errors: a failed task raises its error where its result would have been
    yielded, and leaving the block cancels the rest; with
    ``return_exceptions=True`` the error is yielded in its place instead and
    the iteration goes on. An exception from ``fn(*args)`` counts as that
    item's error. An exception from an iterable itself is raised after the
    results of the inputs before it, whatever ``return_exceptions`` says.
    Nothing is retried. An error of the machinery (Ray stopped) is raised at
    once.

    Leaving the block (the end, ``break``, an exception, a cancellation)
    cancels the tasks still running as :func:`open_scope` does, with ``force``
    and ``cancel_timeout``: a polite ``ray.cancel``, then ``force=True`` after
    ``cancel_timeout`` seconds, so a deadline around the block holds within
    ``cancel_timeout`` + 1 s. Refs returned by a plain callable ``fn`` count as
    its tasks. Each step of the iteration is a checkpoint.

    Raises:
        TypeError: ``fn`` is not callable and has no ``.remote``; no iterable,
            or one is not iterable; ``fn(*args)`` returns something that is
            neither an ObjectRef nor an awaitable (raised in the iteration, as
            that item's error); a wrong argument type.
        ValueError: ``max_in_flight`` is below 1, ``max_per_second`` is not
            positive and finite, or ``cancel_timeout`` is negative or NaN.
        RuntimeError: the iterator is used outside its block.
        ray.exceptions.RaySystemError: Ray is not running, or stopped.
    """
    remote = is_remote(fn)
    if not remote and not callable(fn):
        raise TypeError(
            "fn must be a @ray.remote function, an actor method or a callable "
            f"returning an ObjectRef or an awaitable, got {type(fn).__name__}"
        )
    if not iterables:
        raise TypeError("map() needs at least one iterable of inputs after fn")
    for position, iterable in enumerate(iterables):
        if not isinstance(iterable, (Iterable, AsyncIterable)):
            name = "iterable" if len(iterables) == 1 else f"iterables[{position}]"
            raise TypeError(
                f"{name} must be an iterable or an async iterable, got "
                f"{type(iterable).__name__}"
            )
    check_positive_int(max_in_flight, "max_in_flight")
    rate = check_rate(max_per_second, "max_per_second")
    check_bool(ordered, "ordered")
    check_bool(return_exceptions, "return_exceptions")
    check_bool(force, "force")
    seconds = check_timeout(cancel_timeout, "cancel_timeout")
    results: MapResults[Any] = MapResults(
        fn, remote, iterables, max_in_flight, rate, ordered, return_exceptions
    )
    return _block(results, force, seconds)


@block("map")
async def _block(
    results: MapResults[T], force: bool, cancel_timeout: float | None
) -> AsyncIterator[MapResults[T]]:
    async with open_scope(force=force, cancel_timeout=cancel_timeout) as scope:
        with Watcher() as watcher:
            async with FirstErrorGroup() as group:
                results._start(scope, watcher, group)
                try:
                    yield results
                finally:
                    results._closed = True
                    group.cancel()
        scope.cancel()  # whatever still runs is not wanted


def _length(iterables: tuple[Any, ...]) -> int | None:
    lengths = [len(i) for i in iterables if hasattr(i, "__len__")]
    return min(lengths) if len(lengths) == len(iterables) else None


async def _zipped(iterables: tuple[Any, ...]) -> AsyncGenerator[tuple[Any, ...], None]:
    """The inputs as argument tuples, from plain and async iterables alike."""
    if all(isinstance(i, Iterable) for i in iterables):
        for args in zip(*iterables, strict=False):  # the shortest ends it
            yield args
        return
    iterators = [
        aiter(i) if isinstance(i, AsyncIterable) else iter(i) for i in iterables
    ]
    while True:
        row: list[Any] = []
        for iterator in iterators:
            try:
                if isinstance(iterator, AsyncIterator):
                    row.append(await anext(iterator))
                else:
                    row.append(next(iterator))
            except (StopIteration, StopAsyncIteration):
                return
        yield tuple(row)


class MapResults(Progress, Generic[T]):
    """The iterator of a :func:`map` block, with progress counters.

    ``submitted`` counts the inputs taken (tasks started, and calls of ``fn``
    that failed), ``completed`` and ``failed`` the results handed out, and
    ``total`` the shortest input length when every iterable has a length.
    """

    def __init__(
        self,
        fn: Any,
        remote: bool,
        iterables: tuple[Any, ...],
        max_in_flight: int,
        rate: float | None,
        ordered: bool,
        return_exceptions: bool,
    ) -> None:
        super().__init__(total=_length(iterables))
        self._fn = fn
        self._remote = remote
        self._iterables = iterables
        self._max_in_flight = max_in_flight
        self._limiter = StartLimiter(rate) if rate is not None else None
        self._ordered = ordered
        self._return_exceptions = return_exceptions
        self._entered = False
        self._closed = False
        self._next = 0  # ordered=True: the number of the next result to yield
        self._fed_all = False
        self._fatal: int | None = None  # the number of an iterable's error
        # Inputs in progress or not yet yielded, by number: the ref of the task,
        # None while an awaitable resolves, or the Outcome once known.
        self._slots: dict[int, Ref | Outcome | None] = {}
        self._finished: set[int] = set()  # ready to yield (value maybe unfetched)
        self._running_refs = Positions()  # ref -> numbers, while running
        self._order: deque[int] = deque()  # ordered=False: finished, in order

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
        if outcome.error is None:
            self._completed += 1
            return outcome.value  # type: ignore[no-any-return]
        if number == self._fatal:
            raise outcome.error
        self._failed += 1
        if self._return_exceptions:
            return outcome.error  # type: ignore[return-value]
        raise outcome.error

    def _start(
        self, scope: TaskScope, watcher: Watcher, group: FirstErrorGroup
    ) -> None:
        self._entered = True
        self._scope = scope
        self._watcher = watcher
        self._group = group
        # A place in _running is held while a task runs; one in _window until
        # its result has been yielded.
        self._running = anyio.Semaphore(self._max_in_flight)
        self._window = anyio.Semaphore(2 * self._max_in_flight)
        self._changed = anyio.Event()
        group.start_soon(self._feed)
        group.start_soon(self._collect)

    def _next_finished(self) -> int | None:
        if self._ordered:
            return self._next if self._next in self._finished else None
        return self._order[0] if self._order else None

    async def _fetch_from(self, number: int) -> None:
        """Fetch the finished results next in line, starting at ``number``."""
        line = range(number, self._submitted) if self._ordered else list(self._order)
        numbers: list[int] = []
        refs: list[Ref] = []
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
        inputs = _zipped(self._iterables)
        try:
            while True:
                # Only the input's own errors are caught here: one raised by
                # the machinery while starting a task fails the whole block.
                try:
                    args = await anext(inputs)
                except StopAsyncIteration:
                    break
                except Exception as exc:
                    # Raised after the results of the inputs taken before it.
                    await self._window.acquire()
                    number = self._take_number()
                    self._fatal = number
                    self._finish(number, Outcome(error=exc), ran=False)
                    break
                await self._window.acquire()
                await self._running.acquire()
                if self._limiter is not None:
                    await self._limiter.wait()
                self._submit(args)
        finally:
            self._fed_all = True
            self._changed.set()
            await inputs.aclose()

    def _submit(self, args: tuple[Any, ...]) -> None:
        number = self._take_number()
        try:
            result = self._call(args)
        except Exception as exc:  # the item's own error (bad arguments, ...)
            self._finish(number, Outcome(error=exc))
            return
        if isinstance(result, ray.ObjectRef):
            self._watch(number, result)
        else:
            self._group.start_soon(self._resolve, number, result)

    def _call(self, args: tuple[Any, ...]) -> Any:
        if self._remote:
            return self._scope.remote(self._fn, *args)
        result = self._fn(*args)
        self._scope._track(result)
        if not (isinstance(result, ray.ObjectRef) or is_awaitable(result)):
            raise TypeError(
                "map needs one ObjectRef or awaitable per input; fn returned "
                f"{type(result).__name__}"
            )
        return result

    def _take_number(self) -> int:
        number = self._submitted
        self._submitted += 1
        self._slots[number] = None
        return number

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

    def _watch(self, number: int, ref: Ref) -> None:
        # A failure to register is the machinery's: it fails the block.
        self._slots[number] = ref
        if self._running_refs.add(ref, number):
            self._watcher.watch((ref,))

    async def _collect(self) -> None:
        while True:
            for ref in await self._watcher.next_ready():
                for number in self._running_refs.pop(ref):
                    self._finish(number, None)

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
