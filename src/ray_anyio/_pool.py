"""``ActorPool``: calls spread over existing actors, the next to whichever is free.

Each actor lends ``max_in_flight_per_actor`` *places*; a call takes a place
(waiting, first come first served, for any actor to free one), runs on that
actor, and gives the place back. An actor whose call raises
``ActorDiedError`` or ``ActorUnavailableError`` leaves the pool and the item is
retried on another actor.
"""

from __future__ import annotations

from collections.abc import AsyncIterable, Callable, Iterable, Sequence
from typing import TYPE_CHECKING, Any, TypeVar

import anyio
import ray
from ray.exceptions import ActorDiedError

from ._core import _ray
from ._core._block import Block
from ._core._cancel import cancel_now
from ._core._fetch import fetch_one
from ._core._inputs import check_bool, check_positive_int
from ._core._wakeup import checkpoint
from ._map import check_iterables, map_block
from ._map_results import MapResults
from ._pool_results import ACTOR_GONE, PoolResults

if TYPE_CHECKING:
    from anyio.streams.memory import MemoryObjectReceiveStream, MemoryObjectSendStream

T = TypeVar("T")


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
                attempt += 1
                if not self._retry_after(actor, exc, attempt):
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
        errors, ``return_exceptions`` and progress counters. A call's value
        is fetched as soon as it is done, and a call on an actor that died is
        retried as :class:`ActorPool` says. Leaving the block (the end,
        ``break``, an exception, a cancellation) cancels the calls in flight
        without waiting for them to stop (see the docs for what Ray does to a
        running call), gives their places back at once and starts no new
        call.

        So that a slow actor does not hold back the others, up to 16 finished
        results per place of the pool wait for an earlier, slower one (or for
        a slow consumer) before the pool stops starting calls.

        Raises:
            TypeError: ``fn`` is not callable; no iterable, or one that is not
                iterable; ``ordered`` or ``return_exceptions`` is not a bool;
                ``fn(actor, *args)`` returns something other than an
                ObjectRef (raised in the iteration, as that item's error).
            ray.exceptions.ActorDiedError: no live actor is left (as the
                error of each item that finds none).
        """
        if not callable(fn):
            raise TypeError(
                "fn must be a callable taking (actor, *args) and returning the "
                f"ObjectRef of one actor call, got {type(fn).__name__}"
            )
        check_iterables(iterables)
        check_bool(ordered, "ordered")
        check_bool(return_exceptions, "return_exceptions")
        results: PoolResults[T] = PoolResults(
            self, fn, iterables, ordered, return_exceptions
        )
        # The calls in flight are cancelled without waiting for them to stop:
        # a running synchronous actor method is only flagged (see the docs).
        return map_block(results, False, 0)

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

    def _retry_after(self, actor: Any, exc: BaseException, attempt: int) -> bool:
        """Take the dead ``actor`` out of the pool; True if the item may be retried.

        ``exc`` ended the item's attempt number ``attempt`` (from 1).
        """
        self._last_death = exc
        self._live = [live for live in self._live if live is not actor]
        if not self._live:
            self._streams()[0].close()  # wake every waiter: nothing is left
        return attempt <= self._retries and bool(self._live)

    def _no_actor(self) -> BaseException:
        if self._last_death is not None:
            return self._last_death
        return ActorDiedError()
