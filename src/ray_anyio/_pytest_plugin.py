"""The pytest plugin ``ray_anyio``: a real local Ray for tests, and leftover checks.

It imports nothing heavy and starts nothing until a test uses ``ray_session``.

* fixture ``ray_session`` (session scope): a local Ray (``address="local"``, no
  dashboard), SIGINT restored first (a shell without job control starts pytest
  with it ignored, the workers inherit that, and ``ray.cancel`` does nothing);
  shut down at the end. A Ray already initialised is used and left alone.
* ini ``ray_anyio_num_cpus``: its ``num_cpus`` (default: the machine's CPUs).
* ini ``ray_anyio_check_leftovers`` (default false): every test that used
  Ray ends with :func:`ray_anyio.testing.assert_nothing_left`.
"""

from __future__ import annotations

import os
import signal
from collections.abc import Iterator
from typing import Any

import pytest


def pytest_addoption(parser: pytest.Parser) -> None:
    parser.addini(
        "ray_anyio_num_cpus",
        "num_cpus of the Ray that the ray_session fixture starts "
        "(default: the machine's CPUs)",
        default="",
    )
    parser.addini(
        "ray_anyio_check_leftovers",
        "end every test that used Ray with ray_anyio.testing.assert_nothing_left()",
        type="bool",
        default=False,
    )


@pytest.fixture(scope="session")
def ray_session(pytestconfig: pytest.Config) -> Iterator[Any]:
    """A local Ray for the whole test session; see the module docstring."""
    import ray

    if ray.is_initialized():
        yield ray.get_runtime_context()
        return
    if signal.getsignal(signal.SIGINT) is signal.SIG_IGN:
        signal.signal(signal.SIGINT, signal.default_int_handler)
    value = str(pytestconfig.getini("ray_anyio_num_cpus")).strip()
    try:
        num_cpus = int(value) if value else os.cpu_count() or 1
    except ValueError:
        raise pytest.UsageError(
            f"ray_anyio_num_cpus must be a whole number of CPUs, got {value!r}"
        ) from None
    ray.init(
        address="local", num_cpus=num_cpus, include_dashboard=False, log_to_driver=False
    )
    try:
        yield ray.get_runtime_context()
    finally:
        ray.shutdown()


@pytest.fixture(autouse=True)
def _ray_anyio_leftovers(request: pytest.FixtureRequest) -> Iterator[None]:
    yield
    if not request.config.getini("ray_anyio_check_leftovers"):
        return
    import sys

    ray = sys.modules.get("ray")  # a test that never imported Ray used none
    if ray is not None and ray.is_initialized():
        from ray_anyio.testing import assert_nothing_left

        assert_nothing_left()
