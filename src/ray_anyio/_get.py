"""``get``: the value of a ref, an awaitable chain, or a structure of them."""

from __future__ import annotations

from typing import Any, TypeVar, overload

import anyio
import ray
from ray.exceptions import GetTimeoutError

from ._core._fetch import fetch, fetch_one
from ._core._first_error import FirstErrorGroup
from ._core._inputs import (
    AWAITABLE,
    REF,
    check_timeout,
    flatten,
    is_awaitable,
    rebuild,
    resolve_chain,
)
from ._core._wakeup import checkpoint

T = TypeVar("T")


@overload
async def get(obj: ray.ObjectRef[T], *, timeout: float | None = None) -> T: ...
@overload
async def get(
    obj: list[ray.ObjectRef[T]], *, timeout: float | None = None
) -> list[T]: ...
@overload
async def get(obj: Any, *, timeout: float | None = None) -> Any: ...


async def get(obj: Any, *, timeout: float | None = None) -> Any:
    """Return the value behind ``obj``, like ``ray.get``, without blocking the loop.

    ``obj`` may be:

    * an ``ObjectRef``: its value, exactly as ``ray.get`` returns it;
    * an awaitable (coroutine, asyncio future on asyncio, ``concurrent.futures.Future``
      on either backend, any object with ``__await__``): awaited, and while the
      result is again a ref or an awaitable, resolved further (a *chain*);
    * a ``list``, ``tuple`` or ``dict`` (values), nested: the same shape with
      every element resolved concurrently. Values fetched from Ray are not
      walked: a ref to a list of refs gives that list of refs;
    * anything else: returned unchanged.

    Refs that are already finished are fetched at once with batched ``ray.get``
    calls; the others are fetched in batches as Ray reports them ready. A large
    list of pending refs is watched in groups of neighbours, one registration
    per group: a failed task in such a list is raised when its group reports
    or at the next sweep of the whole list (within a second or so), while
    ``ray.get`` raises it at once (see the performance page).

    This is a checkpoint. On cancellation (or timeout) every registration with
    Ray is withdrawn and every awaitable still running is cancelled; nothing
    keeps running. The Ray tasks themselves are not cancelled: use
    :func:`open_scope` for that.

    Args:
        obj: what to resolve.
        timeout: seconds to wait at most; ``None`` waits for ever.

    Raises:
        ray.exceptions.GetTimeoutError: (a ``TimeoutError``) when ``timeout``
            expires first.
        Exception: the first failure, unwrapped: a failed task raises what
            ``ray.get`` raises (the ``RayTaskError`` that is also an instance of
            the task's exception class); a failing awaitable raises its own
            exception. The other elements are cancelled.
        ray.exceptions.RaySystemError: Ray is not running (never started, or
            shut down before or during the call); Ray is never started.
        TypeError: ``timeout`` is not a number, or ``obj`` is a common mistake:
            a set (pass a list), a generator (pass ``list(...)``), an
            ``ObjectRefGenerator`` (use :func:`stream`), a remote function
            (call ``.remote()``).
        ValueError: ``timeout`` is negative or NaN, or ``obj`` contains itself
            or is nested too deep.

    Example::

        value = await ray_anyio.get(f.remote(1))
        a, b = await ray_anyio.get([f.remote(1), some_coroutine()])
    """
    seconds = check_timeout(timeout)
    await checkpoint()
    if isinstance(obj, ray.ObjectRef) and seconds is None:
        return await fetch_one(obj)
    if seconds is None:
        return await _resolve(obj)
    with anyio.move_on_after(seconds) as scope:
        return await _resolve(obj)
    if scope.cancelled_caught:
        raise GetTimeoutError(f"ray_anyio.get timed out after {seconds} s")
    raise AssertionError("unreachable")  # pragma: no cover


async def _resolve(obj: Any) -> Any:
    if isinstance(obj, ray.ObjectRef):
        return await fetch_one(obj)
    if type(obj) is list and _all_refs(obj):
        return await fetch(obj)
    if is_awaitable(obj):
        return await _resolve_awaitable(obj)
    leaves, kinds = flatten(obj)
    if not leaves:
        return obj
    values: list[Any] = [None] * len(leaves)
    ref_positions = [i for i, kind in enumerate(kinds) if kind == REF]
    awaitable_positions = [i for i, kind in enumerate(kinds) if kind == AWAITABLE]

    async def fetch_refs() -> None:
        fetched = await fetch([leaves[i] for i in ref_positions])
        for i, value in zip(ref_positions, fetched, strict=True):
            values[i] = value

    async def resolve_one(i: int) -> None:
        values[i] = await _resolve_awaitable(leaves[i])

    if not awaitable_positions:
        await fetch_refs()
    else:
        async with FirstErrorGroup() as group:
            if ref_positions:
                group.start_soon(fetch_refs)
            for i in awaitable_positions:
                group.start_soon(resolve_one, i)
    return rebuild(obj, iter(values))


async def _resolve_awaitable(obj: Any) -> Any:
    result = await resolve_chain(obj)
    if isinstance(result, ray.ObjectRef):
        return await fetch_one(result)
    return result


def _all_refs(items: list[Any]) -> bool:
    # The common case, a list of refs, skips flatten/rebuild: this check runs
    # at C speed, one type lookup per distinct type.
    return bool(items) and all(
        issubclass(t, ray.ObjectRef) for t in set(map(type, items))
    )
