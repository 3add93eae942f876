"""The pytest plugin, as a user meets it: a test file with only ``ray_session``."""

from __future__ import annotations

import pytest

pytestmark = pytest.mark.timeout(300)

_USER_TESTS = """
import pytest
import ray
import ray_anyio

pytestmark = pytest.mark.anyio

LEAKED = []


@pytest.fixture(params=["asyncio", "trio"])
def anyio_backend(request):
    return request.param


@ray.remote
def square(x):
    return x * x


async def test_get(ray_session):
    assert await ray_anyio.get([square.remote(i) for i in range(3)]) == [0, 1, 4]
    assert ray.available_resources().get("CPU", 0) <= 1  # ray_anyio_num_cpus


async def test_leaks_a_registration(ray_session):
    @ray.remote
    def never():
        import time
        time.sleep(600)

    ref = never.remote()
    _, remaining = await ray_anyio.wait([ref], timeout=0)
    LEAKED.append(remaining)  # its registration stays while the list lives
"""


def test_a_user_suite_runs_on_both_backends(pytester: pytest.Pytester) -> None:
    pytester.makepyfile(test_user=_USER_TESTS)
    pytester.makeini(
        "[pytest]\nray_anyio_num_cpus = 1\nray_anyio_check_leftovers = true\n"
    )
    result = pytester.runpytest_subprocess("-p", "anyio", "-q")
    result.assert_outcomes(passed=4, errors=2)
    result.stdout.fnmatch_lines(["*still holds 1 registration*"])
