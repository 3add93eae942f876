"""The one mechanism for work off the loop thread: lanes of shared threads.

A :class:`Lane` is a named set of at most ``size`` daemon threads that run
jobs from one queue in order. Every event loop of the process shares them, as
trio's thread cache is shared (AnyIO's asyncio worker threads belong to one
loop, and a fresh thread runs Ray's deserialisation slower than a warm one).
Threads start when a job is queued and none is idle, under the lane's lock, so
two loops that race to use a lane for the first time start no more than
``size``; they exit after :data:`IDLE_EXIT` seconds without work, so an idle
process keeps no threads.

Lanes know nothing of Ray. A job that calls Ray enters ``_ray.GATE`` with the
session it belongs to, so that no thread is inside Ray while ``ray.shutdown``
tears it down, and nothing is called into a Ray that has gone.
"""

from __future__ import annotations

import threading
from collections import deque
from collections.abc import Callable
from concurrent.futures import Future
from typing import Any, TypeVar

import anyio

from ._wakeup import current_waker

R = TypeVar("R")

#: Seconds an idle thread waits for a job before it exits.
IDLE_EXIT = 10.0


class Lane:
    """Up to ``size`` threads running queued jobs; see the module docstring."""

    def __init__(self, name: str, size: int) -> None:
        self.name = name
        self.size = size
        self._cond = threading.Condition()
        self._jobs: deque[tuple[Future[object], Callable[[], object]]] = deque()
        self._threads = 0
        self._idle = 0
        self._started = 0

    def submit(self, fn: Callable[[], R]) -> Future[R]:
        """Queue ``fn``; its future can be cancelled until a thread takes it."""
        future: Future[R] = Future()
        with self._cond:
            self._jobs.append((future, fn))  # type: ignore[arg-type]
            if self._idle:
                self._cond.notify()
            elif self._threads < self.size:
                self._threads += 1
                self._started += 1
                thread = threading.Thread(
                    target=self._work,
                    name=f"ray_anyio-{self.name}-{self._started}",
                    daemon=True,
                )
                try:
                    thread.start()
                except BaseException:
                    self._threads -= 1
                    raise
        return future

    def threads(self) -> int:
        """How many threads the lane has now (busy or idle)."""
        with self._cond:
            return self._threads

    def _work(self) -> None:
        while True:
            with self._cond:
                while not self._jobs:
                    self._idle += 1
                    woke = self._cond.wait(IDLE_EXIT)
                    self._idle -= 1
                    if not woke and not self._jobs:
                        self._threads -= 1
                        return
                future, fn = self._jobs.popleft()
            if not future.set_running_or_notify_cancel():
                continue
            try:
                result = fn()
            except BaseException as exc:
                future.set_exception(exc)
            else:
                future.set_result(result)
            # Free the job here, outside the lock: it may hold large results.
            del future, fn


async def run(lane: Lane, fn: Callable[[], R], stop: Callable[[], None]) -> R:
    """Run ``fn`` on ``lane`` and return its result, without blocking the loop.

    The result (or error) comes back in a box that the loop empties, so the
    lane's thread never holds the last reference to it: freeing Ray objects
    on a thread while ``ray.shutdown`` runs ends the process. A job that holds
    Ray objects itself drops them inside ``_ray.GATE`` before it returns.

    Cancellation: a job that has not started is taken off the queue and the
    call returns at once; a running one is asked to ``stop()`` and the call
    waits, shielded, until it has returned, so nothing it does outlives the
    call.

    Raises:
        Exception: what ``fn`` raised.
    """
    box: list[tuple[bool, Any]] = []

    def job() -> None:
        try:
            box.append((True, fn()))
        except BaseException as exc:
            box.append((False, exc))

    done = anyio.Event()
    wake = current_waker()
    future = lane.submit(job)
    future.add_done_callback(lambda _: wake(done.set))
    try:
        await done.wait()
    except BaseException:
        if not future.cancel():
            stop()
            with anyio.CancelScope(shield=True):
                await done.wait()
        box.clear()
        raise
    ok, value = box.pop()
    if not ok:
        raise value
    result: R = value
    return result


#: Fetches (``ray.get`` of large batches) and puts of large values. Ray
#: deserialises with the GIL held, so more threads would not fetch faster;
#: two let a short fetch pass a long one.
FETCH = Lane("fetch", 2)
#: Withdrawals of registrations and freeing of large bookkeeping, in order.
BACKGROUND = Lane("background", 1)
#: The polling thread of the public readiness path (one long job at a time).
POLL = Lane("poll", 1)
