"""The iterator of a ``map`` block: its feeder, its collector, its results.

A *feeder* task starts a task per input (or per group of inputs) once the
limiters let it; a *collector* task learns from the watcher which have
finished (freeing their place at once); the iterator fetches finished
results in batches on demand and hands them out. How each call starts and
settles is :mod:`._map_calls`'s; a checkpoint's part, :mod:`._resume`'s.
"""

from __future__ import annotations

from collections import deque
from typing import TYPE_CHECKING, Any, TypeVar

import anyio
import ray

from ._core._first_error import FirstErrorGroup
from ._core._outcome import Outcome
from ._core._results import Batches
from ._core._wakeup import checkpoint
from ._core._watcher import Watcher
from ._core._zip import length, plain_zipped, read_group, zipped
from ._map_calls import MapCalls
from ._resume import Resume
from ._retry import Retry

if TYPE_CHECKING:
    Ref = ray.ObjectRef[Any]

T = TypeVar("T")


class MapResults(MapCalls[T]):
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
        super().__init__(
            fn,
            remote,
            length(iterables),
            return_exceptions,
            rate,
            retry,
            item_timeout,
            cancel,
            max_in_flight,
        )
        # How many finished results may wait, beyond those running, for an
        # earlier one (ordered) or for the consumer: memory stays bounded.
        self._held = held
        self._iterables = iterables
        self._ordered = ordered
        self._numbers = 0  # numbers given, inputs and an iterable's error
        self._next_number = 0  # ordered=True: the number of the next result to yield
        self._fed_all = False
        self._fatal: int | None = None  # the number of an iterable's error
        self._finished: set[int] = set()  # ready to yield (value maybe unfetched)
        self._order: deque[int] = deque()  # ordered=False: finished, in order
        #: Inputs per task, at most (chunks): the window counts inputs.
        self._window_factor = 1
        #: A task's inputs share one number, its place in the window and one
        #: outcome, split as it is handed out (chunks without per-item policies).
        self._whole_groups = False
        self._checkpoint_path = checkpoint
        self._resume: Resume | None = None
        self._hold_args = checkpoint is not None

    @property
    def restored(self) -> int:
        """How many results came from the ``checkpoint`` file, not from a task."""
        return 0 if self._resume is None else self._resume.restored

    def batches(self) -> Batches[T]:
        """Iterate in lists: each step hands out every result ready, at least one.

        ``async for batch in results.batches():`` takes one checkpoint and one
        batched fetch a list. Order, errors and counters are plain iteration's,
        with which it mixes: a list ends before an error, raised by the next
        step (kept in its list with ``return_exceptions=True``).
        """
        return Batches(self)

    async def _next(self) -> T:
        """The next result; see :func:`map`."""
        # Waiting is the step's checkpoint; a ready result or the end takes one.
        if self._has_ready():
            await self._pace.step()
        await self._wait_ready()
        return self._take()

    async def _wait_ready(self, every: bool = False) -> None:
        # Every finished result next in line is fetched with the first.
        while (number := self._next_finished()) is None:
            if self._fed_all and not self._slots:
                await checkpoint()
                raise StopAsyncIteration
            self._changed = anyio.Event()
            await self._changed.wait()
        if not isinstance(self._slots[number], Outcome):
            await self._fetch_from(number)

    def _peek(self) -> Outcome | None:
        number = self._next_finished()
        if number is None or number == self._fatal:  # an iterable's error: alone
            return None
        slot = self._slots[number]
        return slot if isinstance(slot, Outcome) else None

    def _has_ready(self) -> bool:
        """Whether a result is ready to hand out (its value maybe unfetched)."""
        return self._next_finished() is not None

    def _take(self) -> T:
        return self._hand_out(self._take_outcome())  # type: ignore[no-any-return]

    def _take_outcome(self) -> Outcome:
        """The outcome of the next ready number, which is handed out now."""
        number = self._next_finished()
        assert number is not None
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
        if self._resume is not None:
            args = self._args.pop(number)
            outcome = self._resume.hand_out(number, args, outcome)
        return outcome

    def _restore(
        self, numbers: list[int], group: list[tuple[Any, ...]]
    ) -> tuple[list[int], list[tuple[Any, ...]]]:
        """Finish the inputs the checkpoint holds; return the others."""
        assert self._resume is not None
        if self._closed:  # the block is ending (the file is closed): start nothing
            return [], []
        todo: tuple[list[int], list[tuple[Any, ...]]] = ([], [])
        for number, args in zip(numbers, group, strict=True):
            outcome = self._resume.take(number, args)
            if outcome is None:
                todo[0].append(number)
                todo[1].append(args)
            else:
                self._submitted += 1
                self._done(number, outcome, ran=False)
        return todo

    def _start(self, group: FirstErrorGroup, watcher: Watcher, owner: Any) -> None:
        self._scope = owner
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
            self._resume = Resume(
                self._checkpoint_path, self._fn, self._return_exceptions
            )
        group.start_soon(self._feed)
        group.start_soon(self._collect)
        if self._deadlines is not None:
            group.start_soon(self._deadlines.run, self._expire)

    def _stop(self) -> None:
        if self._resume is not None:
            self._resume.close()

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

    async def _feed(self) -> None:
        self._plain = plain_zipped(self._iterables)  # None: an async iterable
        inputs = zipped(self._iterables)
        try:
            while True:
                group, error, ended = await read_group(
                    self._plain,
                    inputs,
                    await self._group_size(),
                    self._window,
                    self._whole_groups,
                )
                # Numbers are positions (a checkpoint's keys): given as read;
                # an input counts as submitted once it starts or is restored.
                if self._whole_groups:
                    numbers = [self._take_number(count=False)] if group else []
                else:
                    numbers = [self._take_number(count=False) for _ in group]
                if self._eager or self._hold_args:
                    self._args.update(zip(numbers, group, strict=True))
                if self._resume is not None:
                    numbers, group = self._restore(numbers, group)
                if group:
                    place = await self._take_place()
                    if self._limiter is not None:
                        await self._limiter.wait()
                    self._submitted += len(group)
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

    async def _group_size(self) -> int:
        """How many inputs the next task takes (see ``_chunks.ChunkedResults``)."""
        return 1

    def _start_group(
        self, numbers: list[int], place: Any, group: list[tuple[Any, ...]]
    ) -> None:
        """Start the task of the inputs ``numbers`` (here one) on ``place``."""
        self._start_input(numbers[0], place, group[0])

    def _take_number(self, *, count: bool = True) -> int:
        """A number for the next input (``count``) or for an iterable's error."""
        number = self._numbers
        self._numbers += 1
        self._submitted += count
        self._slots[number] = None
        return number

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
