"""``ActorPool``: calls spread over existing actors, the next to whichever is free.

An actor whose call raises ``ActorDiedError`` leaves the pool and the item is
retried on another; ``ActorUnavailableError`` (the actor may be restarting,
and the call may have run) is that call's error, and the actor stays.
"""

from __future__ import annotations

from collections.abc import AsyncIterable, Callable, Iterable, Sequence
from typing import Any, TypeVar

import anyio
import ray
from ray.exceptions import ActorDiedError

from ._core._block import Block
from ._core._cancel import cancel_now
from ._core._checks import (
    check_bool,
    check_count,
    check_fn,
    check_iterables,
    check_result,
)
from ._core._fetch import fetch
from ._core._outcome import Outcome
from ._core._single import fetch_one
from ._core._wakeup import checkpoint
from ._map import map_block
from ._map_results import MapResults
from ._places import Places
from ._retry import Retry, check_retry
from ._scope import own

T = TypeVar("T")

#: Finished results a ``map`` holds, per place, behind a slow earlier call:
#: while one actor is k times slower than the rest, the others finish about k
#: results per place that must wait for its one (ordered) or for the consumer.
HELD_PER_PLACE = 16


class ActorPool:
    """An async pool over existing actor handles.

    ``fn(actor, *args)`` returns the ref of one call on ``actor``, e.g.
    ``lambda a, x: a.double.remote(x)`` (or the list of refs of a
    ``num_returns=k`` call, whose value is then the list of its k values);
    it runs on the loop thread. Use the pool from one event loop. It has no
    ``aclose``: it holds no task or thread between calls, and what it holds
    is released when it is collected.

    Raises:
        ValueError: ``actors`` is empty or holds one actor twice,
            ``max_in_flight_per_actor`` is below 1 or ``retries`` is negative.
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
        self._places = Places(actors, max_in_flight_per_actor)
        self._retries = check_count(retries, "retries", least=0)

    @property
    def actors(self) -> list[Any]:
        """The actors still in the pool (those that have not died)."""
        return self._places.actors

    async def submit(
        self,
        fn: Callable[..., ray.ObjectRef[T]],
        /,
        *args: Any,
        retry: Retry | None = None,
    ) -> T:
        """Run ``fn(actor, *args)`` on the next free actor; return its value.

        A checkpoint. Cancellation cancels the call (``ray.cancel``; Ray only
        flags a running synchronous actor method, see the docs) and gives its
        place back; it is never retried. A call whose actor died is tried again
        on another, at most ``retries`` times, without counting as an attempt
        of ``retry``. With ``retry`` (a :class:`Retry`), a call that failed
        with an error it covers is made again after its delay, holding no
        place meanwhile.

        Raises:
            TypeError: ``fn`` is not callable, or does not return an ObjectRef;
                ``retry`` is not a ``Retry``.
            Exception: the call's own error (its last, with ``retry``),
                including ``ActorUnavailableError`` (the actor stays in the pool).
            ray.exceptions.ActorDiedError: no live actor is left.
        """
        check_fn(fn, "pool")
        policy = check_retry(retry)
        await checkpoint()
        failures = 0
        while True:
            try:
                return await self._call_once(fn, args)
            except Exception as exc:
                failures += 1
                if (
                    policy is None
                    or failures >= policy.attempts
                    or not policy.retries(exc)
                ):
                    raise
                delay = policy.delay_after(failures)
            await anyio.sleep(delay)

    async def _call_once(self, fn: Callable[..., ray.ObjectRef[T]], args: Any) -> T:
        """One attempt of :meth:`submit`: on the next free actor, another if it dies."""
        deaths = 0
        while True:
            actor = await self._places.take()
            try:
                call = fn(actor, *args)
                check_result(call, "pool")
                try:
                    if isinstance(call, list):  # num_returns=k: their values
                        return await fetch(call)
                    value: T = await fetch_one(call)
                    return value
                except anyio.get_cancelled_exc_class():
                    cancel_now(call[:1] if isinstance(call, list) else [call])
                    raise
            except ActorDiedError as exc:
                deaths += 1
                if not self._retry_after(actor, exc, deaths):
                    raise
            finally:
                self._places.give(actor)

    def map(
        self,
        fn: Callable[..., ray.ObjectRef[T]],
        /,
        *iterables: Iterable[Any] | AsyncIterable[Any],
        ordered: bool = True,
        return_exceptions: bool = False,
        retry: Retry | None = None,
    ) -> Block[MapResults[T]]:
        """Run ``fn(actor, *args)`` for every input on the pool, as :func:`map`.

        ``iterables``, ``ordered``, ``return_exceptions``, ``retry``, the
        errors and the progress counters are :func:`map`'s. A call on an actor
        that died is tried again on another as :class:`ActorPool` says,
        without counting as an attempt of ``retry``; once no retry of that
        kind is left, the ``ActorDiedError`` is the item's outcome.

        Leaving the block (the end, ``break``, an exception, a cancellation)
        cancels the calls in flight without waiting for them to stop (see the
        docs for what Ray does to a running call), gives their places back at
        once and starts no new call.

        Up to 16 finished results per place wait for an earlier, slower call
        (or a slow consumer) before the pool stops starting calls.

        Raises:
            TypeError: ``fn`` is not callable; no iterable, or one that is not
                iterable; ``ordered`` or ``return_exceptions`` is not a bool;
                ``fn(actor, *args)`` returns something other than an
                ObjectRef (raised in the iteration, as that item's error);
                ``retry`` is not a ``Retry``.
            ray.exceptions.ActorDiedError: no live actor is left (as the
                error of each item that finds none).
        """
        check_fn(fn, "pool")
        check_iterables(iterables)
        check_bool(ordered, "ordered")
        check_bool(return_exceptions, "return_exceptions")
        policy = check_retry(retry)
        results: PoolResults[T] = PoolResults(
            self, fn, iterables, ordered, return_exceptions, policy
        )
        # No wait: a running synchronous actor method is only flagged anyway.
        return map_block(results, False, 0)

    def _retry_after(self, actor: Any, death: BaseException, attempt: int) -> bool:
        """Take the dead ``actor`` out; True if attempt ``attempt`` may be retried."""
        left = self._places.drop(actor, death)
        return attempt <= self._retries and left


class PoolResults(MapResults[T]):
    """The iterator of :meth:`ActorPool.map`: ``map``'s, the pool's actors as places.

    A value is fetched as soon as it is on this node (``map``'s eager path): a
    dead actor is known at once and the item is tried again on another.
    """

    def __init__(
        self,
        pool: ActorPool,
        fn: Callable[..., ray.ObjectRef[T]],
        iterables: tuple[Any, ...],
        ordered: bool,
        return_exceptions: bool,
        retry: Retry | None,
    ) -> None:
        # With every actor dead already, each item fails on its place.
        capacity = max(1, pool._places.capacity)
        super().__init__(
            fn,
            False,
            iterables,
            capacity,
            None,
            ordered,
            return_exceptions,
            held=HELD_PER_PLACE * capacity,
            retry=retry,
        )
        self._eager = True
        self._pool = pool
        # Input number -> (its actor, its deaths so far), while running.
        self._calls: dict[int, tuple[Any, int]] = {}

    def _watch_local(self) -> bool:
        return True

    def _stop(self) -> None:
        super()._stop()
        # The calls still in flight are cancelled by the block's scope; their
        # places are the pool's again at once, as submit's are.
        while self._calls:
            self._give_place(next(iter(self._calls)))

    async def _take_place(self) -> Any:
        try:
            actor = await self._pool._places.take()
        except ActorDiedError as exc:  # no live actor left: the item's error
            return exc
        if self._closed:
            # Handed over as the block ended (_stop gave places back just before
            # the feeder's cancellation, which is on its way): no new call.
            self._pool._places.give(actor)
            await anyio.sleep_forever()
        return actor

    def _give_place(self, number: int) -> None:
        actor, _ = self._calls.pop(number)
        self._pool._places.give(actor)

    def _start_input(
        self, number: int, place: Any, args: tuple[Any, ...], deaths: int = 0
    ) -> None:
        if isinstance(place, Exception):  # no live actor left
            self._done(number, Outcome(error=place), ran=False)
            return
        self._calls[number] = (place, deaths)
        try:
            ref = self._fn(place, *args)
            check_result(ref, "pool")
        except Exception as exc:  # the item's own error (bad arguments, ...)
            self._settle(number, Outcome(error=exc))
            return
        own(self._scope, ref)
        self._watch(number, ref)  # a ref, or the list of a num_returns=k call

    def _settle(self, number: int, outcome: Outcome) -> None:
        """A dead actor: try another (not an attempt of ``retry``); else map's."""
        if isinstance(outcome.error, ActorDiedError):
            actor, deaths = self._calls.pop(number)
            if self._pool._retry_after(actor, outcome.error, deaths + 1):
                self._group.start_soon(self._on_another, number, deaths + 1)
                return
            self._args.pop(number, None)
            self._done(number, outcome, ran=False)
            return
        super()._settle(number, outcome)

    async def _on_another(self, number: int, deaths: int) -> None:
        self._start_input(number, await self._take_place(), self._args[number], deaths)
