"""``wait``: ``ray.wait`` for refs, awaitables and chains, on any AnyIO backend."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import anyio
import anyio.lowlevel
import ray

from ._checks import check_positive_int, check_timeout
from ._engine import Watcher, split_ready
from ._group import FirstErrorGroup
from ._slots import discard, is_awaitable, resolve_chain

_UNRESOLVED: Any = object()


async def wait(
    items: Sequence[Any],
    *,
    num_returns: int = 1,
    timeout: float | None = None,
    fetch_local: bool = True,
) -> tuple[list[Any], list[Any]]:
    """Wait until ``num_returns`` of ``items`` are ready, like ``ray.wait``.

    Each position of ``items`` is a *slot* (duplicates are separate slots). An
    ObjectRef slot is ready when its object is in this node's object store
    (``fetch_local=True``) or anywhere in the cluster (``fetch_local=False``);
    a failed task's ref is ready too (``wait`` never raises a task's error). An
    awaitable slot is awaited along its chain: it becomes the ref it resolves
    to, or, if it resolves to a plain value, that value, which is ready.

    Returns ``(ready, remaining)``, both in input order: ``ready`` holds the first
    ``min(num_returns, number ready)`` ready slots, ``remaining`` every other
    slot. An entry is the slot's ObjectRef or plain value; a slot whose
    awaitable had not produced its ref yet is ``None`` (in ``remaining``), and
    that awaitable is cancelled and closed.

    Timeout and cancellation: ``timeout`` (seconds; ``None`` waits for ever,
    ``0`` reports what is ready now) is an AnyIO ``move_on_after`` around the
    wait: when it expires ``wait`` returns normally with what is ready. This is a
    checkpoint; when cancelled from outside it withdraws every registration with
    Ray and cancels the awaitables before the cancellation propagates. Objects
    are not fetched and tasks are not cancelled.

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
    _check_items(items)
    seconds = check_timeout(timeout)
    if not isinstance(fetch_local, bool):
        raise TypeError(f"fetch_local must be a bool, got {type(fetch_local).__name__}")
    if not items:
        check_positive_int(num_returns, "num_returns")
        await anyio.lowlevel.checkpoint()
        return [], []
    check_positive_int(num_returns, "num_returns")
    if num_returns > len(items):
        raise ValueError(
            f"num_returns ({num_returns}) cannot exceed the number of items ({len(items)})"
        )
    await anyio.lowlevel.checkpoint()
    return await _Wait(items, num_returns, fetch_local).run(seconds)


def _check_items(items: object) -> None:
    if isinstance(items, ray.ObjectRef):
        raise TypeError(
            "items must be a list or tuple of ObjectRefs or awaitables, got a single "
            "ObjectRef; wrap it: wait([ref])"
        )
    if not isinstance(items, (list, tuple)):
        raise TypeError(
            f"items must be a list or tuple of ObjectRefs or awaitables, got "
            f"{type(items).__name__}"
        )
    for index, item in enumerate(items):
        if not (isinstance(item, ray.ObjectRef) or is_awaitable(item)):
            raise TypeError(
                f"items[{index}] must be an ObjectRef or an awaitable, got "
                f"{type(item).__name__}"
            )


class _Wait:
    """The state of one ``wait`` call: slots, what is ready, how many are."""

    def __init__(self, items: Sequence[Any], num_returns: int, fetch_local: bool):
        self.items = items
        self.num_returns = num_returns
        self.fetch_local = fetch_local
        self.values: list[Any] = [_UNRESOLVED] * len(items)
        self.ready = [False] * len(items)
        self.count = 0
        self.slots_of: dict[ray.ObjectRef, list[int]] = {}
        self.ready_refs: set[ray.ObjectRef] = set()
        self.watcher: Watcher | None = None

    async def run(self, seconds: float | None) -> tuple[list[Any], list[Any]]:
        awaitables = []
        for index, item in enumerate(self.items):
            if isinstance(item, ray.ObjectRef):
                self.values[index] = item
                self.slots_of.setdefault(item, []).append(index)
            else:
                awaitables.append(index)
        ready_now, pending = split_ready(list(self.slots_of), fetch_local=self.fetch_local)
        self._mark_refs(ready_now)
        if self.count >= self.num_returns or seconds == 0:
            for index in awaitables:
                discard(self.items[index])
            return self._result()
        try:
            with Watcher(fetch_local=self.fetch_local) as watcher, anyio.move_on_after(
                seconds
            ):
                self.watcher = watcher
                watcher.watch(pending)
                async with FirstErrorGroup() as group:
                    for index in awaitables:
                        group.start_soon(self._resolve_slot, index)
                    while self.count < self.num_returns:
                        self._mark_refs(await watcher.next_ready())
                    group.cancel()
                # Reports that arrived while the group was being cancelled.
                self._mark_refs(watcher.take_arrived())
        finally:
            self.watcher = None
        return self._result()

    async def _resolve_slot(self, index: int) -> None:
        value = await resolve_chain(self.items[index])
        self.values[index] = value
        if not isinstance(value, ray.ObjectRef):
            self._mark(index)
        elif value in self.ready_refs:
            self._mark(index)
        else:
            self.slots_of.setdefault(value, []).append(index)
            assert self.watcher is not None
            self.watcher.watch((value,))
        if self.count >= self.num_returns and self.watcher is not None:
            self.watcher.poke()

    def _mark_refs(self, refs: list[ray.ObjectRef]) -> None:
        for ref in refs:
            self.ready_refs.add(ref)
            for index in self.slots_of.get(ref, ()):
                self._mark(index)

    def _mark(self, index: int) -> None:
        if not self.ready[index]:
            self.ready[index] = True
            self.count += 1

    def _result(self) -> tuple[list[Any], list[Any]]:
        ready: list[Any] = []
        remaining: list[Any] = []
        for index, value in enumerate(self.values):
            entry = None if value is _UNRESOLVED else value
            if self.ready[index] and len(ready) < self.num_returns:
                ready.append(entry)
            else:
                remaining.append(entry)
        return ready, remaining
