"""Awaitables that users pass: coroutines, futures and chains of them."""

from __future__ import annotations

import asyncio
import concurrent.futures
import inspect
from typing import Any

import anyio
import ray

from ._wakeup import await_asyncio_future, current_waker


def is_awaitable(obj: object) -> bool:
    """True for anything :func:`resolve_chain` can await (ObjectRefs excluded)."""
    if isinstance(obj, ray.ObjectRef):
        return False
    return isinstance(obj, concurrent.futures.Future) or inspect.isawaitable(obj)


async def resolve_chain(obj: Any) -> Any:
    """Follow the *chain* ``obj``: await until the result is a ref or a plain value.

    Containers are not walked. Cancellation cancels the awaitable being awaited
    (a coroutine receives it, a future is cancelled) and propagates.
    """
    while is_awaitable(obj):
        if isinstance(obj, concurrent.futures.Future):
            obj = await _await_concurrent_future(obj)
        elif isinstance(obj, asyncio.Future):
            obj = await await_asyncio_future(obj)
        else:
            obj = await obj
    return obj


def discard(obj: object) -> None:
    """Release an awaitable that will never be awaited (no "never awaited")."""
    if inspect.iscoroutine(obj):
        obj.close()
    elif isinstance(obj, (asyncio.Future, concurrent.futures.Future)):
        obj.cancel()


async def _await_concurrent_future(fut: concurrent.futures.Future[Any]) -> Any:
    if not fut.done():
        wake = current_waker()
        event = anyio.Event()
        fut.add_done_callback(lambda _: wake(event.set))
        try:
            await event.wait()
        except BaseException:
            fut.cancel()
            raise
    return fut.result()
