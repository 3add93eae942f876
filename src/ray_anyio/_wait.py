"""``wait``: ``ray.wait`` for refs, awaitables and chains, on any AnyIO backend."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any, TypeVar, overload

import anyio
import ray

from ._core import _serve
from ._core._awaitables import discard, resolve_chain
from ._core._checks import check_bool, check_count, check_items, check_timeout
from ._core._first_error import FirstErrorGroup
from ._core._wait_state import WaitState, state_of
from ._core._wakeup import checkpoint

T = TypeVar("T")


@overload
async def wait(
    items: Sequence[ray.ObjectRef[T]],
    *,
    num_returns: int = 1,
    timeout: float | None = None,
    fetch_local: bool = True,
) -> tuple[list[ray.ObjectRef[T]], list[ray.ObjectRef[T]]]: ...
@overload
async def wait(
    items: Sequence[Any],
    *,
    num_returns: int = 1,
    timeout: float | None = None,
    fetch_local: bool = True,
) -> tuple[list[Any], list[Any]]: ...


async def wait(
    items: Sequence[Any],
    *,
    num_returns: int = 1,
    timeout: float | None = None,
    fetch_local: bool = True,
) -> tuple[list[Any], list[Any]]:
    """Wait until ``num_returns`` of ``items`` are ready, like ``ray.wait``.

    Each position of ``items`` is a *slot* (duplicates too). A ref slot is ready
    when its object is in this node's store (``fetch_local=True``) or anywhere
    in the cluster; a failed task's ref is ready too (``wait`` never raises a
    task's error). An awaitable slot becomes the ref or the (ready) plain
    value its chain resolves to.

    Returns ``(ready, remaining)``, in input order: the first ``min(num_returns,
    number ready)`` ready slots, and every other slot. A slot whose awaitable
    had not produced its ref yet is ``None`` in ``remaining`` (the awaitable
    is cancelled and closed).

    A Ray Serve ``DeploymentResponse`` slot is a ref slot once Serve's router
    has given it a replica (waited for without blocking the loop): in
    ``ready`` and ``remaining`` it is then its ref, before that the response
    itself. Its request is never cancelled here.

    ``remaining`` remembers what this call learnt: passed straight back
    (``ready, refs = await wait(refs)`` in a loop) it costs O(1) per slot
    returned plus a copy of the list, asking Ray nothing again. Mutating or
    dropping it forgets that; a ``wait`` already running on it finishes.

    Timeout and cancellation: ``timeout`` is a ``move_on_after`` around the
    wait (``None``: for ever, ``0``: what is ready now); when it expires,
    ``wait`` returns normally with what is ready. A checkpoint; cancelled, it
    withdraws every registration with Ray and cancels the awaitables before
    the cancellation propagates. Objects are not fetched, tasks not cancelled.

    Raises:
        TypeError: ``items`` is not a list or tuple, an item is neither an
            ObjectRef nor an awaitable, or an argument has the wrong type.
        ValueError: ``num_returns`` is below 1 or above ``len(items)``, or
            ``timeout`` is negative or NaN.
        Exception: the exception raised by an awaitable item, unwrapped; the
            other awaitables are cancelled.

    Example::

        ready, remaining = await ray_anyio.wait(refs, num_returns=2, timeout=2.5)
    """
    seconds = check_timeout(timeout)
    check_bool(fetch_local, "fetch_local")
    state = state_of(items)
    if state is not None and (state.busy or not state.matches(items, fetch_local)):
        state = None  # another task's wait is using it: start afresh
    if state is None:
        check_items(items, "wait")
    num_returns = check_count(num_returns, "num_returns")
    if not items:
        await checkpoint()
        return [], []
    if num_returns > len(items):
        raise ValueError(
            f"num_returns ({num_returns}) cannot exceed the number of items "
            f"({len(items)})"
        )
    if state is not None:
        return await _wait_again(state, num_returns, seconds)
    await checkpoint()
    return await _wait_new(items, num_returns, seconds, fetch_local)


async def _wait_new(
    items: Sequence[Any], num_returns: int, seconds: float | None, fetch_local: bool
) -> tuple[list[Any], list[Any]]:
    entries = list(items)
    unassigned: dict[int, Any] = {}  # Serve responses without a replica yet
    state = WaitState(entries, fetch_local)
    try:
        awaitables = []
        ref_slots = []
        for index, item in enumerate(items):
            if isinstance(item, ray.ObjectRef):
                ref_slots.append(index)
            elif _serve.is_response(item) and (ref := _serve.ref_now(item)) is not None:
                entries[index] = ref  # assigned: a ref slot from the start
                ref_slots.append(index)
            else:
                awaitables.append(index)
                if _serve.is_response(item):
                    unassigned[index] = item
        state.unresolved.update(awaitables)
        state.start(ref_slots)
        if state.count >= num_returns or seconds == 0:
            for index in awaitables:
                discard(items[index])
        else:
            with anyio.move_on_after(seconds):
                async with FirstErrorGroup() as group:
                    for index in awaitables:
                        group.start_soon(_resolve_slot, state, items[index], index)
                    await state.wait_for(num_returns)
                    group.cancel()
    except BaseException:
        state.close()
        raise
    # No local may hold ``remaining``: a traceback kept alive by the caller
    # would keep this frame, the list and its registrations alive with it.
    if unassigned:
        return _keep_unassigned(state, num_returns, unassigned)
    return state.hand_out(num_returns, keep=not awaitables)


def _keep_unassigned(
    state: WaitState, num_returns: int, unassigned: dict[int, Any]
) -> tuple[list[Any], list[Any]]:
    """:meth:`WaitState.hand_out`, with each response still unassigned in its slot.

    An awaitable's slot not resolved is None in ``remaining``; a response's
    is the response itself, so that the request is not lost.
    """
    ready, remaining = state.hand_out(num_returns, keep=False)
    for position, index in enumerate(state.alive):
        if remaining[position] is None and index in unassigned:
            remaining[position] = unassigned[index]
    return ready, remaining


async def _wait_again(
    state: WaitState, num_returns: int, seconds: float | None
) -> tuple[list[Any], list[Any]]:
    # No checkpoint up front: blocking in wait_for is the checkpoint when
    # there is something to wait for; otherwise the one below is.
    state.busy = True
    try:
        state.absorb(state.watcher.take_arrived())
        if state.count >= num_returns or seconds == 0:
            await checkpoint()
        else:
            with anyio.move_on_after(seconds):
                await state.wait_for(num_returns)
    except anyio.get_cancelled_exc_class():
        # The state stays on ``items`` unless the list was mutated meanwhile.
        if not state.attached:
            state.close()
        raise
    except BaseException:
        state.forget()
        raise
    finally:
        state.busy = False
    return state.hand_out(num_returns, keep=True)


async def _resolve_slot(state: WaitState, awaitable: Any, index: int) -> None:
    state.resolved(index, await resolve_chain(awaitable))
    state.watcher.poke()
