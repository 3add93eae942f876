"""The places of an ``ActorPool``: which actors are live, and which are free.

Each live actor lends ``per_actor`` places, taken first come first served and
given back after the call; a dead actor's places are dropped as they show up.
"""

from __future__ import annotations

import weakref
from collections.abc import Sequence
from typing import TYPE_CHECKING, Any

import anyio
from ray.exceptions import ActorDiedError

from ._core import _ray
from ._core._checks import check_count

if TYPE_CHECKING:
    from anyio.streams.memory import MemoryObjectReceiveStream, MemoryObjectSendStream


class Places:
    """The places of one pool; see the module docstring.

    Raises:
        ValueError: ``actors`` is empty or holds one actor twice.
        TypeError: an element of ``actors`` is not an actor handle, or
            ``per_actor`` is not an int.
    """

    def __init__(self, actors: Sequence[Any], per_actor: int) -> None:
        live = list(actors)
        if not live:
            raise ValueError("actors must hold at least one actor handle")
        seen: dict[Any, int] = {}
        for index, actor in enumerate(live):
            if not _ray.is_actor_handle(actor):
                raise TypeError(
                    f"actors[{index}] must be an actor handle (ActorClass.remote()), "
                    f"got {type(actor).__name__}"
                )
            if actor in seen:
                raise ValueError(
                    f"actors[{index}] is actors[{seen[actor]}] again ({actor!r}): "
                    "each actor may be given once; raise max_in_flight_per_actor "
                    "for more calls per actor"
                )
            seen[actor] = index
        self.per_actor = check_count(per_actor, "max_in_flight_per_actor")
        self._live = live
        self._last_death: BaseException | None = None
        self._streams: (
            tuple[MemoryObjectSendStream[Any], MemoryObjectReceiveStream[Any]] | None
        ) = None

    @property
    def actors(self) -> list[Any]:
        """The live actors."""
        return list(self._live)

    @property
    def capacity(self) -> int:
        """How many calls the live actors take at once."""
        return self.per_actor * len(self._live)

    async def take(self) -> Any:
        """Wait for a free place; return its actor. Free at once: no yield.

        Raises:
            ray.exceptions.ActorDiedError: no live actor is left (the last
                death's error).
            ray.exceptions.RaySystemError: Ray is not running.
        """
        _ray.require_ray()
        _, receive = self._open()
        while True:
            try:
                try:
                    actor = receive.receive_nowait()
                except anyio.WouldBlock:
                    actor = await receive.receive()
            except (anyio.EndOfStream, anyio.ClosedResourceError):
                raise self._no_actor() from None
            if self._is_live(actor):
                return actor  # a place of a dead actor is dropped

    def give(self, actor: Any) -> None:
        """Give back a place of ``actor`` (dropped if it has died meanwhile)."""
        send, _ = self._open()
        if self._is_live(actor):
            send.send_nowait(actor)

    def drop(self, actor: Any, death: BaseException) -> bool:
        """Take the dead ``actor`` out of the pool; True if an actor is left."""
        self._last_death = death
        self._live = [live for live in self._live if live is not actor]
        if not self._live:
            self._open()[0].close()  # wake every waiter: nothing is left
        return bool(self._live)

    def _is_live(self, actor: Any) -> bool:
        return any(actor is live for live in self._live)

    def _open(
        self,
    ) -> tuple[MemoryObjectSendStream[Any], MemoryObjectReceiveStream[Any]]:
        if self._streams is None:
            send, receive = anyio.create_memory_object_stream[Any](
                max(1, self.capacity)
            )
            for _ in range(self.per_actor):
                for actor in self._live:
                    send.send_nowait(actor)
            # The pool has no block to close its streams in: they go with it.
            weakref.finalize(self, _close, send, receive)
            self._streams = send, receive
        return self._streams

    def _no_actor(self) -> BaseException:
        if self._last_death is not None:
            return self._last_death
        return ActorDiedError()


def _close(*streams: Any) -> None:
    for stream in streams:
        stream.close()
