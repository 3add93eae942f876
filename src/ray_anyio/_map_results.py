"""The iterator of a ``map`` block: its feeder, its collector, its results.

A *feeder* task starts a task per input once the limiters let it; a
*collector* task learns from the watcher which have finished (freeing their
place at once); the iterator fetches finished results in batches on demand.
"""

from __future__ import annotations

import inspect
from collections import deque
from collections.abc import AsyncIterator
from functools import partial
from typing import TYPE_CHECKING, Any, TypeVar

import anyio
import anyio.to_thread
import ray

from ._checkpoint import Checkpoint, function_digest
from ._core import _ray
from ._core._awaitables import resolve_chain
from ._core._cancel import cancel_tasks
from ._core._checks import call_refs, check_result
from ._core._deadlines import Deadlines
from ._core._fetch import fetch_outcomes
from ._core._first_error import FirstErrorGroup
from ._core._multimap import MultiMap
from ._core._outcome import Outcome
from ._core._rate import StartLimiter
from ._core._reports import take_reports
from ._core._results import Results
from ._core._wakeup import checkpoint
from ._core._watcher import Watcher
from ._core._zip import length, zipped
from ._retry import Retry
from ._scope import TaskScope, disown, own

if TYPE_CHECKING:
    Ref = ray.ObjectRef[Any]

T = TypeVar("T")


class MapResults(Results[T]):
    """The iterator of a :func:`map` block, with progress counters.

    ``submitted`` counts the inputs taken (including failed calls of ``fn``);
    ``total`` is the shortest input length when every iterable has one.
    """

    _verb = "map"

    def __init__(
        self,
        fn: Any,
        remote: bool,
        iterables: tuple[Any, ...],
        max_in_flight: int,
        rate: float | None,
        ordered: bool,
        return_exceptions: bool,
        held: int,
        retry: Retry | None = None,
        item_timeout: float | None = None,
        cancel: tuple[bool, float | None] = (False, 0),
        checkpoint: str | None = None,
    ) -> None:
        super().__init__(length(iterables), return_exceptions)
        # How many finished results may wait, beyond those running, for an
        # earlier one (ordered) or for the consumer: memory stays bounded.
        self._held = held
        self._fn = fn
        self._remote = remote
        self._iterables = iterables
        self._max_in_flight = max_in_flight
        self._limiter = StartLimiter(rate) if rate is not None else None
        self._async = inspect.iscoroutinefunction(fn)
        self._ordered = ordered
        self._numbers = 0  # numbers given, inputs and an iterable's error
        self._next_number = 0  # ordered=True: the number of the next result to yield
        self._fed_all = False
        self._fatal: int | None = None  # the number of an iterable's error
        # Inputs in progress or not yet yielded, by number: the ref of the task,
        # None while an awaitable resolves, or the Outcome once known.
        self._slots: dict[int, Ref | list[Ref] | Outcome | None] = {}
        self._finished: set[int] = set()  # ready to yield (value maybe unfetched)
        self._running_refs: MultiMap[Ref, int] = MultiMap()  # while running
        self._order: deque[int] = deque()  # ordered=False: finished, in order
        self._running: anyio.Semaphore | None = None
        #: Inputs per task, at most (chunks): the window counts inputs.
        self._window_factor = 1
        # Retries and item timeouts need an item's outcome when its task ends
        # (fetched then: eager), its arguments to start it again, its failures.
        self._retry = retry
        self._deadlines = None if item_timeout is None else Deadlines[int](item_timeout)
        self._cancel = cancel  # (force, cancel_timeout) for an expired item's task
        self._eager = retry is not None or item_timeout is not None
        self._args: dict[int, tuple[Any, ...]] = {}
        self._failures: dict[int, int] = {}
        self._retried = 0
        # A checkpoint: results come from it and go to it, keyed by number and
        # arguments (kept until the result is handed out).
        self._checkpoint_path = checkpoint
        self._store: Checkpoint | None = None
        self._keep_args = self._eager or checkpoint is not None
        self._from_store: set[int] = set()
        self._restored = 0

    @property
    def retried(self) -> int:
        """How many times an item was started again (see :class:`Retry`)."""
        return self._retried

    @property
    def restored(self) -> int:
        """How many results came from the ``checkpoint`` file, not from a task."""
        return self._restored

    async def _next(self) -> T:
        """The next result; see :func:`map`."""
        # Waiting is the step's checkpoint; a ready result or the end takes one.
        if self._next_finished() is not None:
            await checkpoint()
        while (number := self._next_finished()) is None:
            if self._fed_all and not self._slots:
                await checkpoint()
                raise StopAsyncIteration
            self._changed = anyio.Event()
            await self._changed.wait()
        if not isinstance(self._slots[number], Outcome):
            await self._fetch_from(number)
        outcome = self._slots.pop(number)
        assert isinstance(outcome, Outcome)
        self._finished.discard(number)
        if self._ordered:
            self._next_number += 1
        else:
            self._order.popleft()
        self._window.release()
        if number == self._fatal:
            raise outcome.unwrap()  # an iterable's error: no item's
        if self._store is not None:
            outcome = self._commit(number, outcome)
        return self._hand_out(outcome)  # type: ignore[no-any-return]

    def _commit(self, number: int, outcome: Outcome) -> Outcome:
        """Store a result as it is handed out; one that cannot be is its error."""
        assert self._store is not None
        args = self._args.pop(number)
        if number in self._from_store:
            self._from_store.discard(number)
        elif outcome.error is None or self._return_exceptions:
            try:
                self._store.commit(number, args, outcome)
            except TypeError as exc:  # cannot be pickled: this item's error only
                return Outcome(error=exc)
        return outcome

    def _restore(
        self, numbers: list[int], group: list[tuple[Any, ...]]
    ) -> tuple[list[int], list[tuple[Any, ...]]]:
        """Finish the inputs the checkpoint holds; return the others."""
        assert self._store is not None
        if self._closed:  # the block is ending (the file is closed): start nothing
            return [], []
        todo: tuple[list[int], list[tuple[Any, ...]]] = ([], [])
        for number, args in zip(numbers, group, strict=True):
            try:
                outcome = self._store.restored(number, args)
            except TypeError as exc:  # its arguments cannot be pickled
                outcome = Outcome(error=exc)
            if outcome is None:
                todo[0].append(number)
                todo[1].append(args)
                continue
            self._from_store.add(number)
            self._restored += 1
            self._done(number, outcome, ran=False)
        return todo

    def _start(self, group: FirstErrorGroup, watcher: Watcher, owner: Any) -> None:
        self._scope: TaskScope = owner
        self._watcher = watcher
        self._group = group
        # A place in _running is held while a task runs, one in _window until
        # its result is yielded. The feeder, their only taker, need not yield
        # for the window (_running yields once per start: others get to run).
        self._window = anyio.Semaphore(
            (self._max_in_flight + self._held) * self._window_factor, fast_acquire=True
        )
        self._changed = anyio.Event()
        if self._checkpoint_path is not None:
            # Opened here (a few ms, once), so that a file another run holds
            # is an error of the block's entry.
            body = _ray.python_function(self._fn) or self._fn
            self._store = Checkpoint.open(self._checkpoint_path, function_digest(body))
        group.start_soon(self._feed)
        group.start_soon(self._collect)
        if self._deadlines is not None:
            group.start_soon(self._deadlines.run, self._expire)

    def _stop(self) -> None:
        if self._store is not None:
            self._store.close()

    def _next_finished(self) -> int | None:
        if self._ordered:
            return self._next_number if self._next_number in self._finished else None
        return self._order[0] if self._order else None

    async def _fetch_from(self, number: int) -> None:
        """Fetch the finished results next in line, starting at ``number``."""
        line = range(number, self._numbers) if self._ordered else list(self._order)
        numbers: list[int] = []
        for n in line:
            if n not in self._finished:
                break
            if not isinstance(self._slots[n], Outcome):
                numbers.append(n)
        await self._fetch_calls(numbers)

    async def _fetch_calls(self, numbers: list[int]) -> None:
        """Turn the calls of ``numbers`` into outcomes with one batched fetch.

        A call with ``num_returns=k`` has k refs: its value is the list of
        their values, and its error the first of theirs.
        """
        calls = [self._slots[n] for n in numbers]
        many: list[list[Ref]] = [
            call if isinstance(call, list) else [call]  # type: ignore[list-item]
            for call in calls
        ]
        outcomes = iter(await fetch_outcomes([ref for refs in many for ref in refs]))
        for n, call, refs in zip(numbers, calls, many, strict=True):
            part = [next(outcomes) for _ in refs]
            disown(self._scope, refs[0])
            failed = [outcome for outcome in part if outcome.error is not None]
            if failed or not isinstance(call, list):
                self._slots[n] = (failed or part)[0]
            else:
                self._slots[n] = Outcome([outcome.value for outcome in part])

    async def _feed(self) -> None:
        inputs = zipped(self._iterables)
        try:
            while True:
                group, error, ended = await self._read(inputs)
                numbers = [self._take_number() for _ in group]
                if self._keep_args:
                    self._args.update(zip(numbers, group, strict=True))
                if self._store is not None:
                    numbers, group = self._restore(numbers, group)
                if group:
                    place = await self._take_place()
                    if self._limiter is not None:
                        await self._limiter.wait()
                    self._start_group(numbers, place, group)
                if error is not None:
                    # Raised after the results of the inputs taken before it.
                    await self._window.acquire()
                    number = self._take_number(count=False)
                    self._fatal = number
                    self._done(number, Outcome(error=error), ran=False)
                if error is not None or ended:
                    break
        finally:
            self._fed_all = True
            self._changed.set()
            await inputs.aclose()

    async def _read(
        self, inputs: AsyncIterator[tuple[Any, ...]]
    ) -> tuple[list[tuple[Any, ...]], Exception | None, bool]:
        """The next inputs of one task, each holding a place in the window.

        Returns them, an error of the input (after them), and whether the
        input has ended. Only the input's own errors: the machinery's fail
        the block.
        """
        group: list[tuple[Any, ...]] = []
        size = await self._group_size()
        while len(group) < size:
            try:
                args = await anext(inputs)
            except StopAsyncIteration:
                return group, None, True
            except Exception as exc:
                return group, exc, False
            await self._window.acquire()
            group.append(args)
        return group, None, False

    async def _group_size(self) -> int:
        """How many inputs the next task takes (see ``_chunks.ChunkedResults``)."""
        return 1

    def _start_group(
        self, numbers: list[int], place: Any, group: list[tuple[Any, ...]]
    ) -> None:
        """Start the task of the inputs ``numbers`` (here one) on ``place``."""
        self._start_input(numbers[0], place, group[0])

    # --- places: what an ActorPool's map replaces (see _pool.PoolResults) ----
    async def _take_place(self) -> Any:
        """Wait for a place to run one input: here one of ``max_in_flight``."""
        if self._running is None:
            self._running = anyio.Semaphore(self._max_in_flight)
        await self._running.acquire()

    def _give_place(self, number: int) -> None:
        """Input ``number`` has stopped running: its place goes to the next."""
        assert self._running is not None
        self._running.release()

    def _start_input(self, number: int, place: Any, args: tuple[Any, ...]) -> None:
        """Start input ``number`` on the ``place`` it holds."""
        if not (self._remote or self._async):
            self._group.start_soon(self._call_off_loop, number, args)
            return
        try:
            result = self._call(args)
        except Exception as exc:  # the item's own error (bad arguments, ...)
            self._settle(number, Outcome(error=exc))
            return
        self._started(number, result)

    def _started(self, number: int, result: Any) -> None:
        if isinstance(result, ray.ObjectRef) or call_refs(result) is not None:
            self._watch(number, result)
        else:
            self._group.start_soon(self._resolve, number, result)

    def _call(self, args: tuple[Any, ...]) -> Any:
        if self._remote:
            return self._scope.remote(self._fn, *args)
        result = self._fn(*args)  # a coroutine function: this only makes one
        check_result(result, "map")
        return result

    async def _call_off_loop(self, number: int, args: tuple[Any, ...]) -> None:
        # A plain function is user code that may take its time: it runs on a
        # worker thread, never on the loop's. Shielded, so that a task it
        # started is owned (and cancelled with the block), not dropped.
        try:
            with anyio.CancelScope(shield=True):
                result = await anyio.to_thread.run_sync(partial(self._fn, *args))
            own(self._scope, result)
            check_result(result, "map")
        except Exception as exc:
            self._settle(number, Outcome(error=exc))
            return
        self._started(number, result)

    def _take_number(self, *, count: bool = True) -> int:
        """A number for the next input (``count``) or for an iterable's error."""
        number = self._numbers
        self._numbers += 1
        self._submitted += count
        self._slots[number] = None
        return number

    async def _resolve(self, number: int, awaitable: Any) -> None:
        try:
            value = await resolve_chain(awaitable)
        except Exception as exc:
            self._settle(number, Outcome(error=exc))
            return
        if isinstance(value, ray.ObjectRef):
            own(self._scope, value)
            self._watch(number, value)
        else:
            self._settle(number, Outcome(value))

    def _watch(self, number: int, call: Ref | list[Ref]) -> None:
        # One ref of a call is watched: all of them are ready together. A
        # failure to register is the machinery's: it fails the block.
        self._slots[number] = call
        ref = call[0] if isinstance(call, list) else call
        if self._running_refs.add(ref, number):
            self._watcher.watch((ref,))
        if self._deadlines is not None:  # submitted now: its time starts
            self._deadlines.start(number, self._failures.get(number, 0))

    async def _collect(self) -> None:
        if self._eager:
            await take_reports(self._watcher, self._fetch_reported)
        else:
            await take_reports(self._watcher, self._reported)

    def _reported(self, batch: list[Ref]) -> None:
        for ref in batch:
            for number in self._running_refs.pop(ref):
                self._done(number, None)

    async def _fetch_reported(self, batch: list[Ref]) -> None:
        """Fetch the outcomes of the calls Ray reported, then settle each."""
        numbers = [n for ref in batch for n in self._running_refs.pop(ref)]
        if self._deadlines is not None:
            for number in numbers:
                self._deadlines.stop(number)
        await self._fetch_calls(numbers)
        for number in numbers:
            outcome = self._slots[number]
            assert isinstance(outcome, Outcome)
            self._settle(number, outcome)

    def _expire(self, number: int) -> None:
        """Input ``number`` ran past ``item_timeout``: cancel its task, fail it."""
        call = self._slots[number]
        assert self._deadlines is not None and not isinstance(call, Outcome)
        refs = call if isinstance(call, list) else [call]
        # The task goes with its last input (a chunk's inputs expire together).
        if refs[0] is not None and self._running_refs.remove(refs[0], number):
            self._watcher.unwatch(refs[0])
            disown(self._scope, refs[0])
            force, seconds = self._cancel
            cancel = partial(cancel_tasks, force=force, cancel_timeout=seconds)
            self._group.start_soon(cancel, refs[:1])
        limit = self._deadlines.seconds
        error = TimeoutError(
            f"map: item {number} did not finish within item_timeout={limit} s"
        )
        self._settle(number, Outcome(error=error))

    def _settle(self, number: int, outcome: Outcome) -> None:
        """The call of input ``number`` has ended with ``outcome``: retry or done."""
        retry, error = self._retry, outcome.error
        failures = self._failures.get(number, 0) + 1
        if (
            retry is None
            or error is None
            or failures >= retry.attempts
            or self._closed  # the block is ending: its cancellations are not failures
            or not retry.retries(error)
        ):
            if self._checkpoint_path is None:  # else kept until handed out
                self._args.pop(number, None)
            self._failures.pop(number, None)
            self._done(number, outcome)
            return
        self._failures[number] = failures
        self._slots[number] = None
        self._give_place(number)  # a waiting retry holds no place
        self._group.start_soon(self._start_again, number, retry.delay_after(failures))

    async def _start_again(self, number: int, delay: float) -> None:
        await anyio.sleep(delay)
        place = await self._take_place()
        if self._limiter is not None:
            await self._limiter.wait()
        self._retried += 1
        self._start_input(number, place, self._args[number])

    def _done(self, number: int, outcome: Outcome | None, *, ran: bool = True) -> None:
        """Mark input ``number`` finished; give its place to the next task."""
        if outcome is not None:
            self._slots[number] = outcome
        self._finished.add(number)
        if not self._ordered:
            self._order.append(number)
        if ran:
            self._give_place(number)
        self._changed.set()
