"""How each input of a ``map`` runs, and how its run ends.

An input's call starts (a remote function's task; an ``async`` ``fn`` on the
loop; a plain ``fn`` on a worker thread, never the loop's), its ref is
watched, and its outcome settles: done, started again after a retry's delay,
or expired at ``item_timeout`` (its task cancelled as a scope's are).
:class:`MapCalls` is the base of the iterator (:mod:`._map_results`), which
decides when inputs start and hands the outcomes out.
"""

from __future__ import annotations

import inspect
from abc import abstractmethod
from functools import partial
from typing import TYPE_CHECKING, Any, TypeVar

import anyio
import anyio.to_thread
import ray

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
from ._core._watcher import Watcher
from ._retry import Retry
from ._scope import TaskScope, disown, own

if TYPE_CHECKING:
    Ref = ray.ObjectRef[Any]

T = TypeVar("T")


class MapCalls(Results[T]):
    """The calls of a map's inputs, by number: start, watch, fetch, settle.

    With ``retry`` or ``item_timeout`` an outcome is fetched as soon as its
    task ends (*eager*), to see its error; the arguments are kept to start an
    input again.
    """

    #: Set when the block starts (``_start`` of the iterator).
    _scope: TaskScope
    _watcher: Watcher
    _group: FirstErrorGroup

    def __init__(
        self,
        fn: Any,
        remote: bool,
        total: int | None,
        return_exceptions: bool,
        rate: float | None,
        retry: Retry | None,
        item_timeout: float | None,
        cancel: tuple[bool, float | None],
        max_in_flight: int,
    ) -> None:
        super().__init__(total, return_exceptions)
        self._max_in_flight = max_in_flight
        self._running: anyio.Semaphore | None = None
        self._fn = fn
        self._remote = remote
        self._async = inspect.iscoroutinefunction(fn)
        self._limiter = StartLimiter(rate) if rate is not None else None
        # Inputs in progress or not yet yielded, by number: the ref of the task,
        # None while an awaitable resolves, or the Outcome once known.
        self._slots: dict[int, Ref | list[Ref] | Outcome | None] = {}
        self._running_refs: MultiMap[Ref, int] = MultiMap()  # while running
        self._retry = retry
        self._deadlines = None if item_timeout is None else Deadlines[int](item_timeout)
        self._cancel = cancel  # (force, cancel_timeout) for an expired item's task
        self._eager = retry is not None or item_timeout is not None
        self._args: dict[int, tuple[Any, ...]] = {}
        #: Keep an input's arguments until its result is handed out (resume).
        self._hold_args = False
        self._failures: dict[int, int] = {}
        self._retried = 0

    # --- places: what an ActorPool's map replaces (see _pool.PoolResults) ----
    async def _take_place(self) -> Any:
        """Wait for a place to run one task: here one of ``max_in_flight``."""
        if self._running is None:
            self._running = anyio.Semaphore(self._max_in_flight)
        await self._running.acquire()

    def _give_place(self, number: int) -> None:
        """Input ``number`` has stopped running: its place goes to the next."""
        assert self._running is not None
        self._running.release()

    # --- what the iterator provides ------------------------------------------
    @abstractmethod
    def _done(self, number: int, outcome: Outcome | None, *, ran: bool = True) -> None:
        """Input ``number`` has finished (``outcome`` None: fetched later)."""

    # --- the calls -----------------------------------------------------------
    @property
    def retried(self) -> int:
        """How many times an item was started again (see :class:`Retry`)."""
        return self._retried

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
        self._watch_all([number], call)

    def _watch_all(self, numbers: list[int], call: Ref | list[Ref]) -> None:
        """The inputs ``numbers`` run in the call ``call`` (several: a chunk)."""
        # One ref of a call is watched: all of them are ready together. A
        # failure to register is the machinery's: it fails the block.
        for number in numbers:
            self._slots[number] = call
        ref = call[0] if isinstance(call, list) else call
        if self._running_refs.add_all(ref, numbers):
            self._watcher.watch((ref,))
        if self._deadlines is not None:  # submitted now: its time starts
            for number in numbers:
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
            if not self._hold_args:
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
