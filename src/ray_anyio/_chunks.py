"""Chunks: ``map`` runs a plain function over several inputs in one Ray task.

One Ray task per tiny item costs a task's overhead per item; a chunk pays it
once for ``chunksize`` consecutive inputs, and still hands back one outcome
per input: an item's exception is that item's error only.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Sequence
from typing import Any, TypeVar

import anyio.to_thread
import ray

from ._core._fetch import fetch_outcomes
from ._core._outcome import Outcome
from ._map_results import MapResults
from ._scope import disown

T = TypeVar("T")

#: ``chunksize="auto"``: each chunk takes the inputs left over this many
#: chunks per slot, so sizes shrink as the input runs out and the last tasks
#: are short, while early chunks are large enough to pay for their task.
CHUNKS_PER_SLOT = 4
#: ``"auto"`` over an input of unknown length: a size that pays a task's
#: overhead (a millisecond or so) over items of tens of microseconds.
UNKNOWN_LENGTH_SIZE = 64
#: No chunk larger than this: its results come back in one value.
MAX_AUTO_SIZE = 10_000


def _chunk_body(
    fn: Callable[..., Any], inputs: Sequence[Any], spread: bool
) -> tuple[list[Any], dict[int, BaseException]]:
    """Run ``fn`` over ``inputs`` in the worker: values, and errors by index.

    ``spread``: each input is a list of arguments, else the one argument.
    """
    values: list[Any] = []
    errors: dict[int, BaseException] = {}
    for index, args in enumerate(inputs):
        try:
            values.append(fn(*args) if spread else fn(args))
        except Exception as exc:  # that item's error; the chunk goes on
            values.append(None)
            errors[index] = exc
    return values, errors


def _payload(group: list[tuple[Any, ...]]) -> tuple[list[Any], bool]:
    """A chunk's inputs as Ray sends them cheaply, and whether to spread them.

    Ray packs lists and plain values with msgpack but pickles each tuple on
    its own: one argument goes bare, several go as a list.
    """
    if all(len(args) == 1 for args in group):
        return [args[0] for args in group], False
    return [list(args) for args in group], True


#: The task of one chunk (``.options(**options)`` per map).
run_chunk = ray.remote(_chunk_body)


def item_outcome(chunk: Outcome, index: int) -> Outcome:
    """The outcome of the ``index``-th input of a chunk whose task gave ``chunk``."""
    if chunk.error is not None:  # the task itself failed: every item with it
        return chunk
    values, errors = chunk.value
    error = errors.get(index)
    return Outcome(error=error) if error is not None else Outcome(values[index])


def auto_size(remaining: int | None, slots: float) -> int:
    """The size of the next chunk of ``chunksize="auto"``.

    ``remaining``: inputs not yet taken, when known; ``slots``: how many
    tasks the cluster runs at once.
    """
    if remaining is None:
        return UNKNOWN_LENGTH_SIZE
    size = math.ceil(remaining / (max(slots, 1.0) * CHUNKS_PER_SLOT))
    return max(1, min(MAX_AUTO_SIZE, size))


async def cluster_slots(options: dict[str, Any]) -> float:
    """How many chunk tasks with ``options`` the cluster runs at once."""
    # A call to the GCS: off the loop thread.
    resources = await anyio.to_thread.run_sync(ray.cluster_resources)
    cpus = float(resources.get("CPU", 1.0))
    per_task = options.get("num_cpus", 1)
    return cpus / per_task if per_task else cpus


class ChunkedResults(MapResults[T]):
    """The iterator of a ``map`` of a plain function run as Ray tasks, in chunks.

    Each task takes up to ``size`` consecutive inputs (``None``: "auto") and
    holds one ``max_in_flight`` place; each input keeps its own outcome,
    timeout and retry (a retried input runs alone). Outcomes are fetched as a
    task ends, one fetch per chunk.
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
        self._eager = True
        self._window_factor = size or MAX_AUTO_SIZE
        # Input number -> (its chunk's key, its index in the chunk), until its
        # outcome is known; a chunk's key -> its inputs whose place is still held.
        self._members: dict[int, tuple[object, int]] = {}
        self._left: dict[object, int] = {}

    async def _group_size(self) -> int:
        if self._size is not None:
            return self._size
        if self._cluster_slots is None:
            self._cluster_slots = await cluster_slots(self._options)
        remaining = None if self._total is None else self._total - self._numbers
        return auto_size(remaining, self._cluster_slots)

    def _start_input(self, number: int, place: Any, args: tuple[Any, ...]) -> None:
        # A retry: the input runs alone.
        self._start_group([number], place, [args])

    def _start_group(
        self, numbers: list[int], place: Any, group: list[tuple[Any, ...]]
    ) -> None:
        key: object = object()  # the chunk's place, until its task exists
        try:
            key = self._scope.remote(self._task, self._fn, *_payload(group))
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
