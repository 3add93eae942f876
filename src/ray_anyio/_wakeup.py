"""Wake the running event loop from another thread; checkpoint on it cheaply.

This is the only module that knows which backend is running. Everything else
calls :func:`current_waker` once, on the loop thread, and hands the returned
function to code that runs on Ray's callback thread or a worker thread; and
awaits :func:`checkpoint` where AnyIO's would do.
"""

from __future__ import annotations

import asyncio
import sys
from collections.abc import Callable

import anyio.lowlevel
from anyio.lowlevel import current_token

#: Schedules a callable to run soon on the loop that created it; thread-safe.
Waker = Callable[[Callable[[], None]], None]


def current_waker() -> Waker:
    """Return a thread-safe function that runs a callable on the current loop.

    Must be called from inside a running asyncio loop or trio run. The returned
    function never blocks and never raises: if the loop has already finished,
    the callable is dropped, because nobody is left to be woken.
    """
    native = current_token().native_token
    if isinstance(native, asyncio.AbstractEventLoop):
        return _asyncio_waker(native)
    return _trio_waker(native)


def current_loop() -> object:
    """An object that identifies the running event loop (cheap to call)."""
    loop = asyncio._get_running_loop()
    if loop is not None:
        return loop
    trio = sys.modules.get("trio")
    if trio is not None:
        try:
            return trio.lowlevel.current_trio_token()
        except RuntimeError:
            pass
    return current_token().native_token


async def checkpoint() -> None:
    """``anyio.lowlevel.checkpoint()`` without AnyIO's lookup of the backend.

    The same schedule point and cancellation point: AnyIO's checkpoint is
    ``asyncio.sleep(0)`` on asyncio and ``trio.lowlevel.checkpoint()`` on trio.
    Finding the backend through AnyIO costs 1-2.5 µs a call, about a tenth of
    a ``get`` of a finished ref. Trio is asked first, so that a trio run
    hosted by an asyncio loop (guest mode) still gets trio's checkpoint.
    """
    trio = sys.modules.get("trio")
    if trio is not None and trio.lowlevel.in_trio_task():
        await trio.lowlevel.checkpoint()
    elif asyncio._get_running_loop() is not None:
        await asyncio.sleep(0)
    else:
        await anyio.lowlevel.checkpoint()


def _asyncio_waker(loop: asyncio.AbstractEventLoop) -> Waker:
    def wake(fn: Callable[[], None]) -> None:
        try:
            loop.call_soon_threadsafe(fn)
        except RuntimeError:
            pass  # the loop is closed

    return wake


def _trio_waker(token: object) -> Waker:
    import trio

    assert isinstance(token, trio.lowlevel.TrioToken)

    def wake(fn: Callable[[], None]) -> None:
        try:
            token.run_sync_soon(fn)
        except trio.RunFinishedError:
            pass

    return wake
