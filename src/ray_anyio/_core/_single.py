"""One ref's value: at once when it is here, else through the loop's hub.

The single-ref gets of one loop share a hub: one task, the *leader*, takes
Ray's reports for all, fetches each burst with one batched ``ray.get``, wakes
the tasks whose values came, and hands the lead on once its own has come.

A cancelled task leaves the hub, withdrawing its ref if nobody else waits;
a cancelled leader first re-registers a burst it had not handed out.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

import anyio

from . import _ray
from ._fetch import INLINE_FETCH_BYTES, fetch, fetch_outcomes, get_values
from ._multimap import MultiMap
from ._outcome import Outcome
from ._reports import take_reports
from ._wakeup import loop_local
from ._watcher import Watcher

if TYPE_CHECKING:
    import ray

    Ref = ray.ObjectRef[Any]


class _Wait:
    """One task's wait for one ref."""

    __slots__ = ("event", "outcome", "promoted")

    def __init__(self) -> None:
        self.event = anyio.Event()
        self.outcome: Outcome | None = None
        self.promoted = False


class Hub:
    """The pending single-ref gets of one event loop; see the module docstring."""

    __slots__ = ("leader", "waits", "watcher")

    def __init__(self) -> None:
        self.waits: MultiMap[Ref, _Wait] = MultiMap()
        self.watcher: Watcher | None = None
        self.leader: _Wait | None = None

    async def get(self, ref: Ref) -> Any:
        """The value of ``ref`` once Ray has it here; its error raised."""
        wait = _Wait()
        self._add(ref, wait)
        try:
            while wait.outcome is None:
                if self.leader is None:
                    self.leader = wait
                if self.leader is wait:
                    await self._lead(wait)
                else:
                    await wait.event.wait()
                    if wait.promoted:
                        wait.promoted = False
                        wait.event = anyio.Event()
        finally:
            if wait.outcome is None:
                self._remove(ref, wait)
            if self.leader is wait:
                self.leader = None
                self._promote()
            if not self.waits and self.watcher is not None:
                self.watcher.close()
                self.watcher = None
        return wait.outcome.unwrap()

    def _add(self, ref: Ref, wait: _Wait) -> None:
        if not self.waits.add(ref, wait):
            return
        if self.watcher is None:
            self.watcher = Watcher(fetch_local=True)
        self.watcher.watch((ref,))

    def _remove(self, ref: Ref, wait: _Wait) -> None:
        if self.waits.remove(ref, wait) and self.watcher is not None:
            self.watcher.unwatch(ref)

    def _promote(self) -> None:
        for wait in self.waits.values():
            if wait.outcome is None:
                wait.promoted = True
                wait.event.set()
                return

    async def _lead(self, mine: _Wait) -> None:
        """Take reports for everybody until ``mine`` has its outcome."""
        assert self.watcher is not None
        await take_reports(
            self.watcher, self._deliver, until=lambda: mine.outcome is not None
        )

    async def _deliver(self, batch: list[Ref]) -> None:
        batch = [ref for ref in batch if ref in self.waits]
        if not batch:
            return
        try:
            outcomes = await fetch_outcomes(batch, reported=True)
        except BaseException:
            # Cancelled while fetching: re-registering these refs, reported but
            # not handed out, makes Ray report them again.
            if self.watcher is not None:
                self.watcher.watch(batch)
            raise
        for ref, outcome in zip(batch, outcomes, strict=True):
            for wait in self.waits.pop(ref):
                wait.outcome = outcome
                wait.event.set()


def current_hub() -> Hub:
    """The hub of the running event loop."""
    return loop_local("hub", Hub)


async def fetch_one(ref: Ref) -> Any:
    """The value of one ref: at once if it is here, else through the loop's hub.

    A small value that is here is fetched on the loop thread; a large one on
    the fetch lane (see :mod:`._fetch`). Through Ray Client every value crosses
    the network, so every fetch goes through the lane. A checkpoint only when
    it has to wait or go to the lane. Cancellation withdraws the wait.

    Raises:
        Exception: the ref's error, as ``ray.get`` raises it.
        ray.exceptions.RaySystemError: Ray is not running.
    """
    # The core worker answers in well under a microsecond; ray.get(timeout=0)
    # of a pending ref raises, which costs a lot.
    known = _ray.objects()
    if known is None:  # Ray Client: the general fetch, on the lane
        return (await fetch([ref]))[0]
    if known.in_memory(ref):  # small by Ray's own rule
        return _ray.get(ref)
    (size,) = known.sizes((ref,))
    if size > INLINE_FETCH_BYTES:
        return (await get_values([ref]))[0]
    if size:
        return _ray.get(ref)
    return await current_hub().get(ref)
