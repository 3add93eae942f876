"""``open_scope``: a block that owns the Ray tasks started through it.

The scope keeps one ref per task it started (for a streaming generator, the
ref that completes with the task). Leaving the block normally waits for those
refs; leaving it on an exception or a cancellation asks Ray to cancel the ones
that have not finished and waits, for a bounded time, until they have stopped.
"""

from __future__ import annotations

from collections.abc import Callable
from types import TracebackType
from typing import Any, Protocol, TypeVar, overload

import anyio
import ray

from ._checks import check_timeout
from ._engine import Watcher, fetch, split_ready

T = TypeVar("T")

#: Seconds the scope waits, after asking Ray to cancel, for cancelled tasks to
#: stop. Queued tasks, async actor methods and forced cancellations stop within
#: milliseconds; the bound only matters for work that ignores cancellation.
DEFAULT_CANCEL_TIMEOUT = 5.0


class RemoteCallable(Protocol[T]):
    """Anything with ``.remote(...)`` returning an ``ObjectRef[T]``."""

    @property
    def remote(self) -> Callable[..., ray.ObjectRef[T]]: ...


def is_remote(fn: object) -> bool:
    """True for a remote function, an actor method, or ``.options(...)`` of one."""
    if isinstance(fn, (type, ray.actor.ActorClass)):
        return False
    return callable(getattr(fn, "remote", None))


def open_scope(
    *, force: bool = False, cancel_timeout: float | None = DEFAULT_CANCEL_TIMEOUT
) -> TaskScope:
    """Open a block that owns the Ray tasks and actor calls started through it.

    ``async with ray_anyio.open_scope() as scope:`` then ``scope.remote(fn, ...)``
    instead of ``fn.remote(...)``. How the block ends decides what happens to
    those tasks:

    * normal exit: waits until every task has finished, fetching the results
      the way :func:`get` does (values are discarded). The first task found to
      have failed has its error raised, and the tasks still running are
      cancelled as below. A streaming generator counts as finished when the
      task has returned; errors it yields surface where its stream is read.
    * an exception or a cancellation inside the block (or a failed task, or
      :meth:`TaskScope.cancel`): ``ray.cancel`` on every task that has not
      finished (``force`` for remote functions; actor tasks are always
      cancelled with ``force=False``, the only way Ray allows), then the
      scope waits, shielded from cancellation, at most ``cancel_timeout``
      seconds for them to stop, and the exception propagates unchanged.

    With ``force=False`` a running remote function gets a ``KeyboardInterrupt``
    (its ``finally`` blocks run), which Python delivers between bytecodes: a
    task blocked in C code (``time.sleep``, I/O) only stops when that call
    returns. A running synchronous actor method is only flagged
    (``ray.get_runtime_context().is_canceled()``); async actor methods are
    cancelled. ``force=True`` kills the worker of a running remote function.

    Args:
        force: passed to ``ray.cancel`` for remote-function tasks.
        cancel_timeout: seconds to wait for cancelled tasks to stop; ``None``
            waits for ever, ``0`` does not wait.

    Raises:
        TypeError: ``force`` is not a bool or ``cancel_timeout`` not a number.
        ValueError: ``cancel_timeout`` is negative or NaN.

    Example::

        async with ray_anyio.open_scope() as scope:
            refs = [scope.remote(work, i) for i in range(10)]
            first = await ray_anyio.get(refs[0])
        # here every task has finished, or has been cancelled
    """
    if not isinstance(force, bool):
        raise TypeError(f"force must be a bool, got {type(force).__name__}")
    seconds = check_timeout(cancel_timeout, "cancel_timeout")
    return TaskScope(force=force, cancel_timeout=seconds)


class TaskScope:
    """The Ray tasks of one ``open_scope`` block; see :func:`open_scope`.

    Use it inside its ``async with`` block only, from the tasks of the event
    loop that entered it.
    """

    def __init__(self, *, force: bool, cancel_timeout: float | None) -> None:
        self._force = force
        self._cancel_timeout = cancel_timeout
        self._cancel_scope: anyio.CancelScope | None = None
        self._cancel_early = False
        # One ref per task (insertion-ordered set): ray.cancel takes any
        # return ref of a task, and it is ready once the task has finished.
        self._tasks: dict[ray.ObjectRef[Any], None] = {}
        self._entered = False
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
        of either. Returns what ``fn.remote`` returns: an ``ObjectRef``, a list of
        them (``num_returns > 1``) or an ``ObjectRefGenerator``. Not a
        checkpoint; the task is submitted at once.

        Raises:
            TypeError: ``fn`` has no ``.remote`` (a plain function, an actor
                class, an ObjectRef...).
            RuntimeError: the scope's block is not running.
            Exception: whatever ``fn.remote`` raises (bad arguments, dead actor).
        """
        if not is_remote(fn):
            raise TypeError(
                "fn must be a @ray.remote function, an actor method, or .options(...) "
                f"of either, got {type(fn).__name__}"
            )
        self._check_open()
        result = fn.remote(*args, **kwargs)
        self._track(result)
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

    async def __aenter__(self) -> TaskScope:
        if self._entered:
            raise RuntimeError("a TaskScope can only be entered once")
        self._entered = True
        self._cancel_scope = anyio.CancelScope()
        if self._cancel_early:
            self._cancel_scope.cancel()
        self._cancel_scope.__enter__()
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> bool:
        self._closed = True
        assert self._cancel_scope is not None
        error = exc
        try:
            error = await self._settle(exc)
        except BaseException as raised:  # Ray failed while cancelling
            error = raised
        finally:
            self._tasks.clear()
        if error is None:
            self._cancel_scope.__exit__(None, None, None)
            return False
        if self._cancel_scope.__exit__(type(error), error, error.__traceback__):
            return True  # our own cancellation (scope.cancel())
        if error is not exc:
            raise error
        return False

    def _check_open(self) -> None:
        if not self._entered or self._closed:
            raise RuntimeError("the scope can only start tasks inside its async with")

    def _track(self, result: object) -> None:
        """Own the task behind ``result`` (used by ``remote`` and by ``map``)."""
        if isinstance(result, ray.ObjectRef):
            self._tasks[result] = None
        elif isinstance(result, ray.ObjectRefGenerator):
            self._tasks[result.completed()] = None
        elif isinstance(result, list) and result:
            self._tasks[result[0]] = None

    def _forget(self, ref: ray.ObjectRef[Any]) -> None:
        """Stop owning a task whose outcome the caller has taken (used by ``map``)."""
        self._tasks.pop(ref, None)

    async def _settle(self, exc: BaseException | None) -> BaseException | None:
        """Wait for or cancel the tasks; return the exception to propagate."""
        if exc is None and not self.cancel_called:
            try:
                await self._wait_all()
                return None
            except BaseException as raised:
                exc = raised
        await self._cancel_unfinished()
        return exc

    async def _wait_all(self) -> None:
        ready, pending = split_ready(list(self._tasks), fetch_local=False)
        if ready:
            await fetch(ready)
        with Watcher() as watcher:
            watcher.watch(pending)
            left = len(pending)
            while left:
                batch = await watcher.next_ready()
                left -= len(batch)
                if batch:
                    await fetch(batch)

    async def _cancel_unfinished(self) -> None:
        _, unfinished = split_ready(list(self._tasks), fetch_local=False)
        for ref in unfinished:
            _cancel_task(ref, force=self._force)
        if not unfinished or self._cancel_timeout == 0:
            return
        with (
            anyio.CancelScope(shield=True),
            anyio.move_on_after(self._cancel_timeout),
            Watcher() as watcher,
        ):
            watcher.watch(unfinished)
            left = len(unfinished)
            while left:
                left -= len(await watcher.next_ready())


def _cancel_task(ref: ray.ObjectRef[Any], *, force: bool) -> None:
    try:
        ray.cancel(ref, force=force)
    except ValueError:
        if not force:
            raise
        ray.cancel(ref, force=False)  # an actor task: Ray refuses force=True
