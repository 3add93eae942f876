"""Turn what users pass to ``get`` and ``wait`` into slots the engine can use.

An item is an ObjectRef, an awaitable (coroutine, asyncio future, concurrent
future, anything with ``__await__``), or a plain value. An awaitable is a
*chain* when its result is again a ref or an awaitable: :func:`resolve_chain`
follows it to the first ref or plain value.
"""

from __future__ import annotations

import asyncio
import concurrent.futures
import inspect
import threading
from typing import Any

import anyio
import ray

from ._wakeup import current_waker


def is_awaitable(obj: object) -> bool:
    """True for anything :func:`resolve_chain` can await (ObjectRefs excluded)."""
    if isinstance(obj, ray.ObjectRef):
        return False
    return isinstance(obj, concurrent.futures.Future) or inspect.isawaitable(obj)


async def resolve_chain(obj: Any) -> Any:
    """Await ``obj`` until the result is an ObjectRef or a plain value.

    Values inside containers are not walked. Cancellation: the awaitable being
    awaited is cancelled (coroutines receive the cancellation, futures are
    cancelled) and the cancellation propagates.
    """
    while is_awaitable(obj):
        if isinstance(obj, concurrent.futures.Future):
            obj = await _await_concurrent_future(obj)
        elif isinstance(obj, asyncio.Future):
            obj = await _await_asyncio_future(obj)
        else:
            obj = await obj
    return obj


def discard(obj: object) -> None:
    """Release an awaitable that will never be awaited (no "never awaited")."""
    if inspect.iscoroutine(obj):
        obj.close()
    elif isinstance(obj, (asyncio.Future, concurrent.futures.Future)):
        obj.cancel()


async def _await_asyncio_future(fut: asyncio.Future[Any]) -> Any:
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


async def _await_concurrent_future(fut: concurrent.futures.Future[Any]) -> Any:
    if not fut.done():
        wake = current_waker()
        event = anyio.Event()
        lock = threading.Lock()
        live = [True]

        def on_done(_: concurrent.futures.Future[Any]) -> None:
            with lock:
                if not live[0]:
                    return
            wake(event.set)

        fut.add_done_callback(on_done)
        try:
            await event.wait()
        except BaseException:
            fut.cancel()
            raise
        finally:
            with lock:
                live[0] = False
    return fut.result()
