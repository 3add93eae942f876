"""``open_scope``: a block that owns the Ray tasks started through it."""

from __future__ import annotations

from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager
from typing import TYPE_CHECKING, Any, Protocol, TypeVar, overload

import anyio
import ray

from ._core import _ray, _serve
from ._core._block import SwallowingBlock
from ._core._cancel import cancel_tasks
from ._core._checks import check_bool, check_fn, check_timeout
from ._core._fetch import fetch
from ._core._first_error import FirstErrorGroup
from ._core._outcome import Outcome
from ._core._readiness import split_ready
from ._core._reports import watch_all

if TYPE_CHECKING:
    Ref = ray.ObjectRef[Any]

T = TypeVar("T")

#: Seconds to wait for politely cancelled tasks to stop before forcing them.
DEFAULT_CANCEL_TIMEOUT = 5.0


class RemoteCallable(Protocol[T]):
    """Anything with ``.remote(...)`` returning an ``ObjectRef[T]``."""

    @property
    def remote(self) -> Callable[..., ray.ObjectRef[T]]: ...


def open_scope(
    *, force: bool = False, cancel_timeout: float | None = DEFAULT_CANCEL_TIMEOUT
) -> SwallowingBlock[TaskScope]:
    """Open a block that owns the Ray tasks and actor calls started through it.

    ``async with ray_anyio.open_scope() as scope:`` then ``scope.remote(fn, ...)``
    instead of ``fn.remote(...)``. How the block ends decides their fate:

    * normal exit: waits for every task, fetching results as :func:`get` does
      (values discarded); the first failure is raised and the rest are
      cancelled as below. A streaming generator has finished when its task
      has returned; errors it yields surface where its stream is read.
    * an exception or a cancellation in the block (or a failed task, or
      :meth:`TaskScope.cancel`): ``ray.cancel`` on every unfinished task, then
      a wait, shielded, of at most ``cancel_timeout`` seconds for them to
      stop. Remote functions still running are then cancelled with
      ``force=True`` (workers killed) and given one more second; actor tasks,
      which Ray cannot force-cancel, are left running. Either is logged as a
      warning (logger ``ray_anyio``). The exception propagates unchanged.

    With ``force=False`` a running remote function gets a ``KeyboardInterrupt``
    (its ``finally`` blocks run) only if its worker handles SIGINT (not when
    Ray was started from a shell that ignores it). A running synchronous actor
    method is only flagged (``ray.get_runtime_context().is_canceled()``, Ray
    2.54+); async actor methods are cancelled. ``force=True`` kills a running
    remote function's worker at once; actor tasks always get ``force=False``.

    Args:
        force: cancel remote functions with ``force=True`` from the start.
        cancel_timeout: seconds to wait for cancelled tasks to stop before
            forcing them; ``None`` waits for ever, ``0`` does not wait.

    Raises:
        TypeError: ``force`` is not a bool or ``cancel_timeout`` not a number.
        ValueError: ``cancel_timeout`` is negative or NaN.
        ray.exceptions.RaySystemError: Ray is not running when a task is
            started, or when a normal exit waits for the tasks.

    Example::

        async with ray_anyio.open_scope() as scope:
            refs = [scope.remote(work, i) for i in range(10)]
            first = await ray_anyio.get(refs[0])
        # here every task has finished, or has been cancelled

    A scope can swallow its own cancellation, so code after the block is
    reachable: a function returning inside it needs a ``return`` after it too.
    """
    check_bool(force, "force")
    seconds = check_timeout(cancel_timeout, "cancel_timeout")
    return SwallowingBlock(
        _block(TaskScope(force=force, cancel_timeout=seconds)), "open_scope"
    )


@asynccontextmanager
async def _block(scope: TaskScope) -> AsyncIterator[TaskScope]:
    with anyio.CancelScope() as cancel_scope:
        scope._cancel_scope = cancel_scope
        if scope._cancel_early:
            cancel_scope.cancel()
        try:
            yield scope
        except BaseException:
            scope._closed = True
            await scope._cancel_unfinished()
            raise
        scope._closed = True
        await scope._wait_all()


class TaskScope:
    """The Ray tasks of one :func:`open_scope` block; use it inside it, on its loop."""

    def __init__(self, *, force: bool, cancel_timeout: float | None) -> None:
        self._force = force
        self._cancel_timeout = cancel_timeout
        self._cancel_scope: anyio.CancelScope | None = None
        self._cancel_early = False
        # One ref per task, in the order started: ray.cancel takes any return
        # ref of a task, and it is ready once the task has finished.
        self._tasks: dict[Ref, None] = {}
        # Serve requests (responses of handle calls), cancelled through Serve.
        self._responses: dict[Any, None] = {}
        self._closed = False

    @overload
    def remote(
        self, fn: RemoteCallable[T], /, *args: Any, **kwargs: Any
    ) -> ray.ObjectRef[T]: ...
    @overload
    def remote(self, fn: Any, /, *args: Any, **kwargs: Any) -> Any: ...

    def remote(self, fn: Any, /, *args: Any, **kwargs: Any) -> Any:
        """Call ``fn.remote(*args, **kwargs)`` and own the task it starts.

        ``fn`` is a ``@ray.remote`` function, an actor method, or ``.options(...)``
        of either. Returns what ``fn.remote`` returns. Not a checkpoint; the
        task is submitted at once.

        Raises:
            TypeError: ``fn`` has no ``.remote`` (a plain function, an actor class).
            RuntimeError: the scope's block is not running.
            ray.exceptions.RaySystemError: Ray is not running (it is never started).
            Exception: whatever ``fn.remote`` raises (bad arguments, dead actor).
        """
        check_fn(fn, "remote")
        if self._cancel_scope is None or self._closed:
            raise RuntimeError("the scope can only start tasks inside its async with")
        _ray.require_ray()
        result = fn.remote(*args, **kwargs)
        own(self, result)
        return result

    def cancel(self) -> None:
        """Cancel the block like ``CancelScope.cancel``; its tasks are cancelled too.

        The block stops at its next checkpoint and the ``async with`` exits
        without an exception. Safe to call from any task of the same loop.
        """
        if self._cancel_scope is None:
            self._cancel_early = True
        else:
            self._cancel_scope.cancel()

    @property
    def cancel_called(self) -> bool:
        """True once :meth:`cancel` has been called."""
        if self._cancel_scope is None:
            return self._cancel_early
        return self._cancel_scope.cancel_called

    async def _wait_all(self) -> None:
        """Normal exit: wait for every task; on a failure cancel the rest."""
        if self.cancel_called:
            await self._cancel_unfinished()
            return
        try:
            _ray.require_ray()
            await _wait_calls(list(self._tasks), list(self._responses))
        except BaseException:
            await self._cancel_unfinished()
            raise
        finally:
            self._tasks.clear()
            self._responses.clear()

    async def _cancel_unfinished(self) -> None:
        owned, self._tasks = self._tasks, {}
        responses, self._responses = list(self._responses), {}
        cancelled: list[Ref] = []
        if responses:  # map owns the ref of a response too: Serve cancels it
            cancelled = _cancel_responses(responses)
            gone = set(responses)
            owned = {r: None for r in owned if _serve.response_of(r) not in gone}
        await cancel_tasks(
            list(owned),
            force=self._force,
            cancel_timeout=self._cancel_timeout,
            cancelled=cancelled,
        )


def own(scope: TaskScope, result: object) -> None:
    """Make ``scope`` own the task behind ``result`` (what ``.remote()`` returned)."""
    if _serve.is_response(result) or _serve.is_response_generator(result):
        scope._responses[result] = None
        return
    ref = _task_ref(result)
    if ref is not None:
        scope._tasks[ref] = None


def disown(scope: TaskScope, ref: Ref) -> None:
    """Stop owning a task whose outcome the caller has taken (``map`` does)."""
    scope._tasks.pop(ref, None)
    if scope._responses:  # the ref of a Serve response: that response too
        scope._responses.pop(_serve.response_of(ref), None)


def _cancel_responses(responses: list[Any]) -> list[Ref]:
    """``response.cancel()`` on the unfinished; return the refs to wait for.

    A response without a replica yet is withdrawn from Serve's router; an
    assigned one whose call has not ended is cancelled on its replica.
    """
    refs: dict[Ref, Any] = {}
    unassigned = []
    for response in responses:
        ref = _serve.end_ref(response)
        if ref is None:
            unassigned.append(response)
        else:
            refs[ref] = response
    _, unfinished = split_ready(list(refs), fetch_local=False) if refs else ([], [])
    _serve.cancel_responses(unassigned + [refs[ref] for ref in unfinished])
    return unfinished


async def _wait_calls(tasks: list[Ref], responses: list[Any]) -> None:
    """Wait for the tasks and the calls of the responses; raise the first failure.

    The ref of a response is watched as soon as it has one: on Rays where it
    comes only when the call has ended, a failure is raised as it comes, not
    once every other call has ended too.
    """
    watched = set(tasks)  # map owns the ref of a response too: watched once
    batch: list[Ref] = []

    async def watch(refs: list[Ref]) -> None:
        ready, pending = split_ready(refs, fetch_local=False)
        if ready:
            await fetch(ready)
        await watch_all(pending, on_batch=raise_failure)

    async def raise_failure(refs: list[Ref]) -> None:
        await fetch(refs)

    async def watch_batch() -> None:
        refs = batch[:]
        batch.clear()
        await watch(refs)

    def found(_: int, outcome: Outcome) -> None:
        ref = _task_ref(outcome.unwrap())
        if ref is not None and ref not in watched:
            watched.add(ref)
            if not batch:  # one watch per burst the router assigns
                group.start_soon(watch_batch)
            batch.append(ref)

    async with FirstErrorGroup() as group:
        if responses:
            group.start_soon(_serve.each_ref, responses, found)
        if tasks:
            await watch(tasks)


def _task_ref(result: object) -> Ref | None:
    """One ref that is ready once the task behind ``result`` has finished.

    ``result`` is what ``.remote()`` returned: a ref, a list of refs or a
    streaming generator (its completion ref).
    """
    if isinstance(result, ray.ObjectRef):
        return result
    if isinstance(result, ray.ObjectRefGenerator):
        ref: Ref = result.completed()
        return ref
    if isinstance(result, list) and result and isinstance(result[0], ray.ObjectRef):
        return result[0]
    return None
