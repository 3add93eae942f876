"""What users pass: refs, awaitables and plain values, and the argument checks.

An item is an ObjectRef, an awaitable (coroutine, asyncio future, concurrent
future, anything with ``__await__``), or a plain value. An awaitable is a
*chain* when its result is again a ref or an awaitable: :func:`resolve_chain`
follows it to the first ref or plain value. Every check raises a
``TypeError`` or ``ValueError`` that names the argument and says what to pass.
"""

from __future__ import annotations

import asyncio
import concurrent.futures
import inspect
import math
import types
from collections.abc import AsyncIterator, Iterator
from numbers import Real
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
    """Await ``obj`` until the result is an ObjectRef or a plain value.

    Values inside containers are not walked. Cancellation: the awaitable being
    awaited is cancelled (coroutines receive the cancellation, futures are
    cancelled) and the cancellation propagates.
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


# --- argument checks ----------------------------------------------------------


def check_timeout(timeout: float | None, name: str = "timeout") -> float | None:
    """Return ``timeout`` as a float (or None) or raise naming the argument."""
    if timeout is None:
        return None
    if isinstance(timeout, bool) or not isinstance(timeout, Real):
        raise TypeError(
            f"{name} must be a number of seconds or None, got {type(timeout).__name__}"
        )
    value = float(timeout)
    if math.isnan(value) or value < 0:
        raise ValueError(
            f"{name} must be a non-negative number of seconds, got {timeout!r}"
        )
    return value


def check_positive_int(value: int, name: str) -> int:
    """Return ``value`` if it is an int >= 1, else raise naming the argument."""
    if isinstance(value, bool) or not isinstance(value, int):
        raise TypeError(f"{name} must be an int, got {type(value).__name__}")
    if value < 1:
        raise ValueError(f"{name} must be at least 1, got {value}")
    return value


def check_bool(value: bool, name: str) -> bool:
    """Return ``value`` if it is a bool, else raise naming the argument."""
    if not isinstance(value, bool):
        raise TypeError(f"{name} must be True or False, got {type(value).__name__}")
    return value


def check_items(items: object, function: str) -> None:
    """Check the ``items`` of ``wait``-like functions, naming the bad one.

    ``function`` is the caller's name, used in the hints.
    """
    if isinstance(items, ray.ObjectRef):
        raise TypeError(
            "items must be a list or tuple of ObjectRefs or awaitables, got a single "
            f"ObjectRef; wrap it: {function}([ref])"
        )
    if not isinstance(items, (list, tuple)):
        raise TypeError(
            "items must be a list or tuple of ObjectRefs or awaitables, got "
            f"{type(items).__name__}{mistake_hint(items, function)}"
        )
    for index, item in enumerate(items):
        if not (isinstance(item, ray.ObjectRef) or is_awaitable(item)):
            raise TypeError(
                f"items[{index}] must be an ObjectRef or an awaitable, got "
                f"{type(item).__name__}{mistake_hint(item, function)}"
            )


def mistake_hint(obj: object, function: str, *, top: bool = True) -> str:
    """What to pass instead of ``obj``, when it is a common mistake (or "").

    ``top``: ``obj`` is the whole argument, where any iterator is a mistake;
    inside a structure only generators are (a file object is an iterator).
    """
    if isinstance(obj, ray.ObjectRefGenerator):
        return (
            "; a generator task's refs are iterated with "
            "ray_anyio.stream(gen), or collected with list(gen) first"
        )
    if isinstance(obj, (set, frozenset)):
        return (
            "; a set has no order to return results in: pass a list, "
            f"{function}(list(...))"
        )
    generators = (types.GeneratorType, types.AsyncGeneratorType)
    if isinstance(obj, generators) or (
        top and isinstance(obj, (Iterator, AsyncIterator))
    ):
        return f"; pass a list: {function}(list(...))"
    if callable(getattr(obj, "remote", None)):
        return "; it is a remote function or actor method: call its .remote(...) first"
    return ""


# --- structures: lists, tuples and dicts of items -----------------------------------

#: How deep ``get`` walks nested lists, tuples and dicts.
MAX_DEPTH = 100

REF = 0
AWAITABLE = 1


def flatten(obj: object) -> tuple[list[Any], list[int]]:
    """The refs and awaitables inside ``obj``, in walk order, and their kinds.

    Raises:
        TypeError: a leaf is a common mistake (a set, a generator, an
            ``ObjectRefGenerator``, a remote function without ``.remote()``).
        ValueError: ``obj`` contains itself, or is nested over ``MAX_DEPTH``.
    """
    leaves: list[Any] = []
    kinds: list[int] = []
    _flatten(obj, leaves, kinds, set())
    return leaves, kinds


def _flatten(obj: object, leaves: list[Any], kinds: list[int], path: set[int]) -> None:
    if isinstance(obj, ray.ObjectRef):
        leaves.append(obj)
        kinds.append(REF)
        return
    if is_awaitable(obj):
        leaves.append(obj)
        kinds.append(AWAITABLE)
        return
    if isinstance(obj, (list, tuple)):
        items: Any = obj
    elif isinstance(obj, dict):
        items = obj.values()
    else:
        hint = mistake_hint(obj, "get", top=not path)
        if hint:
            raise TypeError(f"get() cannot resolve a {type(obj).__name__}{hint}")
        return
    if id(obj) in path:
        raise ValueError(
            f"obj contains itself (a {type(obj).__name__} inside its own items): "
            "get() needs a structure without cycles"
        )
    if len(path) >= MAX_DEPTH:
        raise ValueError(
            f"obj is nested more than {MAX_DEPTH} levels deep; flatten it first"
        )
    path.add(id(obj))
    for item in items:
        _flatten(item, leaves, kinds, path)
    path.discard(id(obj))


def rebuild(obj: Any, values: Iterator[Any]) -> Any:
    """``obj`` with each ref and awaitable replaced by the next of ``values``."""
    if isinstance(obj, ray.ObjectRef) or is_awaitable(obj):
        return next(values)
    if isinstance(obj, list):
        return [rebuild(item, values) for item in obj]
    if isinstance(obj, tuple):
        items = [rebuild(item, values) for item in obj]
        if hasattr(obj, "_fields"):  # a namedtuple keeps its type
            return type(obj)(*items)
        return tuple(items)
    if isinstance(obj, dict):
        return {key: rebuild(item, values) for key, item in obj.items()}
    return obj
