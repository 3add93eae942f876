"""Structures that ``get`` walks: lists, tuples and dicts of refs and awaitables."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import ray

from ._awaitables import is_awaitable
from ._checks import mistake_hint

#: How deep ``get`` walks nested lists, tuples and dicts.
MAX_DEPTH = 100

REF = 0
AWAITABLE = 1


def flatten(obj: object) -> tuple[list[Any], list[int]]:
    """The refs and awaitables inside ``obj``, in walk order, and their kinds.

    Raises ``TypeError`` for a leaf that is a common mistake, ``ValueError``
    when ``obj`` contains itself or is nested over ``MAX_DEPTH``.
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
