"""``get``: the value of a ref, an awaitable chain, or a structure of them."""

from __future__ import annotations

from typing import Any, Literal, TypeVar, overload

import anyio
import ray
from ray.exceptions import GetTimeoutError

from ._core import _serve
from ._core._awaitables import is_awaitable, resolve_chain
from ._core._checks import check_bool, check_timeout
from ._core._fetch import fetch, fetch_outcomes
from ._core._first_error import FirstErrorGroup
from ._core._outcome import as_value
from ._core._single import fetch_one
from ._core._structure import AWAITABLE, REF, flatten, rebuild
from ._core._wakeup import checkpoint

T = TypeVar("T")


@overload
async def get(
    obj: ray.ObjectRef[T],
    *,
    timeout: float | None = None,
    return_exceptions: Literal[False] = False,
) -> T: ...
@overload
async def get(
    obj: ray.ObjectRef[T], *, timeout: float | None = None, return_exceptions: bool
) -> T | Exception: ...
@overload
async def get(
    obj: list[ray.ObjectRef[T]],
    *,
    timeout: float | None = None,
    return_exceptions: Literal[False] = False,
) -> list[T]: ...
@overload
async def get(
    obj: list[ray.ObjectRef[T]],
    *,
    timeout: float | None = None,
    return_exceptions: bool,
) -> list[T | Exception]: ...
@overload
async def get(
    obj: Any, *, timeout: float | None = None, return_exceptions: bool = False
) -> Any: ...


async def get(
    obj: Any, *, timeout: float | None = None, return_exceptions: bool = False
) -> Any:
    """Return the value behind ``obj``, like ``ray.get``, without blocking the loop.

    ``obj`` may be:

    * an ``ObjectRef``: its value, exactly as ``ray.get`` returns it;
    * a Ray Serve ``DeploymentResponse``: its value, as ``await response``
      gives it on asyncio; Serve's router is waited for without blocking the
      loop, then the replica's result is fetched as a ref's;
    * an awaitable (coroutine, asyncio future on asyncio, ``concurrent.futures.Future``
      on either backend, anything with ``__await__``): awaited along its
      *chain* while the result is again a ref or an awaitable;
    * a nested ``list``, ``tuple`` or ``dict`` (values): the same shape, every
      element resolved concurrently (fetched values are not walked);
    * anything else: returned unchanged.

    Finished refs are fetched at once, the others in batches as Ray reports
    them; in a large list, a failure shows when its group of refs reports or
    at the next sweep, within a second or so (see the performance page).

    This is a checkpoint. On cancellation (or timeout) every registration with
    Ray is withdrawn and every awaitable still running is cancelled. The Ray
    tasks (and Serve requests) are not cancelled: use :func:`open_scope` for that.

    Args:
        timeout: seconds to wait at most; ``None`` waits for ever.
        return_exceptions: put each failure in its place instead of raising
            it, as ``asyncio.gather`` does. A timeout, a cancellation and Ray
            not running are still raised.

    Raises:
        ray.exceptions.GetTimeoutError: (a ``TimeoutError``) ``timeout`` expired.
        Exception: the first failure, unwrapped (for a task, what ``ray.get``
            raises; for a Serve response, what the replica's method raised, or
            ``RequestCancelledError`` for a cancelled request); the other
            elements are cancelled.
        ray.exceptions.RaySystemError: Ray is not running; it is never started.
        TypeError: ``timeout`` is not a number, or ``obj`` is a common mistake
            (a set, a generator, an ``ObjectRefGenerator`` or a Serve
            ``DeploymentResponseGenerator``, a remote function).
        ValueError: ``timeout`` is negative or NaN, or ``obj`` contains itself
            or is nested too deep.

    Example::

        value = await ray_anyio.get(f.remote(1))
        a, b = await ray_anyio.get([f.remote(1), some_coroutine()])
    """
    seconds = check_timeout(timeout)
    check_bool(return_exceptions, "return_exceptions")
    await checkpoint()
    if isinstance(obj, ray.ObjectRef) and seconds is None and not return_exceptions:
        return await fetch_one(obj)
    if seconds is None:
        return await _resolve(obj, return_exceptions)
    with anyio.move_on_after(seconds) as scope:
        return await _resolve(obj, return_exceptions)
    if scope.cancelled_caught:
        raise GetTimeoutError(f"ray_anyio.get timed out after {seconds} s")
    raise AssertionError("unreachable")  # pragma: no cover


async def _resolve(obj: Any, errors: bool) -> Any:
    if isinstance(obj, ray.ObjectRef) or is_awaitable(obj):
        return await _resolve_one(obj, errors)
    if type(obj) is list and _all_refs(obj):
        return await _fetch_all(obj, errors)
    leaves, kinds = flatten(obj)
    if not leaves:
        return obj
    if not errors and AWAITABLE in kinds:
        await _responses_as_refs(leaves, kinds)
    values: list[Any] = [None] * len(leaves)
    ref_positions = [i for i, kind in enumerate(kinds) if kind == REF]
    awaitable_positions = [i for i, kind in enumerate(kinds) if kind == AWAITABLE]

    async def fetch_refs() -> None:
        fetched = await _fetch_all([leaves[i] for i in ref_positions], errors)
        for i, value in zip(ref_positions, fetched, strict=True):
            values[i] = value

    async def resolve_one(i: int) -> None:
        values[i] = await _resolve_one(leaves[i], errors)

    if not awaitable_positions:
        await fetch_refs()
    else:
        async with FirstErrorGroup() as group:
            if ref_positions:
                group.start_soon(fetch_refs)
            for i in awaitable_positions:
                group.start_soon(resolve_one, i)
    return rebuild(obj, iter(values))


async def _responses_as_refs(leaves: list[Any], kinds: list[int]) -> None:
    """Serve responses among ``leaves`` become refs, with one wait for the router."""
    is_response = _serve.is_response
    positions = [
        i
        for i, kind in enumerate(kinds)
        if kind == AWAITABLE and is_response(leaves[i])
    ]
    if not positions:
        return
    refs = await _serve.refs_of([leaves[i] for i in positions])
    for i, ref in zip(positions, refs, strict=True):
        leaves[i] = ref  # a value Serve sends by value stays an AWAITABLE leaf
        if isinstance(ref, ray.ObjectRef):
            kinds[i] = REF


async def _fetch_all(refs: list[Any], errors: bool) -> list[Any]:
    if not errors:
        return await fetch(refs)
    return [o.value if o.error is None else o.error for o in await fetch_outcomes(refs)]


async def _resolve_one(obj: Any, errors: bool) -> Any:
    """A ref, or an awaitable followed along its chain."""
    try:
        result = await resolve_chain(obj)
        if isinstance(result, ray.ObjectRef):
            return await fetch_one(result)
        return result
    except Exception as exc:
        if not errors:
            raise
        return as_value(exc)


def _all_refs(items: list[Any]) -> bool:
    # A list of refs skips flatten/rebuild; this check runs at C speed.
    return bool(items) and all(
        issubclass(t, ray.ObjectRef) for t in set(map(type, items))
    )
