"""A seeded cancellation fuzz: calls cancelled at random points leave nothing.

Each example runs one call (``get``, ``wait``, ``as_completed`` or ``map``,
over few or many refs, finished or pending) and cancels it after a random
number of schedule points, or lets it finish. Afterwards: no hang, the right
result when it finished, and nothing registered with Ray.
"""

from __future__ import annotations

import importlib.util
import itertools
from typing import Any

import anyio
import pytest
import ray
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

import ray_anyio
from ray_anyio.testing import assert_nothing_left

from .conftest import Gate
from .helpers import square

_names = itertools.count()

#: Examples per backend: enough to cross every branch, bounded for CI's time.
EXAMPLES = 40

calls = st.sampled_from(["get", "wait", "as_completed", "map"])
sizes = st.sampled_from([1, 5, 300])  # 300: a large get, watched in groups
pending = st.booleans()
cancel_after = st.one_of(st.none(), st.integers(0, 30))


async def _call(call: str, refs: list[Any]) -> Any:
    if call == "get":
        return await ray_anyio.get(refs)
    if call == "wait":
        ready, _ = await ray_anyio.wait(refs, num_returns=len(refs))
        return ray.get(ready)
    if call == "as_completed":
        async with ray_anyio.as_completed(refs) as results:
            return sorted([value async for _, value in results])
    async with ray_anyio.map(lambda ref: ref, refs) as values:
        return [value async for value in values]


async def _run(
    call: str,
    refs: list[Any],
    expected: list[int],
    gate: Gate | None,
    after: int | None,
) -> None:
    outcome: list[Any] = []
    with anyio.fail_after(60):
        async with anyio.create_task_group() as tg:

            async def target() -> None:
                outcome.append(await _call(call, refs))

            tg.start_soon(target)
            if gate is not None:
                await anyio.to_thread.run_sync(gate.open)
            if after is not None:
                for _ in range(after):
                    await anyio.sleep(0)
                tg.cancel_scope.cancel()
    if outcome:
        assert sorted(outcome[0]) == expected


#: uvloop joins when it is installed (nox -s tests_uvloop).
BACKENDS: list[Any] = ["asyncio", "trio"]
if importlib.util.find_spec("uvloop") is not None:
    BACKENDS.append(pytest.param(("asyncio", {"use_uvloop": True}), id="uvloop"))


@pytest.mark.timeout(600)
@pytest.mark.parametrize("backend", BACKENDS)
@settings(
    max_examples=EXAMPLES,
    deadline=None,
    derandomize=True,  # seeded: the same examples every run
    suppress_health_check=[HealthCheck.function_scoped_fixture],
)
@given(call=calls, size=sizes, is_pending=pending, after=cancel_after)
def test_cancel_anywhere_leaves_nothing(
    backend: Any,
    gates_actor: Any,
    call: str,
    size: int,
    is_pending: bool,
    after: int | None,
) -> None:
    gate = None
    if is_pending:
        gate = Gate(gates_actor, f"fuzz-{next(_names)}")
        refs = [gate.value_after(i) for i in range(size)]
        expected = list(range(size))
    else:
        refs = [square.remote(i) for i in range(size)]
        ray.wait(refs, num_returns=size, fetch_local=True)
        expected = [i * i for i in range(size)]
    try:
        name, options = backend if isinstance(backend, tuple) else (backend, None)
        anyio.run(
            _run,
            call,
            refs,
            expected,
            gate,
            after,
            backend=name,
            backend_options=options,
        )
    finally:
        if gate is not None:
            gate.open()
    assert_nothing_left(timeout=10)
