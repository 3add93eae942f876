"""Awaitables that users pass: coroutines, futures and chains of them.

A Serve ``DeploymentResponse`` counts as one: its link of a chain is its
ref (:mod:`._serve`), never an ``await`` of Serve's asyncio-only coroutine.
A ``DeploymentResponseGenerator`` is no awaitable: it is a stream.
"""

from __future__ import annotations

import asyncio
import concurrent.futures
import inspect
from collections.abc import Callable, Sequence
from typing import Any

import anyio
import ray

from . import _serve
from ._first_error import FirstErrorGroup
from ._outcome import Outcome
from ._wakeup import await_asyncio_future, current_waker


def is_awaitable(obj: object) -> bool:
    """True for anything :func:`resolve_chain` can await (ObjectRefs excluded)."""
    if isinstance(obj, ray.ObjectRef):
        return False
    if isinstance(obj, concurrent.futures.Future):
        return True
    return inspect.isawaitable(obj) and not _serve.is_response_generator(obj)


async def resolve_chain(obj: Any) -> Any:
    """Follow the *chain* ``obj``: await until the result is a ref or a plain value.

    Containers are not walked. Cancellation cancels the awaitable being awaited
    (a coroutine receives it, a future is cancelled) and propagates; a Serve
    response becomes its ref, and is not cancelled (a scope's job).
    """
    while is_awaitable(obj):
        if _serve.is_response(obj):
            obj = await _serve.ref_of(obj)
        elif isinstance(obj, concurrent.futures.Future):
            obj = await _await_concurrent_future(obj)
        elif isinstance(obj, asyncio.Future):
            obj = await await_asyncio_future(obj)
        else:
            obj = await obj
    return obj


def start_resolving(
    group: FirstErrorGroup,
    items: Sequence[tuple[int, Any]],
    found: Callable[[int, Outcome], None],
) -> None:
    """Resolve each ``(index, awaitable)`` in ``group``: ``found(index, outcome)``.

    ``outcome`` holds the ref or plain value the chain ends in, or its error.
    Serve responses share one task (their refs come in bursts); every other
    awaitable has its own. Leaving the group cancels them (not the requests).
    """
    serve = []
    for index, item in items:
        if _serve.is_response(item):
            serve.append((index, item))
        else:
            group.start_soon(_resolve, index, item, found)
    if serve:

        def at(position: int, outcome: Outcome) -> None:
            found(serve[position][0], outcome)

        group.start_soon(_serve.each_ref, [response for _, response in serve], at)


async def _resolve(
    index: int, item: Any, found: Callable[[int, Outcome], None]
) -> None:
    try:
        outcome = Outcome(await resolve_chain(item))
    except Exception as exc:
        outcome = Outcome(error=exc)
    found(index, outcome)


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
