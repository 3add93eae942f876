"""``ActorPool``: calls spread over existing actors, the next to whichever is free.

Each actor lends ``max_in_flight_per_actor`` *places*; a call takes a place
(waiting, first come first served, for any actor to free one), runs on that
actor, and gives the place back. An actor whose call raises
``ActorDiedError`` or ``ActorUnavailableError`` leaves the pool and the item is
retried on another actor.
"""

from __future__ import annotations

from collections.abc import AsyncIterable, Callable, Iterable, Sequence
from functools import partial
from typing import TYPE_CHECKING, Any, TypeVar

import anyio
import ray
from ray.exceptions import ActorDiedError, ActorUnavailableError

from ._core import _ray
from ._core._block import Block
from ._core._cancel import cancel_now
from ._core._fetch import fetch_one
from ._core._inputs import check_positive_int
from ._core._wakeup import checkpoint
from ._map import open_map
from ._map_results import MapResults
from ._scope import DEFAULT_CANCEL_TIMEOUT

if TYPE_CHECKING:
    from anyio.streams.memory import MemoryObjectReceiveStream, MemoryObjectSendStream

T = TypeVar("T")

#: Finished results a ``map`` holds, per place, behind a slow earlier call:
#: while one actor is k times slower than the rest, the others finish about k
#: results per place that must wait for its one (ordered) or for the consumer.
_HELD_PER_PLACE = 16

#: The errors that take an actor out of the pool (and get its item retried).
ACTOR_GONE = (ActorDiedError, ActorUnavailableError)


def _is_actor(obj: object) -> bool:
    # Through Ray Client an actor handle is a ClientActorHandle, which is not
    # an ActorHandle.
    return isinstance(obj, ray.actor.ActorHandle) or type(obj).__name__ == (
        "ClientActorHandle"
    )


class ActorPool:
    """An async pool over existing actor handles.

    ``fn(actor, *args)`` returns the ref of one call on ``actor``, e.g.
    ``lambda a, x: a.double.remote(x)``. Use the pool from one event loop.

    Raises:
        ValueError: ``actors`` is empty, ``max_in_flight_per_actor`` is below
            1 or ``retries`` is negative.
        TypeError: an element of ``actors`` is not an actor handle, or an
            argument has the wrong type.

    Example::

        pool = ray_anyio.ActorPool([Doubler.remote() for _ in range(4)])
        async with pool.map(lambda a, x: a.double.remote(x), range(100)) as values:
            async for value in values:
                ...
    """

    def __init__(
        self,
        actors: Sequence[Any],
        *,
        max_in_flight_per_actor: int = 1,
        retries: int = 1,
    ) -> None:
        actors = list(actors)
        if not actors:
            raise ValueError("actors must hold at least one actor handle")
        for index, actor in enumerate(actors):
            if not _is_actor(actor):
                raise TypeError(
                    f"actors[{index}] must be an actor handle (ActorClass.remote()), "
                    f"got {type(actor).__name__}"
                )
        self._per_actor = check_positive_int(
            max_in_flight_per_actor, "max_in_flight_per_actor"
        )
        if isinstance(retries, bool) or not isinstance(retries, int):
            raise TypeError(f"retries must be an int, got {type(retries).__name__}")
        if retries < 0:
            raise ValueError(f"retries must be 0 or more, got {retries}")
        self._retries = retries
        self._live = actors
        self._last_death: BaseException | None = None
        self._places: (
            tuple[MemoryObjectSendStream[Any], MemoryObjectReceiveStream[Any]] | None
        ) = None

    @property
    def actors(self) -> list[Any]:
        """The actors still in the pool (those that have not died)."""
        return list(self._live)

    async def submit(self, fn: Callable[..., ray.ObjectRef[T]], /, *args: Any) -> T:
        """Run ``fn(actor, *args)`` on the next free actor; return its value.

        A checkpoint. Cancellation cancels the call (``ray.cancel``; Ray only
        flags a running synchronous actor method, see the docs) and gives its
        place back.

        Raises:
            Exception: the call's own error (never retried).
            ray.exceptions.ActorDiedError: no live actor is left.
        """
        await checkpoint()
        return await self._run(fn, *args)

    async def _run(self, fn: Callable[..., ray.ObjectRef[T]], /, *args: Any) -> T:
        """:meth:`submit` without its own checkpoint (``map``'s steps are)."""
        attempt = 0
        while True:
            actor = await self._take_place()
            try:
                ref = fn(actor, *args)
                try:
                    value: T = await fetch_one(ref)
                    return value
                except anyio.get_cancelled_exc_class():
                    cancel_now([ref])
                    raise
            except ACTOR_GONE as exc:
                self._leave(actor, exc)
                attempt += 1
                if attempt > self._retries or not self._live:
                    raise
            finally:
                self._give_place(actor)

    def map(
        self,
        fn: Callable[..., ray.ObjectRef[T]],
        /,
        *iterables: Iterable[Any] | AsyncIterable[Any],
        ordered: bool = True,
        return_exceptions: bool = False,
    ) -> Block[MapResults[T]]:
        """Run ``fn(actor, *args)`` for every input on the pool, as :func:`map`.

        ``iterables`` are zipped as :func:`map` zips them; results come in
        input order (``ordered=True``) or as they finish, with the same
        errors, ``return_exceptions`` and progress counters. Leaving the
        block early or on an error cancels the calls in flight and starts no
        new one.

        So that a slow actor does not hold back the others, up to 16 finished
        results per place of the pool wait for an earlier, slower one (or for
        a slow consumer) before the pool stops starting calls.
        """
        capacity = self._per_actor * len(self._live)
        results: Block[MapResults[T]] = open_map(
            partial(self._run, fn),
            iterables,
            max_in_flight=capacity,
            max_per_second=None,
            ordered=ordered,
            return_exceptions=return_exceptions,
            force=False,
            cancel_timeout=DEFAULT_CANCEL_TIMEOUT,
            held=_HELD_PER_PLACE * capacity,
        )
        return results

    # --- places ----------------------------------------------------------------

    def _streams(
        self,
    ) -> tuple[MemoryObjectSendStream[Any], MemoryObjectReceiveStream[Any]]:
        if self._places is None:
            send, receive = anyio.create_memory_object_stream[Any](
                self._per_actor * len(self._live)
            )
            for _ in range(self._per_actor):
                for actor in self._live:
                    send.send_nowait(actor)
            self._places = send, receive
        return self._places

    async def _take_place(self) -> Any:
        _ray.require_ray()
        _, receive = self._streams()
        while True:
            try:
                try:
                    actor = receive.receive_nowait()
                except anyio.WouldBlock:
                    actor = await receive.receive()
            except (anyio.EndOfStream, anyio.ClosedResourceError):
                raise self._no_actor() from None
            if any(actor is live for live in self._live):
                return actor  # a place of a dead actor is dropped

    def _give_place(self, actor: Any) -> None:
        send, _ = self._streams()
        if any(actor is live for live in self._live):
            send.send_nowait(actor)

    def _leave(self, actor: Any, exc: BaseException) -> None:
        self._last_death = exc
        self._live = [live for live in self._live if live is not actor]
        if not self._live:
            self._streams()[0].close()  # wake every waiter: nothing is left

    def _no_actor(self) -> BaseException:
        if self._last_death is not None:
            return self._last_death
        return ActorDiedError()
