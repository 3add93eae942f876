"""The iterator of ``ActorPool.map``: ``map``'s, with the pool's actors as places.

An input waits for a free place of the pool, and its call is watched like a
``map`` task (no task of the event loop per call). A call's value is fetched
as soon as Ray has it on this node, so that a dead actor is known at once: it
leaves the pool and the item is tried again on another (a task of the loop per
retry).
"""

from __future__ import annotations

from collections.abc import Callable
from typing import TYPE_CHECKING, Any, TypeVar

import anyio
import ray
from ray.exceptions import ActorDiedError, ActorUnavailableError

from ._core._fetch import Outcome, fetch_outcomes
from ._map_results import MapResults

if TYPE_CHECKING:
    from ._pool import ActorPool

T = TypeVar("T")

#: Finished results a ``map`` holds, per place, behind a slow earlier call:
#: while one actor is k times slower than the rest, the others finish about k
#: results per place that must wait for its one (ordered) or for the consumer.
HELD_PER_PLACE = 16

#: The errors that take an actor out of the pool (and get its item retried).
ACTOR_GONE = (ActorDiedError, ActorUnavailableError)


class PoolResults(MapResults[T]):
    """The iterator of :meth:`ActorPool.map`; see the module docstring."""

    WATCH_LOCAL = True

    def __init__(
        self,
        pool: ActorPool,
        fn: Callable[..., ray.ObjectRef[T]],
        iterables: tuple[Any, ...],
        ordered: bool,
        return_exceptions: bool,
    ) -> None:
        # With every actor dead already, each item fails on its place.
        capacity = max(1, pool._per_actor * len(pool._live))
        super().__init__(
            fn,
            False,
            iterables,
            capacity,
            None,
            ordered,
            return_exceptions,
            held=HELD_PER_PLACE * capacity,
        )
        self._pool = pool
        # Input number -> (its actor, its arguments, its attempt), while running.
        self._calls: dict[int, tuple[Any, tuple[Any, ...], int]] = {}

    def _close(self) -> None:
        super()._close()
        # The calls still in flight are cancelled by the block's scope; their
        # places are the pool's again at once, as submit's are.
        while self._calls:
            self._give_place(next(iter(self._calls)))

    async def _take_place(self) -> Any:
        try:
            actor = await self._pool._take_place()
        except ACTOR_GONE as exc:  # no live actor left: the item's error
            return exc
        if self._closed:
            # Handed over as the block ended (_close gives places back just
            # before it cancels the feeder): no new call, and the
            # cancellation is on its way.
            self._pool._give_place(actor)
            await anyio.sleep_forever()
        return actor

    def _give_place(self, number: int) -> None:
        actor, _, _ = self._calls.pop(number)
        self._pool._give_place(actor)

    def _start_input(
        self, number: int, place: Any, args: tuple[Any, ...], attempt: int = 0
    ) -> None:
        if isinstance(place, Exception):  # no live actor left
            self._finish(number, Outcome(error=place), ran=False)
            return
        self._calls[number] = (place, args, attempt)
        try:
            ref = self._fn(place, *args)
            if not isinstance(ref, ray.ObjectRef):
                raise TypeError(
                    "fn(actor, *args) must return the ObjectRef of one actor "
                    f"call, got {type(ref).__name__}"
                )
        except Exception as exc:  # the item's own error (bad arguments, ...)
            self._settle(number, Outcome(error=exc))
            return
        self._scope._track(ref)
        self._watch(number, ref)

    async def _collect(self) -> None:
        while True:
            batch = await self._watcher.next_ready()
            if not batch:
                continue
            # Reported once on this node: the fetch waits for no transfer.
            outcomes = await fetch_outcomes(batch, reported=True)
            for ref, outcome in zip(batch, outcomes, strict=True):
                self._scope._forget(ref)
                for number in self._running_refs.pop(ref):
                    self._settle(number, outcome)

    def _settle(self, number: int, outcome: Outcome) -> None:
        """The call of input ``number`` has ended with ``outcome``."""
        if isinstance(outcome.error, ACTOR_GONE):
            actor, args, attempt = self._calls.pop(number)
            if self._pool._retry_after(actor, outcome.error, attempt + 1):
                self._group.start_soon(self._retry, number, args, attempt + 1)
                return
            self._finish(number, outcome, ran=False)
            return
        self._finish(number, outcome)

    async def _retry(self, number: int, args: tuple[Any, ...], attempt: int) -> None:
        self._start_input(number, await self._take_place(), args, attempt)
