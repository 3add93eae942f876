"""The one mechanism for work off the loop thread: lanes of shared threads.

Every loop of the process shares them (AnyIO's asyncio worker threads belong
to one loop; a warm thread deserialises faster). Threads start under the lane's
lock, so racing loops start at most ``size``, and exit after :data:`IDLE_EXIT`
idle seconds. A job calling Ray is made with :func:`gated`, the gate's one door.
"""

from __future__ import annotations

import threading
from collections import deque
from collections.abc import Callable
from concurrent.futures import Future
from typing import Any, TypeVar

import anyio

from . import _ray
from ._wakeup import current_waker

R = TypeVar("R")

#: Seconds an idle thread waits for a job before it exits.
IDLE_EXIT = 10.0


class Lane:
    """Up to ``size`` daemon threads running queued jobs in order."""

    def __init__(self, name: str, size: int) -> None:
        self.name = name
        self.size = size
        self._cond = threading.Condition()
        self._jobs: deque[tuple[Future[object], Callable[[], object]]] = deque()
        self._threads = 0
        self._idle = 0
        self._started = 0
        self._pending = 0  # queued or running

    def submit(self, fn: Callable[[], R]) -> Future[R]:
        """Queue ``fn``; its future can be cancelled until a thread takes it."""
        future: Future[R] = Future()
        with self._cond:
            self._jobs.append((future, fn))  # type: ignore[arg-type]
            self._pending += 1
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

    def pending(self) -> int:
        """How many jobs are queued or running."""
        with self._cond:
            return self._pending

    def wait_idle(self, timeout: float) -> bool:
        """Block until no job is queued or running; False on timeout."""
        with self._cond:
            return self._cond.wait_for(lambda: self._pending == 0, timeout)

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
            if future.set_running_or_notify_cancel():
                try:
                    result = fn()
                except BaseException as exc:
                    future.set_exception(exc)
                else:
                    future.set_result(result)
            # Free the job here, outside the lock: it may hold large results.
            del future, fn
            with self._cond:
                self._pending -= 1
                self._cond.notify_all()


def gated(
    session: object, fn: Callable[[], R], dead: Callable[[], R] | None = None
) -> Callable[[], R]:
    """``fn`` as a job for the package's threads: the rule that keeps Ray alive.

    The job calls ``fn`` inside ``_ray.GATE`` while ``session`` (that of its
    Ray objects) is live, so ``ray.shutdown`` waits for it; else it calls
    ``dead``, in the gate too. It drops ``fn`` (and its Ray objects) inside the
    gate: freeing a ref on a thread while Ray is torn down ends the process.
    Call the job once, on any thread, never inside another job (no nesting).

    Raises (when the job runs):
        ray.exceptions.RaySystemError: ``session`` has gone and no ``dead``.
        Exception: what ``fn`` (or ``dead``) raised.
    """
    held = [fn]

    def job() -> R:
        with _ray.GATE.using(session) as live:
            try:
                if live:
                    return held[0]()
                if dead is None:
                    raise _ray.not_running()
                return dead()
            finally:
                held.clear()

    return job


async def run(
    lane: Lane, fn: Callable[[], R], stop: Callable[[], None] | None = None
) -> R:
    """Run ``fn`` on ``lane`` and return its result, without blocking the loop.

    The result comes back in a box the loop empties: the lane's thread never
    holds the last reference to it. Cancellation drops a job not started yet
    and returns at once; a running one is asked to ``stop()`` (if given) and
    waited for, shielded.

    Raises:
        Exception: what ``fn`` raised.
    """
    box: list[tuple[bool, Any]] = []
    held = [fn]

    def job() -> None:
        try:
            box.append((True, held.pop()()))
        except BaseException as exc:
            box.append((False, exc))

    done = anyio.Event()
    wake = current_waker()
    future = lane.submit(job)
    future.add_done_callback(lambda _: wake(done.set))
    del fn
    try:
        await done.wait()
    except BaseException:
        if future.cancel():
            held.clear()
        else:
            if stop is not None:
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
