"""Chunks: a plain function run over several inputs in one Ray task.

One Ray task per tiny item costs a task's overhead per item; a chunk pays it
once for ``chunksize`` consecutive inputs, and still gives back one outcome
per input: an item's exception is that item's error only. Here: the task,
its payload, its outcome split per input, and the sizes of ``"auto"``. The
iterators of a chunked ``map`` are :mod:`._chunked`'s.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Sequence
from typing import Any

import anyio.to_thread
import ray

from ._core._outcome import Outcome

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


def payload(group: list[tuple[Any, ...]]) -> tuple[list[Any], bool]:
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


def item_values(chunk: Outcome, size: int) -> list[Any]:
    """The results of the ``size`` inputs of a chunk whose task gave ``chunk``.

    A failed input's result is the :class:`Outcome` of its error (never a
    value: the class is private), so that values need no wrapper each.
    """
    if chunk.error is not None:
        return [chunk] * size
    values: list[Any]
    values, errors = chunk.value
    for index, error in errors.items():
        values[index] = Outcome(error=error)
    return values


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
