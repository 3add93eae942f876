"""Wake the running event loop from another thread; checkpoint on it cheaply.

The only module that knows the backend. Trio is looked up in ``sys.modules``,
never imported; partly imported by another thread, it is taken for "not trio"
(a threaded actor starting asyncio and trio loops at once hits exactly this).
"""

from __future__ import annotations

import asyncio
import importlib
import sys
import threading
import weakref
from collections.abc import Awaitable, Callable
from time import perf_counter
from typing import Any, TypeVar

import anyio.lowlevel
from anyio.lowlevel import current_token

T = TypeVar("T")

#: Schedules a callable to run soon on the loop that created it; thread-safe.
Waker = Callable[[Callable[[], None]], None]


_lowlevel: Any = None


def _trio_lowlevel() -> Any:
    """``trio.lowlevel`` once trio is imported far enough to be running, else None."""
    global _lowlevel
    if _lowlevel is None:
        trio = sys.modules.get("trio")
        if trio is None:  # the common asyncio case: answer at once
            return None
        lowlevel = getattr(trio, "lowlevel", None)
        # Partly imported (by another thread): not running in this one yet.
        if (
            hasattr(lowlevel, "checkpoint")
            and hasattr(lowlevel, "in_trio_task")
            and hasattr(lowlevel, "current_trio_token")
        ):
            _lowlevel = lowlevel
    return _lowlevel


_asyncio_locals: weakref.WeakKeyDictionary[asyncio.AbstractEventLoop, dict[str, Any]]
_asyncio_locals = weakref.WeakKeyDictionary()
_trio_locals: Any = None  # a trio RunVar, made on first use
# Trio runs in several threads may ask for it at once: one RunVar for all.
_trio_locals_lock = threading.Lock()


def loop_local(name: str, factory: Callable[[], T]) -> T:
    """The running loop's value of ``name``, made by ``factory``; dies with the loop."""
    global _trio_locals
    lowlevel = _trio_lowlevel()
    if lowlevel is not None and lowlevel.in_trio_task():
        if _trio_locals is None:
            with _trio_locals_lock:
                if _trio_locals is None:
                    _trio_locals = lowlevel.RunVar("ray_anyio")
        try:
            values: dict[str, Any] = _trio_locals.get()
        except LookupError:
            values = {}
            _trio_locals.set(values)
    else:
        values = _asyncio_locals.setdefault(asyncio.get_running_loop(), {})
    try:
        value: T = values[name]
    except KeyError:
        value = values[name] = factory()
    return value


def current_waker() -> Waker:
    """Return a thread-safe function that runs a callable on the current loop.

    Call it inside a running loop. The function never blocks or raises: once
    the loop has finished, the callable is dropped (nobody is left to wake).
    """
    native = current_token().native_token
    if isinstance(native, asyncio.AbstractEventLoop):
        return _asyncio_waker(native)
    return _trio_waker(native)


def current_loop() -> object:
    """An object that identifies the running event loop (cheap to call)."""
    lowlevel = _trio_lowlevel()
    if lowlevel is not None and lowlevel.in_trio_task():
        return lowlevel.current_trio_token()
    loop = asyncio._get_running_loop()
    if loop is not None:
        return loop
    return current_token().native_token


async def checkpoint() -> None:
    """``anyio.lowlevel.checkpoint()`` without AnyIO's lookup of the backend.

    The same schedule and cancellation point as AnyIO's (``asyncio.sleep(0)``
    or ``trio.lowlevel.checkpoint()``); trio is asked first, so that a trio run
    hosted by an asyncio loop (guest mode) still gets trio's checkpoint.
    """
    lowlevel = _trio_lowlevel()
    if lowlevel is not None and lowlevel.in_trio_task():
        await lowlevel.checkpoint()
    elif asyncio._get_running_loop() is not None:
        await asyncio.sleep(0)
    else:
        await anyio.lowlevel.checkpoint()


async def checkpoint_if_cancelled() -> None:
    """A cancellation point that yields to the scheduler only if cancelled.

    ``trio.lowlevel.checkpoint_if_cancelled()`` on trio, AnyIO's (which asks
    its cancel scopes) on asyncio.
    """
    await _if_cancelled()()


def _if_cancelled() -> Callable[[], Awaitable[None]]:
    """The running loop's :func:`checkpoint_if_cancelled`, without a wrapper."""
    lowlevel = _trio_lowlevel()
    if lowlevel is not None and lowlevel.in_trio_task():
        return lowlevel.checkpoint_if_cancelled  # type: ignore[no-any-return]
    # AnyIO's public function looks its backend up on every call, which costs
    # more than the check; the backend's own method is the same check.
    if _get_async_backend is not None:
        method = getattr(_get_async_backend(), "checkpoint_if_cancelled", None)
        if method is not None:
            return method  # type: ignore[no-any-return]
    return anyio.lowlevel.checkpoint_if_cancelled


# AnyIO's (private) lookup of the running backend, where it has one.
_get_async_backend: Callable[[], Any] | None = getattr(
    importlib.import_module("anyio._core._eventloop"), "get_async_backend", None
)


def _asyncio_scope_test() -> Callable[[asyncio.AbstractEventLoop], bool] | None:
    """A test of AnyIO's cancel scopes for the running asyncio task, or None.

    The same walk as AnyIO's asyncio ``checkpoint_if_cancelled`` (the task's
    innermost scope outwards, to the first cancelled or shielded one), but
    one that answers instead of awaiting: most steps find nothing cancelled
    and then need no coroutine at all. It takes the running loop (looking it
    up costs more than the rest on Python 3.11). A task AnyIO has never seen
    (a Ray async actor's method) costs a failed lookup, where AnyIO's raises
    and catches a ``KeyError``. None when AnyIO's private names are not as
    expected: the caller then uses the backend's own method.
    """
    try:
        module = importlib.import_module("anyio._backends._asyncio")
        states = module._task_states
        probe = module.CancelScope()
        if not (
            hasattr(states, "get")
            and hasattr(module.TaskState, "cancel_scope")
            and isinstance(probe.cancel_called, bool)
            and isinstance(probe.shield, bool)
            and hasattr(probe, "_parent_scope")
        ):
            return None
    except (ImportError, AttributeError):
        return None
    current_task = asyncio.current_task

    def cancelled(loop: asyncio.AbstractEventLoop) -> bool:
        task = current_task(loop)  # None outside a task: nothing to test
        state = None if task is None else states.get(task)
        scope = None if state is None else state.cancel_scope
        while scope is not None:
            if scope.cancel_called:
                return True
            if scope.shield:
                return False
            scope = scope._parent_scope
        return False

    return cancelled


_asyncio_cancelled = _asyncio_scope_test()


def _tested_loop() -> asyncio.AbstractEventLoop | None:
    """The running asyncio loop if :data:`_asyncio_cancelled` can test it."""
    lowlevel = _trio_lowlevel()
    if _asyncio_cancelled is None or (lowlevel is not None and lowlevel.in_trio_task()):
        return None  # trio's own check is as cheap
    return asyncio._get_running_loop()


class _Done:
    """An awaitable that is done at once: a step that has nothing to wait for."""

    __slots__ = ()

    def __await__(self) -> Any:
        return iter(())


_DONE = _Done()


#: :class:`Pace`: the longest a loop with work ready goes without letting
#: other tasks run.
SCHEDULE_INTERVAL = 0.001


class Pace:
    """Checkpoints for a loop that usually finds its next item ready.

    Each :meth:`step` is a cancellation point; it also yields to the other
    tasks (a full :func:`checkpoint`) when :data:`SCHEDULE_INTERVAL` has
    passed since it last did. A full schedule point per step would cost more
    than handing out a small result does, and would not change who runs next
    more than once a millisecond anyway. A pace belongs to one event loop.
    """

    __slots__ = ("_due", "_if_cancelled", "_loop")

    def __init__(self) -> None:
        self._due = 0.0
        self._if_cancelled: Callable[[], Awaitable[None]] | None = None
        self._loop: asyncio.AbstractEventLoop | None = None  # to test, on asyncio

    def step(self) -> Awaitable[None]:
        """A cancellation point; a schedule point at least every interval.

        ``await pace.step()``. Most steps return the backend's own check, or
        on asyncio a done awaitable once the scopes are seen not cancelled:
        not a coroutine of ours, a frame fewer per step.
        """
        if self._if_cancelled is None or perf_counter() >= self._due:
            return self._schedule()
        loop = self._loop
        if loop is not None and not _asyncio_cancelled(loop):  # type: ignore[misc]
            return _DONE
        return self._if_cancelled()

    async def _schedule(self) -> None:
        await checkpoint()
        self._due = perf_counter() + SCHEDULE_INTERVAL
        self._if_cancelled = _if_cancelled()
        self._loop = _tested_loop()


def _asyncio_waker(loop: asyncio.AbstractEventLoop) -> Waker:
    def wake(fn: Callable[[], None]) -> None:
        try:
            loop.call_soon_threadsafe(fn)
        except RuntimeError:
            pass  # the loop is closed

    return wake


def _trio_waker(token: Any) -> Waker:
    import trio

    def wake(fn: Callable[[], None]) -> None:
        try:
            token.run_sync_soon(fn)
        except trio.RunFinishedError:
            pass

    return wake


async def await_asyncio_future(fut: asyncio.Future[Any]) -> Any:
    """Await an asyncio future, on the asyncio loop it belongs to only."""
    try:
        loop = asyncio.get_running_loop()
    except RuntimeError:
        loop = None
    if loop is None or fut.get_loop() is not loop:
        raise TypeError(
            "an asyncio.Future can only be awaited on the asyncio event loop it "
            "belongs to; on trio pass a coroutine or a concurrent.futures.Future"
        )
    return await fut
