"""Remote functions and actors the tests share."""

from __future__ import annotations

import asyncio
import os
import threading
import time
from typing import TYPE_CHECKING, Any

import ray


@ray.remote
def square(x: int) -> int:
    return x * x


@ray.remote
def add(*xs: int) -> int:
    return sum(xs)


@ray.remote
def sleep_then(seconds: float, value: Any) -> Any:
    time.sleep(seconds)
    return value


@ray.remote
def fail(message: str) -> None:
    raise ValueError(message)


@ray.remote
def replay(*values: Any) -> Any:
    """A streaming generator that yields its arguments."""
    # Not ``yield from``: Ray sends values into the generator, which a tuple's
    # iterator cannot take.
    for value in values:  # noqa: UP028
        yield value


#: Threads that unpickled a :class:`Marked` value, in this process.
UNPICKLED_ON: list[int] = []


class Marked:
    """A pure-Python value that records which thread unpickles it.

    Pickled, ``Marked(n)`` takes about ``4.9 * n`` bytes: ``n`` above 100,000
    puts it in the object store, above the fetch's inline limit.
    """

    def __init__(self, n: int) -> None:
        self.items = list(range(n))

    def __setstate__(self, state: dict[str, Any]) -> None:
        self.__dict__.update(state)
        UNPICKLED_ON.append(threading.get_ident())

    def __eq__(self, other: object) -> bool:
        return isinstance(other, Marked) and other.items == self.items

    __hash__ = None  # type: ignore[assignment]


#: ``ray.remote`` as a plain callable: its stubs know no actor options such as
#: ``max_concurrency``, and hide ``.remote()`` on decorated classes.
remote_actor: Any = ray.remote


def start(actor_class: Any) -> Any:
    """``actor_class.remote()``, which type checkers cannot see on a class."""
    return actor_class.remote()


@remote_actor(num_cpus=0, max_concurrency=100_000)
class Gates:
    """Named events: calls block on a gate until a test opens it.

    ``max_concurrency`` is high so that ``open`` never queues behind blocked
    calls (an async actor runs 1,000 calls at once by default).
    """

    def __init__(self) -> None:
        self.events: dict[str, asyncio.Event] = {}
        self.counts: dict[str, int] = {}

    def _event(self, name: str) -> asyncio.Event:
        return self.events.setdefault(name, asyncio.Event())

    async def ping(self) -> bool:
        return True

    async def value_after(self, name: str, value: Any) -> Any:
        self.counts[name] = self.counts.get(name, 0) + 1
        try:
            await self._event(name).wait()
        finally:
            self.counts[name] -= 1
        return value

    async def fail_after(self, name: str, message: str) -> None:
        await self._event(name).wait()
        raise ValueError(message)

    async def open(self, name: str) -> None:
        self._event(name).set()

    async def waiting(self, name: str) -> int:
        return self.counts.get(name, 0)


@ray.remote(max_retries=0)
def crash() -> None:
    import os

    os._exit(1)


@remote_actor(num_cpus=0)
class Nested:
    """An async actor that uses ray_anyio inside Ray's own asyncio loop."""

    async def get_and_wait(
        self, refs: list[ray.ObjectRef[Any]]
    ) -> tuple[list[Any], int]:
        import ray_anyio

        values = await ray_anyio.get(refs)
        ready, _ = await ray_anyio.wait(refs, num_returns=len(refs))
        return values, len(ready)


# --- structure layer: as_completed, open_scope, map, stream ---------------------


@ray.remote(num_cpus=0)
class Tracker:
    """Per key: how many calls are running, how many started, the peak at once.

    ``hold`` calls wait for a token (``release``) or for the key to be opened.
    Blocking tasks report themselves with ``enter``/``leave`` and a token of
    their own: Ray does not keep the order of calls to an async actor, so a
    ``leave`` that overtakes its ``enter`` cancels it.
    """

    def __init__(self) -> None:
        self.active: dict[str, set[str]] = {}
        self.left: set[str] = set()
        self.started: dict[str, int] = {}
        self.peak: dict[str, int] = {}
        self.tokens: dict[str, int] = {}
        self.opened: set[str] = set()
        self.calls = 0
        self.changed = asyncio.Condition()

    async def _notify(self) -> None:
        async with self.changed:
            self.changed.notify_all()

    def _running(self, key: str) -> int:
        return len(self.active.get(key, ()))

    async def enter(self, key: str, token: str) -> None:
        if token in self.left:
            return
        self.active.setdefault(key, set()).add(token)
        self.started[key] = self.started.get(key, 0) + 1
        self.peak[key] = max(self.peak.get(key, 0), self._running(key))
        await self._notify()

    async def leave(self, key: str, token: str) -> None:
        self.left.add(token)
        self.active.get(key, set()).discard(token)
        await self._notify()

    async def hold(self, key: str, value: Any) -> Any:
        self.calls += 1
        token = f"hold-{self.calls}"
        await self.enter(key, token)
        try:
            async with self.changed:
                await self.changed.wait_for(
                    lambda: key in self.opened or self.tokens.get(key, 0) > 0
                )
                if key not in self.opened:
                    self.tokens[key] -= 1
        finally:
            await self.leave(key, token)
        return value

    async def take(self, item: tuple[str, Any]) -> Any:
        """``hold`` with one argument, ``(key, value)``: for ``map``."""
        key, value = item
        return await self.hold(key, value)

    async def hold_then_fail(self, key: str, message: str) -> None:
        await self.hold(key, None)
        raise ValueError(message)

    async def produce(self, key: str, n: int, fail_at: int = -1) -> Any:
        """An async generator method: yields 0..n-1, raising at ``fail_at``."""
        for i in range(n):
            if i == fail_at:
                raise ValueError(f"failed at {i}")
            yield i

    async def produce_then_hold(self, key: str, n: int) -> Any:
        """Yields 0..n-1, then waits (counted as running) until ``key`` opens."""
        self.calls += 1
        token = f"produce-{self.calls}"
        await self.enter(key, token)
        try:
            for i in range(n):
                yield i
            async with self.changed:
                await self.changed.wait_for(lambda: key in self.opened)
        finally:
            await self.leave(key, token)

    async def release(self, key: str, n: int = 1) -> None:
        self.tokens[key] = self.tokens.get(key, 0) + n
        await self._notify()

    async def open(self, key: str) -> None:
        self.opened.add(key)
        await self._notify()

    async def wait_for(self, key: str, running: int, started: int = 0) -> None:
        """Return once at least ``running`` run at once and ``started`` started."""
        async with self.changed:
            await self.changed.wait_for(
                lambda: (
                    self._running(key) >= running
                    and self.started.get(key, 0) >= started
                )
            )

    async def wait_idle(self, key: str) -> None:
        """Return once nothing runs under ``key``."""
        async with self.changed:
            await self.changed.wait_for(lambda: self._running(key) == 0)

    async def stats(self, key: str) -> dict[str, int]:
        return {
            "running": self._running(key),
            "started": self.started.get(key, 0),
            "peak": self.peak.get(key, 0),
        }


if TYPE_CHECKING:  # Ray before 2.54 cannot subscript these at run time
    Handle = ray.actor.ActorHandle[Any]
    Ref = ray.ObjectRef[Any]

_trackers: list[Handle] = []


def new_tracker() -> Handle:
    """A ``Tracker`` of its own (for a test that kills it)."""
    cls: Any = Tracker  # ray.remote hides .remote() from type checkers
    handle: Handle = cls.remote()
    return handle


def tracker_actor() -> Handle:
    """The session's one ``Tracker``, created on first use and kept alive."""
    if not _trackers:
        _trackers.append(new_tracker())
    return _trackers[0]


class Track:
    """One key of the shared ``Tracker``, for one test."""

    def __init__(self, actor: Handle, key: str) -> None:
        self.actor = actor
        self.key = key

    def sub(self, name: str) -> Track:
        return Track(self.actor, f"{self.key}/{name}")

    def hold(self, value: Any) -> Ref:
        """A ref that becomes ``value`` once released (one token) or opened."""
        ref: Ref = self.actor.hold.remote(self.key, value)
        return ref

    def hold_then_fail(self, message: str) -> Ref:
        ref: Ref = self.actor.hold_then_fail.remote(self.key, message)
        return ref

    def release(self, n: int = 1) -> None:
        ray.get(self.actor.release.remote(self.key, n))

    def open(self) -> None:
        ray.get(self.actor.open.remote(self.key))

    def wait_for(self, *, running: int, started: int = 0) -> Ref:
        """A ref ready once at least ``running`` run and ``started`` started."""
        ref: Ref = self.actor.wait_for.remote(self.key, running, started)
        return ref

    def wait_idle(self) -> Ref:
        """A ref ready once nothing runs under this key."""
        ref: Ref = self.actor.wait_idle.remote(self.key)
        return ref

    def stats(self) -> dict[str, int]:
        return dict(ray.get(self.actor.stats.remote(self.key)))


@ray.remote(max_retries=0)
def spin(tracker: Handle, key: str) -> None:
    """Run (interruptibly: short sleeps) until cancelled; at most 30 s."""
    token = ray.get_runtime_context().get_task_id()
    try:
        # Not waited for: a cancellation arriving in a wait here would skip
        # nothing, since leave (always sent) cancels a late enter.
        tracker.enter.remote(key, token)
        deadline = time.monotonic() + 30
        while time.monotonic() < deadline:
            time.sleep(0.01)
    finally:
        ray.get(tracker.leave.remote(key, token))


@ray.remote(max_retries=0)
def stubborn(tracker: Handle, key: str) -> None:
    """Block in one C call (only a forced cancel stops it); at most 30 s."""
    ray.get(tracker.enter.remote(key, ray.get_runtime_context().get_task_id()))
    time.sleep(30)


@ray.remote(max_retries=0)
def count_to(n: int, fail_at: int = -1) -> Any:
    """A streaming generator task: yields 0..n-1, raising at ``fail_at``."""
    for i in range(n):
        if i == fail_at:
            raise ValueError(f"failed at {i}")
        yield i


@ray.remote(max_retries=0)
def count_with_gate(tracker: Handle, key: str, n: int) -> Any:
    """Yields 0, then each further item once ``key`` releases a token."""
    for i in range(n):
        if i:
            ray.get(tracker.hold.remote(key, None))
        yield i


@ray.remote(max_retries=0)
def count_then_spin(tracker: Handle, key: str, n: int) -> Any:
    """Yields 0..n-1, then runs (interruptibly) until cancelled; at most 30 s."""
    token = ray.get_runtime_context().get_task_id()
    try:
        tracker.enter.remote(key, token)  # not waited for, as in spin
        for i in range(n):  # noqa: UP028 - Ray calls .send(); a range has none
            yield i
        deadline = time.monotonic() + 30
        while time.monotonic() < deadline:
            time.sleep(0.01)
    finally:
        ray.get(tracker.leave.remote(key, token))


@ray.remote(num_returns=2)
def pair(x: int) -> tuple[int, int]:
    return x, -x


@ray.remote(max_retries=0, max_calls=1)
def deaf(tracker: Handle, key: str) -> None:
    """Ignore a polite cancel, as any task of a Ray started where SIGINT is
    ignored does; run (interruptibly) until forced; at most 30 s.

    ``max_calls=1``: the worker exits afterwards, so no later task inherits
    the ignored SIGINT.
    """
    import signal

    signal.signal(signal.SIGINT, signal.SIG_IGN)
    token = ray.get_runtime_context().get_task_id()
    tracker.enter.remote(key, token)  # not waited for, as in spin
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline:
        time.sleep(0.01)


@remote_actor(num_cpus=0, max_concurrency=2)
class Busy:
    """A threaded actor whose ``work`` ignores cancellation (it is only flagged)."""

    def __init__(self) -> None:
        self.started = threading.Event()

    def work(self, seconds: float) -> str:
        self.started.set()
        time.sleep(seconds)
        return "done"

    def wait_started(self) -> bool:
        return self.started.wait(30)


@remote_actor(num_cpus=0, max_concurrency=100)
class PoolWorker:
    """An async actor for pool tests: records its calls and its peak concurrency.

    With ``hold`` set, calls wait until it is cleared.
    """

    def __init__(self) -> None:
        self.running = 0
        self.peak = 0
        self.calls: list[Any] = []
        self.changed = asyncio.Condition()
        self.released = asyncio.Event()
        self.released.set()

    async def _note(self, delta: int) -> None:
        self.running += delta
        self.peak = max(self.peak, self.running)
        async with self.changed:
            self.changed.notify_all()

    async def double(self, x: int, delay: float = 0.0) -> int:
        self.calls.append(x)
        await self._note(+1)
        try:
            await self.released.wait()
            if delay:
                await asyncio.sleep(delay)
        finally:
            await self._note(-1)
        return 2 * x

    async def fail(self, x: int) -> None:
        self.calls.append(x)
        raise ValueError(f"bad {x}")

    async def flaky(self, attempts: Any, key: str, failures: int) -> int:
        """Fail on the first ``failures`` attempts of ``key`` (over all actors)."""
        n: int = await attempts.note.remote(key)
        if n <= failures:
            raise ValueError(f"{key}: attempt {n} fails")
        return n

    @ray.method(num_returns=2)
    def split(self, x: int) -> tuple[int, int]:
        return x, -x

    async def hold(self, on: bool) -> None:
        if on:
            self.released.clear()
        else:
            self.released.set()

    async def wait_running(self, n: int) -> None:
        async with self.changed:
            await self.changed.wait_for(lambda: self.running >= n)

    async def stats(self) -> dict[str, Any]:
        return {"peak": self.peak, "calls": list(self.calls), "running": self.running}


@remote_actor(num_cpus=0, max_restarts=1)
class Restartable:
    """An actor with a restart left: ``crash`` ends its process once."""

    def crash(self) -> None:
        os._exit(1)

    def double(self, x: int) -> int:
        return 2 * x


# --- retries: attempts recorded by the tasks themselves -------------------------


@remote_actor(num_cpus=0, max_concurrency=1000)
class Attempts:
    """Per key, the times (``time.time()``) at which an attempt began."""

    def __init__(self) -> None:
        self.times: dict[str, list[float]] = {}

    async def note(self, key: str) -> int:
        """Record an attempt of ``key``; return its number (1 for the first)."""
        self.times.setdefault(key, []).append(time.time())
        return len(self.times[key])

    async def of(self, key: str) -> list[float]:
        return self.times.get(key, [])


ERRORS: dict[str, type[Exception]] = {"value": ValueError, "key": KeyError}


@ray.remote(max_retries=0)
def flaky(attempts: Handle, key: str, failures: int, error: str = "value") -> int:
    """Fail with ``ERRORS[error]`` on the first ``failures`` attempts of ``key``."""
    n: int = ray.get(attempts.note.remote(key))
    if n <= failures:
        raise ERRORS[error](f"{key}: attempt {n} fails")
    return n
