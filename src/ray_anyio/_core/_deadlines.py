"""Deadlines of many items, watched by one task (``map``'s ``item_timeout``)."""

from __future__ import annotations

import heapq
from collections.abc import Callable, Hashable
from typing import Generic, TypeVar

import anyio

K = TypeVar("K", bound=Hashable)


class Deadlines(Generic[K]):
    """Keys with a deadline each; :meth:`run` calls back for each that expires.

    A key is set again with a new ``token`` (say, its attempt number): only the
    deadline of its latest token counts. One heap and one task for any number
    of keys, where a ``move_on_after`` per item would cost a task each.
    """

    def __init__(self, seconds: float) -> None:
        self.seconds = seconds
        self._heap: list[tuple[float, int, K, object]] = []
        self._latest: dict[K, object] = {}
        self._order = 0  # breaks ties without comparing keys
        self._changed = anyio.Event()

    def start(self, key: K, token: object) -> None:
        """``key`` (in its ``token``-th life) expires ``seconds`` from now."""
        self._latest[key] = token
        self._order += 1
        when = anyio.current_time() + self.seconds
        heapq.heappush(self._heap, (when, self._order, key, token))
        if self._heap[0][1] == self._order:  # the earliest now: wake the watcher
            self._changed.set()

    def stop(self, key: K) -> None:
        """``key`` has ended in time; its deadline no longer counts."""
        self._latest.pop(key, None)

    async def run(self, expire: Callable[[K], None]) -> None:
        """Call ``expire(key)`` for every key whose latest deadline passes.

        Runs until cancelled; a checkpoint.
        """
        while True:
            self._changed = anyio.Event()
            now = anyio.current_time()
            while self._heap and self._heap[0][0] <= now:
                _, _, key, token = heapq.heappop(self._heap)
                if key in self._latest and self._latest[key] == token:
                    del self._latest[key]
                    expire(key)
            with anyio.move_on_after(self._heap[0][0] - now if self._heap else 3600):
                await self._changed.wait()
