"""Argument checks shared by the public functions; errors name the argument."""

from __future__ import annotations

import math
from numbers import Real

import ray

from ._slots import is_awaitable


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


def check_items(items: object, function: str) -> None:
    """Check the ``items`` of ``wait``-like functions, naming the bad one.

    ``function`` is the caller's name, used in the hint for a single ref.
    """
    if isinstance(items, ray.ObjectRef):
        raise TypeError(
            "items must be a list or tuple of ObjectRefs or awaitables, got a single "
            f"ObjectRef; wrap it: {function}([ref])"
        )
    if not isinstance(items, (list, tuple)):
        raise TypeError(
            "items must be a list or tuple of ObjectRefs or awaitables, got "
            f"{type(items).__name__}"
        )
    for index, item in enumerate(items):
        if not (isinstance(item, ray.ObjectRef) or is_awaitable(item)):
            raise TypeError(
                f"items[{index}] must be an ObjectRef or an awaitable, got "
                f"{type(item).__name__}"
            )
