"""``map``: one Ray task per input, a bounded number at a time, results streamed.

The tasks belong to an :func:`open_scope`; the iterator is ``MapResults``.
"""

from __future__ import annotations

import inspect
import os
from collections.abc import AsyncIterable, AsyncIterator, Callable, Iterable
from typing import TYPE_CHECKING, Any, Literal, TypeVar, overload

import ray

from ._checkpoint import check_path
from ._chunked import chunked_results
from ._core._block import Block, block
from ._core._checks import (
    check_bool,
    check_chunksize,
    check_count,
    check_fn,
    check_iterables,
    check_options,
    check_rate,
    check_timeout,
)
from ._core._results import running
from ._map_results import MapResults
from ._retry import Retry, check_retry
from ._scope import DEFAULT_CANCEL_TIMEOUT, RemoteCallable, open_scope

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
    retry: Retry | None = ...,
    item_timeout: float | None = ...,
    chunksize: int | Literal["auto"] = ...,
    options: dict[str, Any] | None = ...,
    checkpoint: str | os.PathLike[str] | None = ...,
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
    retry: Retry | None = ...,
    item_timeout: float | None = ...,
    chunksize: int | Literal["auto"] = ...,
    options: dict[str, Any] | None = ...,
    checkpoint: str | os.PathLike[str] | None = ...,
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
    retry: Retry | None = None,
    item_timeout: float | None = None,
    chunksize: int | Literal["auto"] = 1,
    options: dict[str, Any] | None = None,
    checkpoint: str | os.PathLike[str] | None = None,
) -> Block[MapResults[Any]]:
    """Run ``fn`` on every input as a Ray task and iterate over the results.

    ``fn`` is a ``@ray.remote`` function, an actor method or ``.options(...)`` of
    either (the task is ``fn.remote(*args)``), or any callable returning an
    ObjectRef or an awaitable (a chain). A plain (not ``async``) callable runs
    on a worker thread, never on the loop's. A call with ``num_returns=k``
    yields the list of its k values. Several iterables, plain or async, are
    zipped as the builtin ``map`` does, and read lazily. Use it as an async
    context manager (``async for`` over ``map(...)`` itself is a
    ``TypeError``)::

        async with ray_anyio.map(square, range(100), max_in_flight=8) as results:
            async for value in results:
                ...

    Limits: at most ``max_in_flight`` tasks run at once, a new one starting as
    soon as one finishes; at most ``2 * max_in_flight`` inputs are in progress
    or finished but not yet yielded, so results cannot pile up.
    ``max_per_second`` allows at most that many starts in any one second.

    Order: ``ordered=True`` yields in input order, ``ordered=False`` as tasks
    finish. Finished results next in line are fetched in batches, as
    :func:`get` does. Progress is counted (see :class:`MapResults`).

    Errors: a failed task's error (or one from ``fn(*args)``) is raised in its
    place, or yielded with ``return_exceptions=True``. One from an iterable is
    raised after the results before it, whatever ``return_exceptions`` says.
    An error of the machinery (Ray stopped) is raised at once.

    Retries: with ``retry`` (a :class:`Retry`), an item whose task failed with
    an error the policy covers is started again after the policy's delay, up
    to its ``attempts``; ``retried`` counts the new starts. A retry waiting for
    its delay holds no ``max_in_flight`` place; its start counts for
    ``max_per_second``; the order of ``ordered=True`` holds. With ``retry`` or
    ``item_timeout``, a result is fetched as soon as its task ends (to see its
    error), within the same bound of held results.

    Plain functions as tasks, and chunks: with ``options`` (a dict of
    ``ray.remote`` options, e.g. ``{"num_cpus": 0.5}``; ``{}`` for none) or a
    ``chunksize`` other than 1, a plain (not ``async``) ``fn`` runs as Ray
    tasks: each task calls ``fn`` over up to ``chunksize`` consecutive inputs
    (``"auto"``: sized from the input's length and the cluster's CPUs,
    smaller near the end so that the last tasks are short). Results, errors,
    timeouts, retries and counters stay per input; ``max_in_flight`` counts
    tasks. Without either, a plain ``fn`` is called (on a worker thread) to
    *start* the work, as above. A remote function keeps its own options.

    Checkpoint and resume: with ``checkpoint`` (the path of an SQLite file,
    one per run), every result is committed to the file as it is handed out,
    keyed by the input's position and a digest of its arguments and of
    ``fn``'s code; errors only with ``return_exceptions=True``. A new ``map``
    over the same file and inputs hands out the stored results without
    starting their tasks (``restored`` counts them) and runs the rest: a
    driver killed mid-run loses at most the inputs that were in flight. A
    result that cannot be pickled is that item's ``TypeError``. The file is
    opened (and locked) when the block starts: a second live run on it gets
    ``CheckpointBusyError`` there.

    Item timeouts: ``item_timeout`` seconds from the submission of an item's
    task (time waiting for resources counts; for a chain, from when it
    resolves to its ref), the task is cancelled as a scope's are (politely,
    by force after ``cancel_timeout``), its place is free at once, and the
    item fails with a ``TimeoutError`` that names its index and the limit.

    Cancellation: each step is a checkpoint: always a cancellation point,
    and a step whose result is ready yields to other tasks once its last
    yield is a millisecond old (see ``docs/performance.md``). Leaving the
    block cancels the tasks still running (refs from a plain ``fn`` count) as
    :func:`open_scope` does with ``force`` and ``cancel_timeout``: a deadline
    around the block holds within ``cancel_timeout`` + 1 s.

    Raises:
        TypeError: ``fn`` is neither callable nor remote; no iterable, or one
            is not iterable; a wrong argument type (``retry`` not a
            ``Retry``, ``checkpoint`` not a path); ``fn(*args)`` returns
            neither an ObjectRef nor an awaitable (as that item's error).
        ValueError: the directory of ``checkpoint`` does not exist;
            ``max_in_flight`` or ``chunksize`` is below 1,
            ``max_per_second`` is not positive and finite, ``cancel_timeout``
            or ``item_timeout`` is negative or NaN; ``options`` with a remote
            function or naming ``num_returns``, or ``chunksize``/``options``
            with a remote or async ``fn``; an option Ray does not know.
        RuntimeError: the iterator is used outside its block.
        CheckpointBusyError: another live run holds ``checkpoint`` (raised
            when the block starts).
        ray.exceptions.RaySystemError: Ray is not running, or stopped.
    """
    remote = check_fn(fn, "map")
    check_iterables(iterables)
    max_in_flight = check_count(max_in_flight, "max_in_flight")
    rate = check_rate(max_per_second, "max_per_second")
    check_bool(ordered, "ordered")
    check_bool(return_exceptions, "return_exceptions")
    check_bool(force, "force")
    seconds = check_timeout(cancel_timeout, "cancel_timeout")
    policies: dict[str, Any] = {
        "retry": check_retry(retry),
        "item_timeout": check_timeout(item_timeout, "item_timeout"),
        "cancel": (force, seconds),
        "checkpoint": None if checkpoint is None else check_path(checkpoint),
    }
    size = check_chunksize(chunksize)
    task_options = check_options(options, remote)
    results: MapResults[Any]
    if size == 1 and task_options is None:
        results = MapResults(
            fn,
            remote,
            iterables,
            max_in_flight,
            rate,
            ordered,
            return_exceptions,
            held=max_in_flight,
            **policies,
        )
    elif remote or inspect.iscoroutinefunction(fn):
        raise ValueError(
            "chunksize= and options= run a plain function as Ray tasks; fn is "
            f"{'a remote function' if remote else 'an async function'}: pass the "
            "plain function itself (with options= for its Ray options)"
        )
    else:
        results = chunked_results(
            fn,
            size,
            task_options or {},
            iterables,
            max_in_flight,
            rate,
            ordered,
            return_exceptions,
            **policies,
        )
    return map_block(results, force, seconds)


@block("map")
async def map_block(
    results: MapResults[T], force: bool, cancel_timeout: float | None
) -> AsyncIterator[MapResults[T]]:
    """The block of a ``map`` (a pool's too): a scope owning ``results``' tasks."""
    async with open_scope(force=force, cancel_timeout=cancel_timeout) as scope:
        async with running(results, scope):
            yield results
        scope.cancel()  # whatever still runs is not wanted
