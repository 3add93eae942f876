"""Argument checks: one function per rule, each naming the argument and the fix.

Numbers are ``numbers.Real``/``Integral`` (a ``numpy.int64`` is fine); a
``bool`` is refused wherever a number is meant: ``True`` there is a slip.
"""

from __future__ import annotations

import math
import types
from collections.abc import AsyncIterable, AsyncIterator, Iterable, Iterator
from numbers import Integral, Real
from typing import Any, Literal

import ray

from . import _serve
from ._awaitables import is_awaitable


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


def check_rate(value: float | None, name: str) -> float | None:
    """Return ``value`` as a float if it is None or a positive finite number."""
    if value is None:
        return None
    if isinstance(value, bool) or not isinstance(value, Real):
        raise TypeError(
            f"{name} must be a number of starts per second or None, got "
            f"{type(value).__name__}"
        )
    rate = float(value)
    if not math.isfinite(rate) or rate <= 0:
        raise ValueError(f"{name} must be a positive, finite number, got {value!r}")
    return rate


def check_count(value: int, name: str, *, least: int = 1) -> int:
    """Return ``value`` as an int if it is a whole number >= ``least``, else raise."""
    if isinstance(value, bool) or not isinstance(value, Integral):
        raise TypeError(f"{name} must be an int, got {type(value).__name__}")
    if value < least:
        raise ValueError(f"{name} must be at least {least}, got {value}")
    return int(value)


def check_bool(value: bool, name: str) -> bool:
    """Return ``value`` if it is a bool, else raise naming the argument."""
    if not isinstance(value, bool):
        raise TypeError(f"{name} must be True or False, got {type(value).__name__}")
    return value


def is_remote(fn: object) -> bool:
    """True for a remote function, an actor method, or ``.options(...)`` of one."""
    if isinstance(fn, (type, ray.actor.ActorClass)):
        return False
    return callable(getattr(fn, "remote", None))


#: What each kind of ``fn`` must be, for the messages.
_FN = {
    "remote": "a @ray.remote function, an actor method, or .options(...) of either",
    "map": "a @ray.remote function, an actor method or a callable returning an "
    "ObjectRef or an awaitable",
    "pool": "a callable taking (actor, *args) and returning the ObjectRef of one "
    "actor call",
}


def check_fn(fn: object, kind: Literal["remote", "map", "pool"]) -> bool:
    """Whether ``fn`` is remote; ``TypeError`` if ``kind`` takes no such ``fn``."""
    remote = is_remote(fn)
    if not (remote if kind == "remote" else remote or callable(fn)):
        raise TypeError(f"fn must be {_FN[kind]}, got {type(fn).__name__}")
    return remote


def call_refs(result: object) -> list[Any] | None:
    """The refs of one call (``num_returns=k`` gives k of them), else None."""
    if isinstance(result, ray.ObjectRef):
        return [result]
    if isinstance(result, list) and result:
        if all(isinstance(ref, ray.ObjectRef) for ref in result):
            return result
    return None


def check_result(result: object, kind: Literal["map", "pool"]) -> None:
    """Check (``TypeError``) what a plain ``fn`` of ``map`` or a pool returned."""
    if call_refs(result) is not None:
        return
    if kind == "map" and is_awaitable(result):
        return
    wanted = (
        "fn must return one ObjectRef or awaitable per input"
        if kind == "map"
        else "fn(actor, *args) must return the ObjectRef of one actor call"
    )
    raise TypeError(f"{wanted}; fn returned {type(result).__name__}")


def check_iterables(iterables: tuple[Any, ...]) -> None:
    """Check (``TypeError``) that ``map`` got plain or async iterables, at least one."""
    if not iterables:
        raise TypeError("map() needs at least one iterable of inputs after fn")
    for position, iterable in enumerate(iterables):
        if not isinstance(iterable, (Iterable, AsyncIterable)):
            name = "iterable" if len(iterables) == 1 else f"iterables[{position}]"
            raise TypeError(
                f"{name} must be an iterable or an async iterable, got "
                f"{type(iterable).__name__}"
            )


def check_items(items: object, function: str) -> None:
    """Check the ``items`` of ``wait``-like ``function`` (named in the hints)."""
    if isinstance(items, ray.ObjectRef) or _serve.is_response(items):
        kind, name = (
            ("ObjectRef", "ref")
            if isinstance(items, ray.ObjectRef)
            else ("DeploymentResponse", "response")
        )
        raise TypeError(
            "items must be a list or tuple of ObjectRefs or awaitables, got a single "
            f"{kind}; wrap it: {function}([{name}])"
        )
    if not isinstance(items, (list, tuple)):
        raise TypeError(
            "items must be a list or tuple of ObjectRefs or awaitables, got "
            f"{type(items).__name__}{mistake_hint(items, function)}"
        )
    for index, item in enumerate(items):
        check_item(item, f"items[{index}]", function)


#: What holds several items: a slip where one item is meant.
_MANY = (list, tuple, set, frozenset, types.GeneratorType, types.AsyncGeneratorType)


def check_item(item: object, name: str, function: str, *, one: bool = False) -> None:
    """Check (``TypeError``) that ``item``, named ``name``, is a ref or an awaitable.

    ``one``: ``function`` takes one item (``add``), where a collection is a
    slip; else ``item`` is one of the ``items`` of ``function``.
    """
    if isinstance(item, ray.ObjectRef) or is_awaitable(item):
        return
    if not one:
        hint = mistake_hint(item, function)
    elif isinstance(item, _MANY):
        hint = f"; {function}() takes one item: call it once per item"
    else:
        hint = mistake_hint(item, function, top=False)
    raise TypeError(
        f"{name} must be an ObjectRef or an awaitable, got {type(item).__name__}{hint}"
    )


def mistake_hint(obj: object, function: str, *, top: bool = True) -> str:
    """What to pass instead of ``obj``, when it is a common mistake (or "").

    ``top``: ``obj`` is the whole argument, where any iterator is a mistake
    (inside a structure only generators are: a file is an iterator too).
    """
    if _serve.is_response_generator(obj):
        return "; a Serve streaming response is iterated with ray_anyio.stream(gen)"
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
    if (
        getattr(obj, "__name__", None) == "remote"
        and is_remote(getattr(obj, "__self__", None))
    ) or getattr(obj, "__globals__", {}).get("__name__") == "ray.remote_function":
        # a.method.remote, f.options(...).remote, f.remote: Ray's own methods
        return "; it is the .remote method itself: call it, .remote(...)"
    return ""


def check_chunksize(value: object) -> int | None:
    """``chunksize``: a whole number >= 1, or ``"auto"`` (returned as None)."""
    if value == "auto" and isinstance(value, str):
        return None
    if isinstance(value, bool) or not isinstance(value, Integral):
        raise TypeError(
            f'chunksize must be an int >= 1 or "auto", got {type(value).__name__}'
        )
    return check_count(int(value), "chunksize")


def check_options(options: object, remote: bool) -> dict[str, Any] | None:
    """``options``: None, or a dict of ``ray.remote`` options for a plain ``fn``."""
    if options is None:
        return None
    if not isinstance(options, dict):
        raise TypeError(
            "options must be a dict of Ray task options (e.g. {'num_cpus': 0.5}) or"
            f" None, got {type(options).__name__}"
        )
    if remote:
        raise ValueError(
            "options= is for a plain function (run as a Ray task with them); a"
            " remote function keeps its own: pass fn.options(...) instead"
        )
    if "num_returns" in options:
        raise ValueError(
            "options cannot set num_returns: a plain function's task gives one"
            " value per input"
        )
    return dict(options)
