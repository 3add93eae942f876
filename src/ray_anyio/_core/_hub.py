"""The hub: the single-ref gets of one event loop share a watcher and fetches.

A web service awaits many single refs from many tasks at once. Each awaiting
task adds its ref to its loop's hub and waits on an event of its own. One of
them, the *leader*, takes Ray's reports for all of them from one watcher and
fetches each burst with one batched ``ray.get``, then wakes the tasks whose
values came; when its own value has come, it hands the lead to a task still
waiting. So a burst costs one wake-up of the loop and one fetch, not one per
task, as a list does.

Cancellation: a cancelled task leaves the hub, withdrawing its ref's
registration if no other task waits for it; a cancelled leader first puts back
the refs of a burst it had taken but not handed out, then passes the lead on.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

import anyio

# _fetch calls the hub and the hub fetches through _fetch: module attributes,
# looked up at call time, make the cycle harmless.
from . import _fetch
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
        self.outcome: _fetch.Outcome | None = None
        self.promoted = False


class Hub:
    """The pending single-ref gets of one event loop; see the module docstring."""

    __slots__ = ("leader", "waits", "watcher")

    def __init__(self) -> None:
        self.waits: dict[Ref, list[_Wait]] = {}
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
        waits = self.waits.get(ref)
        if waits is not None:
            waits.append(wait)
            return
        if self.watcher is None:
            self.watcher = Watcher(fetch_local=True)
        self.watcher.watch((ref,))
        self.waits[ref] = [wait]

    def _remove(self, ref: Ref, wait: _Wait) -> None:
        waits = self.waits.get(ref)
        if waits is None:
            return
        waits.remove(wait)
        if not waits:
            del self.waits[ref]
            if self.watcher is not None:
                self.watcher.unwatch(ref)

    def _promote(self) -> None:
        for waits in self.waits.values():
            for wait in waits:
                if wait.outcome is None:
                    wait.promoted = True
                    wait.event.set()
                    return

    async def _lead(self, mine: _Wait) -> None:
        """Take reports for everybody until ``mine`` has its outcome."""
        assert self.watcher is not None
        watcher = self.watcher
        while mine.outcome is None:
            batch = await watcher.next_ready()
            batch = [ref for ref in batch if ref in self.waits]
            if not batch:
                continue
            try:
                outcomes = await _fetch.fetch_outcomes(batch, reported=True)
            except BaseException:
                # Cancelled while fetching: these refs were reported, but
                # their waits were not woken; registering them again makes
                # Ray report them again.
                watcher.watch(batch)
                raise
            for ref, outcome in zip(batch, outcomes, strict=True):
                for wait in self.waits.pop(ref, ()):
                    wait.outcome = outcome
                    wait.event.set()


def current_hub() -> Hub:
    """The hub of the running event loop."""
    return loop_local("hub", Hub)
