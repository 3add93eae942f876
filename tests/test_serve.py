"""Ray Serve responses wherever a ref goes, against real replicas.

One Serve application runs on the session's Ray for this module (no HTTP
proxy); its replicas report what they saw (a start, a cancellation) to a
``Seen`` actor, which the tests wait on: no sleeps that hope.
"""

from __future__ import annotations

import asyncio
from collections.abc import Iterator
from typing import Any

import anyio
import pytest
import ray

import ray_anyio
from ray_anyio._core import _ray

serve = pytest.importorskip("ray.serve")

pytestmark = [pytest.mark.anyio, pytest.mark.timeout(120)]

APP = "ray_anyio_serve_tests"


@ray.remote(num_cpus=0)
class Seen:
    """Per key: how many calls started, and how many saw their cancellation."""

    def __init__(self) -> None:
        self.counts: dict[tuple[str, str], int] = {}
        self.changed = asyncio.Condition()

    async def note(self, what: str, key: str) -> None:
        self.counts[what, key] = self.counts.get((what, key), 0) + 1
        async with self.changed:
            self.changed.notify_all()

    async def wait(self, what: str, key: str, n: int = 1) -> int:
        async with self.changed:
            await self.changed.wait_for(lambda: self.counts.get((what, key), 0) >= n)
        return self.counts[what, key]

    async def count(self, what: str, key: str) -> int:
        return self.counts.get((what, key), 0)


class _Calls:
    """The deployment's methods; ``hold`` runs until cancelled (at most 60 s)."""

    def __init__(self, seen: Any) -> None:
        self.seen = seen

    async def echo(self, x: Any) -> Any:
        return x

    async def fail(self, message: str) -> None:
        raise ValueError(message)

    async def hold(self, key: str) -> str:
        try:  # a cancellation may come while the start is being noted
            await self.seen.note.remote("started", key)
            await asyncio.sleep(60)
        except asyncio.CancelledError:
            await self.seen.note.remote("cancelled", key)
            raise
        return key

    async def count(self, n: int) -> Any:
        for i in range(n):
            yield i

    async def count_then_hold(self, key: str, n: int) -> Any:
        for i in range(n):
            yield i
        await self.hold(key)


deployment: Any = serve.deployment
Calls = deployment(
    _Calls, name="Calls", ray_actor_options={"num_cpus": 0}, max_ongoing_requests=1000
)
#: One request at a time: a second one waits for a replica (unassigned).
Narrow = deployment(
    _Calls, name="Narrow", ray_actor_options={"num_cpus": 0}, max_ongoing_requests=1
)


@pytest.fixture(scope="module")
def seen(ray_cluster: Any) -> Any:
    return Seen.remote()  # type: ignore[attr-defined]


@pytest.fixture(scope="module")
def handles(seen: Any) -> Iterator[dict[str, Any]]:
    """The handles of a ``Calls`` and a ``Narrow`` app; Serve shut down after."""
    serve.start(proxy_location="Disabled")
    try:
        calls = serve.run(Calls.bind(seen), name=APP, route_prefix=None)
        narrow = serve.run(Narrow.bind(seen), name=f"{APP}_narrow", route_prefix=None)
        yield {"calls": calls, "narrow": narrow}
    finally:
        serve.shutdown()


@pytest.fixture
def calls(handles: dict[str, Any]) -> Any:
    return handles["calls"]


@pytest.fixture
def narrow(handles: dict[str, Any]) -> Any:
    return handles["narrow"]


@pytest.fixture
def key(request: pytest.FixtureRequest) -> str:
    return str(request.node.nodeid)


async def seen_wait(seen: Any, what: str, key: str, n: int = 1) -> int:
    count: int = await ray_anyio.get(seen.wait.remote(what, key, n), timeout=30)
    return count


# --- get ---------------------------------------------------------------------------
async def test_get_one_response(calls: Any) -> None:
    assert await ray_anyio.get(calls.echo.remote(1)) == 1


async def test_get_a_list_of_responses(calls: Any) -> None:
    responses = [calls.echo.remote(i) for i in range(50)]
    assert await ray_anyio.get(responses) == list(range(50))


async def test_get_a_structure_of_responses_refs_and_chains(calls: Any) -> None:
    async def chain() -> Any:
        return calls.echo.remote("chained")

    obj = {"a": calls.echo.remote(1), "b": (ray.put(2), [calls.echo.remote(3)])}
    obj["c"] = chain()
    assert await ray_anyio.get(obj) == {"a": 1, "b": (2, [3]), "c": "chained"}


async def test_get_raises_the_replicas_error(calls: Any) -> None:
    with pytest.raises(ValueError, match="boom"):
        await ray_anyio.get([calls.echo.remote(1), calls.fail.remote("boom")])
    with pytest.raises(ValueError, match="alone"):
        await ray_anyio.get(calls.fail.remote("alone"))


async def test_get_return_exceptions(calls: Any) -> None:
    values = await ray_anyio.get(
        [calls.echo.remote(1), calls.fail.remote("kept")], return_exceptions=True
    )
    assert values[0] == 1
    assert isinstance(values[1], ValueError) and "kept" in str(values[1])


async def test_get_timeout_leaves_the_request_running(
    calls: Any, seen: Any, key: str
) -> None:
    response = calls.hold.remote(key)
    with pytest.raises(TimeoutError):
        await ray_anyio.get(response, timeout=0.2)
    await seen_wait(seen, "started", key)
    assert not response.cancelled()
    response.cancel()
    await seen_wait(seen, "cancelled", key)


async def test_the_loop_runs_while_the_router_waits(
    narrow: Any, seen: Any, key: str
) -> None:
    """A request waiting for a replica blocks no loop: a ticker keeps ticking."""
    busy = narrow.hold.remote(key)
    await seen_wait(seen, "started", key)
    ticks = 0

    async def tick() -> None:
        nonlocal ticks
        while True:
            await anyio.sleep(0.01)
            ticks += 1

    waiting = narrow.echo.remote("late")  # no replica for it while busy holds
    async with anyio.create_task_group() as tg:
        tg.start_soon(tick)
        with anyio.move_on_after(0.5):
            await ray_anyio.get(waiting)
            pytest.fail("the request had a replica")
        busy.cancel()
        assert await ray_anyio.get(waiting, timeout=30) == "late"
        tg.cancel_scope.cancel()
    assert ticks >= 10


async def test_a_request_cancelled_before_its_replica_raises(
    narrow: Any, seen: Any, key: str
) -> None:
    from ray.serve.exceptions import RequestCancelledError

    busy = narrow.hold.remote(key)
    await seen_wait(seen, "started", key)
    waiting = narrow.echo.remote("never")
    waiting.cancel()
    with pytest.raises(RequestCancelledError):
        await ray_anyio.get(waiting)
    with pytest.raises(RequestCancelledError):
        await ray_anyio.get([waiting, ray.put(1)])
    assert isinstance(
        (await ray_anyio.get([waiting], return_exceptions=True))[0],
        RequestCancelledError,
    )
    busy.cancel()
    await seen_wait(seen, "cancelled", key)


async def test_a_new_handle_works_at_once(handles: dict[str, Any]) -> None:
    handle = serve.get_app_handle(APP)
    assert await ray_anyio.get(handle.echo.remote("first")) == "first"


# --- wait, as_completed ------------------------------------------------------------
async def test_wait_on_responses(calls: Any, seen: Any, key: str) -> None:
    held = calls.hold.remote(key)
    done = [calls.echo.remote(i) for i in range(3)]
    ready, remaining = await ray_anyio.wait([held, *done], num_returns=3, timeout=30)
    assert len(ready) == 3 and len(remaining) == 1
    assert sorted(await ray_anyio.get(ready)) == [0, 1, 2]
    held.cancel()


async def test_wait_keeps_an_unassigned_response(
    narrow: Any, seen: Any, key: str
) -> None:
    busy = narrow.hold.remote(key)
    await seen_wait(seen, "started", key)
    waiting = narrow.echo.remote("later")
    ready, remaining = await ray_anyio.wait([waiting], timeout=0.3)
    assert ready == [] and remaining == [waiting]
    busy.cancel()
    ready, remaining = await ray_anyio.wait(remaining, timeout=30)
    assert remaining == [] and await ray_anyio.get(ready) == ["later"]


async def test_as_completed_over_responses(calls: Any) -> None:
    responses = [calls.echo.remote(i) for i in range(20)]
    async with ray_anyio.as_completed(responses) as results:
        got = {index: value async for index, value in results}
    assert got == {i: i for i in range(20)}


async def test_as_completed_add_and_errors(calls: Any) -> None:
    async with ray_anyio.as_completed(
        [calls.fail.remote("bad")], return_exceptions=True
    ) as results:
        results.add(calls.echo.remote("added"))
        got = {index: value async for index, value in results}
    assert got[1] == "added" and isinstance(got[0], ValueError)


# --- stream ------------------------------------------------------------------------
async def test_stream_a_response_generator(calls: Any) -> None:
    gen = calls.options(stream=True).count.remote(5)
    assert [v async for v in ray_anyio.stream(gen, values=True)] == list(range(5))


async def test_closing_a_stream_cancels_the_request(
    calls: Any, seen: Any, key: str
) -> None:
    gen = calls.options(stream=True).count_then_hold.remote(key, 2)
    async with ray_anyio.stream(gen, values=True) as items:
        assert [await items.__anext__(), await items.__anext__()] == [0, 1]
        await seen_wait(seen, "started", key)
    await seen_wait(seen, "cancelled", key)


# --- scopes and map ----------------------------------------------------------------
async def test_scope_waits_for_its_requests(calls: Any) -> None:
    async with ray_anyio.open_scope() as scope:
        response = scope.remote(calls.echo, "kept")
        gen = scope.remote(calls.options(stream=True).count, 3)
    assert await ray_anyio.get(response) == "kept"
    assert [v async for v in ray_anyio.stream(gen, values=True)] == [0, 1, 2]


async def test_scope_raises_a_failed_request(calls: Any, seen: Any, key: str) -> None:
    with pytest.raises(ValueError, match="scope failed"):
        async with ray_anyio.open_scope() as scope:
            scope.remote(calls.hold, key)
            await seen_wait(seen, "started", key)  # else it may never start
            scope.remote(calls.fail, "scope failed")
    await seen_wait(seen, "cancelled", key)


async def test_scope_cancels_on_error(calls: Any, seen: Any, key: str) -> None:
    with pytest.raises(KeyError):
        async with ray_anyio.open_scope() as scope:
            responses = [scope.remote(calls.hold, key) for _ in range(3)]
            await seen_wait(seen, "started", key, 3)
            raise KeyError("leave")
    assert await seen_wait(seen, "cancelled", key, 3) == 3
    assert all(response.cancelled() for response in responses)


async def test_scope_cancels_on_a_deadline(calls: Any, seen: Any, key: str) -> None:
    with anyio.move_on_after(30) as deadline:
        async with ray_anyio.open_scope() as scope:
            scope.remote(calls.hold, key)
            await seen_wait(seen, "started", key)
            deadline.deadline = anyio.current_time()  # the deadline passes now
            await anyio.sleep_forever()
    assert deadline.cancelled_caught
    await seen_wait(seen, "cancelled", key)


async def test_scope_cancels_unassigned_and_streaming(
    calls: Any, narrow: Any, seen: Any, key: str
) -> None:
    async with ray_anyio.open_scope() as scope:
        busy = scope.remote(narrow.hold, key)
        await seen_wait(seen, "started", key)
        waiting = scope.remote(narrow.hold, key)  # no replica for it yet
        gen = scope.remote(calls.options(stream=True).count_then_hold, key, 1)
        await seen_wait(seen, "started", key, 2)
        scope.cancel()
    assert busy.cancelled() and waiting.cancelled() and gen.cancelled()
    assert await seen_wait(seen, "cancelled", key, 2) == 2
    assert await ray_anyio.get(seen.count.remote("started", key)) == 2


@pytest.mark.parametrize("leave", ["scope", "map"])
async def test_a_request_is_cancelled_once(
    calls: Any, seen: Any, key: str, leave: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    """``response.cancel()`` is the one ``ray.cancel`` of its call.

    A second one, recursive as well, can reach the replica while ``hold``'s
    cleanup runs and cancel the call that cleanup makes (its "cancelled" note):
    under load that lost one cancellation in about forty.
    """
    asked: list[Any] = []

    def spy(real: Any) -> Any:
        def cancel(target: Any, **kwargs: Any) -> Any:
            asked.append(target)
            return real(target, **kwargs)

        return cancel

    monkeypatch.setattr(ray, "cancel", spy(ray.cancel))  # what Serve calls
    monkeypatch.setattr(_ray, "cancel", spy(_ray.cancel))  # what we call
    if leave == "scope":
        with pytest.raises(KeyError):
            async with ray_anyio.open_scope() as scope:
                scope.remote(calls.hold, key)
                await seen_wait(seen, "started", key)
                raise KeyError("leave")
    else:
        async with ray_anyio.map(calls.hold, [key]) as results:
            await seen_wait(seen, "started", key)
        assert results.submitted == 1
    assert await seen_wait(seen, "cancelled", key) == 1
    assert len(asked) == 1, asked


async def test_map_over_a_handle(calls: Any) -> None:
    async with ray_anyio.map(calls.echo, range(30), max_in_flight=4) as results:
        assert [value async for value in results] == list(range(30))


async def test_map_cancels_on_leaving(calls: Any, seen: Any, key: str) -> None:
    async with ray_anyio.map(
        calls.hold, [key] * 4, max_in_flight=2, max_per_second=100
    ) as results:
        await seen_wait(seen, "started", key, 2)
        assert results.submitted == 2
    assert await seen_wait(seen, "cancelled", key, 2) == 2
    assert await ray_anyio.get(seen.count.remote("started", key)) == 2


# --- mistakes ----------------------------------------------------------------------
async def test_mistakes_name_the_fix(calls: Any) -> None:
    gen = calls.options(stream=True).count.remote(1)
    with pytest.raises(TypeError, match=r"stream\(gen\)"):
        await ray_anyio.get(gen)
    with pytest.raises(TypeError, match="not a stream"):
        ray_anyio.stream(calls.echo.remote(1))
    with pytest.raises(TypeError, match=r"wrap it: wait\(\[response\]\)"):
        await ray_anyio.wait(calls.echo.remote(1))
    assert [v async for v in ray_anyio.stream(gen, values=True)] == [0]
