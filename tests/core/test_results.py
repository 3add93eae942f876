"""The base of the result iterators: its guard, its single and batch steps, add."""

from __future__ import annotations

import inspect
from collections import deque
from collections.abc import Sequence

import pytest

from ray_anyio._core._outcome import Outcome
from ray_anyio._core._results import Batches, Results, running

pytestmark = pytest.mark.anyio


class Listed(Results[int]):
    """The outcomes given, all ready at once: the base's hooks and nothing more."""

    _verb = "listed"

    def __init__(self, outcomes: Sequence[Outcome], return_exceptions: bool) -> None:
        super().__init__(len(outcomes), return_exceptions)
        self._submitted = len(outcomes)
        self._outcomes = deque(outcomes)

    def add(self, item: object, value: int) -> int:
        index = self._add(item)
        self._outcomes.append(Outcome(value))
        return index

    async def _wait_ready(self, every: bool = False) -> None:
        if not self._outcomes:
            raise StopAsyncIteration

    def _peek(self) -> Outcome | None:
        return self._outcomes[0] if self._outcomes else None

    def _take(self) -> int:
        return self._hand_out(self._outcomes.popleft())  # type: ignore[no-any-return]


def _listed(*values: int | Exception, return_exceptions: bool = False) -> Listed:
    outcomes = [
        Outcome(error=v) if isinstance(v, Exception) else Outcome(v) for v in values
    ]
    return Listed(outcomes, return_exceptions)


async def test_a_batch_stops_before_an_error_the_next_step_raises() -> None:
    results = _listed(1, 2, ValueError("three"), 4)
    async with running(results):
        steps = Batches(results)
        assert await steps.__anext__() == [1, 2]
        with pytest.raises(ValueError, match="three"):
            await steps.__anext__()
        assert [batch async for batch in steps] == [[4]]
        assert (results.completed, results.failed, results.in_flight) == (3, 1, 0)


async def test_with_return_exceptions_an_error_stays_in_its_batch() -> None:
    error = ValueError("two")
    results = _listed(1, error, 3, return_exceptions=True)
    async with running(results):
        assert [batch async for batch in Batches(results)] == [[1, error, 3]]
        assert (results.completed, results.failed) == (2, 1)


async def test_single_and_batch_steps_share_the_results() -> None:
    results = _listed(1, 2, 3)
    async with running(results):
        assert await results.__anext__() == 1
        assert await Batches(results).__anext__() == [2, 3]
        assert [value async for value in results] == []


async def test_add_counts_an_item_until_the_iteration_has_ended() -> None:
    async def never() -> None:
        raise AssertionError("never started")

    results = _listed(1)
    async with running(results):
        assert results.add(object(), 2) == 1
        assert (results.total, results.submitted, results.in_flight) == (2, 2, 2)
        assert [batch async for batch in Batches(results)] == [[1, 2]]
        coro = never()
        with pytest.raises(RuntimeError, match="before the iteration has ended"):
            results.add(coro, 3)
        assert inspect.getcoroutinestate(coro) == inspect.CORO_CLOSED
        assert (results.total, results.submitted) == (2, 2)


async def test_every_step_and_add_only_inside_the_block() -> None:
    results = _listed(1)
    inside = r"inside `async with listed\(\.\.\.\) as results:`"
    with pytest.raises(RuntimeError, match=f"^use the iterator {inside}$"):
        await results.__anext__()
    async with running(results):
        pass
    with pytest.raises(RuntimeError, match=f"^use the iterator {inside}$"):
        await Batches(results).__anext__()
    with pytest.raises(RuntimeError, match=f"^add work {inside}, before the"):
        results.add(object(), 2)
