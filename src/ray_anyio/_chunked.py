"""The iterators of a ``map`` whose plain function runs as Ray tasks, in chunks.

Without a per-item policy a chunk is one unit (:class:`WholeChunks`): one
number, one place, one fetch, split into its inputs' outcomes as they are
handed out. With ``retry``, ``item_timeout`` or ``checkpoint`` each input
has its own number (:class:`ChunkedItems`), so that it can expire, be
retried alone or be restored.
"""

from __future__ import annotations

from collections import deque
from collections.abc import Callable
from typing import Any, TypeVar

from ._chunks import (
    MAX_AUTO_SIZE,
    auto_size,
    cluster_slots,
    item_outcome,
    item_values,
    payload,
    run_chunk,
)
from ._core._fetch import fetch_outcomes
from ._core._outcome import Outcome
from ._map_results import MapResults
from ._scope import disown

T = TypeVar("T")


def chunked_results(*args: Any, **policies: Any) -> MapResults[Any]:
    """The iterator of a ``map`` of a plain ``fn`` run as Ray tasks, in chunks.

    Takes :class:`ChunkedResults`' arguments. With a per-item policy
    (``retry``, ``item_timeout``, ``checkpoint``) each input keeps its own
    number; without, a chunk is one unit until its results are handed out.
    """
    policy = ("retry", "item_timeout", "checkpoint")
    per_item = any(policies.get(name) is not None for name in policy)
    kind = ChunkedItems if per_item else WholeChunks
    return kind(*args, **policies)


class ChunkedResults(MapResults[T]):
    """The base of a ``map``'s iterators over chunks: sizes, and the task of one.

    Each task takes up to ``size`` consecutive inputs (``None``: "auto") and
    holds one ``max_in_flight`` place; each input keeps its own outcome.
    """

    def __init__(
        self,
        fn: Callable[..., Any],
        size: int | None,
        options: dict[str, Any],
        iterables: tuple[Any, ...],
        max_in_flight: int,
        rate: float | None,
        ordered: bool,
        return_exceptions: bool,
        **policies: Any,
    ) -> None:
        super().__init__(
            fn,
            False,
            iterables,
            max_in_flight,
            rate,
            ordered,
            return_exceptions,
            held=max_in_flight,
            **policies,
        )
        self._task = run_chunk.options(**options) if options else run_chunk
        self._options = options
        self._size = size
        self._cluster_slots: float | None = None

    async def _group_size(self) -> int:
        if self._size is not None:
            return self._size
        if self._cluster_slots is None:
            self._cluster_slots = await cluster_slots(self._options)
        remaining = None if self._total is None else self._total - self._submitted
        return auto_size(remaining, self._cluster_slots)

    def _submit(self, group: list[tuple[Any, ...]]) -> Any:
        """Start the task of a chunk; raises what ``scope.remote`` raises."""
        return self._scope.remote(self._task, self._fn, *payload(group))


class WholeChunks(ChunkedResults[T]):
    """Chunks without per-item policies: a chunk is one unit until handed out.

    Its task holds one number, one place in the window and one fetched
    outcome, which is split into the outcomes of its inputs when its turn
    comes: the bookkeeping is per task, not per input.
    """

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self._whole_groups = True
        self._sizes: dict[int, int] = {}  # a chunk's number -> its inputs
        # The results of the chunk being handed out: values, and the Outcome
        # of each input that failed (see item_values).
        self._split: deque[Any] = deque()

    def _start_group(
        self, numbers: list[int], place: Any, group: list[tuple[Any, ...]]
    ) -> None:
        [number] = numbers
        self._sizes[number] = len(group)
        try:
            ref = self._submit(group)
        except Exception as exc:  # fn or an input cannot be pickled, ...
            self._settle(number, Outcome(error=exc))
            return
        self._watch(number, ref)

    async def __anext__(self) -> T:
        if not self._split:
            return await super().__anext__()
        # The rest of a chunk: no wait and no fetch, so no frame for them.
        self._check_open()
        await self._pace.step()
        return self._hand_out_item(self._split.popleft())

    def _has_ready(self) -> bool:
        return bool(self._split) or super()._has_ready()

    async def _wait_ready(self, every: bool = False) -> None:
        if not self._split:
            await super()._wait_ready(every)

    def _peek(self) -> Outcome | None:
        if not self._split:
            if super()._peek() is None:
                return None
            self._split_next()
        item = self._split[0]
        return item if type(item) is Outcome else Outcome(item)

    def _take(self) -> T:
        if not self._split:
            self._split_next()
        return self._hand_out_item(self._split.popleft())

    def _hand_out_item(self, item: Any) -> T:
        if type(item) is Outcome:  # an input's error
            return self._hand_out(item)  # type: ignore[no-any-return]
        return self._hand_out_value(item)  # type: ignore[no-any-return]

    def _split_next(self) -> None:
        number = self._next_finished()
        outcome = self._take_outcome()  # an iterable's error raises here
        assert number is not None
        self._split.extend(item_values(outcome, self._sizes.pop(number)))


class ChunkedItems(ChunkedResults[T]):
    """Chunks whose inputs each have a number: retries, timeouts, a checkpoint.

    Each input keeps its own timeout and retry (a retried input runs alone);
    outcomes are fetched as a task ends, one fetch per chunk.
    """

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self._eager = True
        self._window_factor = self._size or MAX_AUTO_SIZE
        # Input number -> (its chunk's key, its index in the chunk), until its
        # outcome is known; a chunk's key -> its inputs whose place is still held.
        self._members: dict[int, tuple[object, int]] = {}
        self._left: dict[object, int] = {}

    def _start_input(self, number: int, place: Any, args: tuple[Any, ...]) -> None:
        # A retry: the input runs alone.
        self._start_group([number], place, [args])

    def _start_group(
        self, numbers: list[int], place: Any, group: list[tuple[Any, ...]]
    ) -> None:
        key: object = object()  # the chunk's place, until its task exists
        try:
            key = self._submit(group)
        except Exception as exc:  # fn or an input cannot be pickled, ...
            self._left[key] = len(numbers)
            for index, number in enumerate(numbers):
                self._members[number] = (key, index)
                self._settle(number, Outcome(error=exc))
            return
        self._left[key] = len(numbers)
        for index, number in enumerate(numbers):
            self._members[number] = (key, index)
        self._watch_all(numbers, key)  # type: ignore[arg-type]

    def _give_place(self, number: int) -> None:
        # The chunk's one place goes back with the last of its inputs.
        key, _ = self._members[number]
        left = self._left[key] - 1
        if left:
            self._left[key] = left
            return
        del self._left[key]
        super()._give_place(number)

    def _settle(self, number: int, outcome: Outcome) -> None:
        super()._settle(number, outcome)
        self._members.pop(number, None)

    async def _fetch_calls(self, numbers: list[int]) -> None:
        chunks: list[Any] = list(dict.fromkeys(self._slots[n] for n in numbers))
        outcomes = dict(zip(chunks, await fetch_outcomes(chunks), strict=True))
        for number in numbers:
            ref = self._slots[number]
            disown(self._scope, ref)  # type: ignore[arg-type]
            _, index = self._members[number]
            self._slots[number] = item_outcome(outcomes[ref], index)
