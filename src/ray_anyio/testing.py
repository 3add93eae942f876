"""Checks for tests of code that uses ray-anyio: nothing may be left behind.

Example (in a test, after the code under test has finished)::

    from ray_anyio.testing import assert_nothing_left

    assert_nothing_left()
"""

from __future__ import annotations

import gc
import time

from ._core._poller import POLLER
from ._core._watcher import registered
from ._core._withdraw import wait_withdrawn, withdrawals_pending

__all__ = ["assert_nothing_left", "live_registrations"]


def live_registrations() -> int:
    """How many registrations with Ray this process still holds.

    Counts the refs of calls in progress (or of live ``remaining`` lists of
    :func:`ray_anyio.wait`) and those queued for withdrawal.
    """
    held = registered()
    # The poller's entries belong to open watchers and are counted with them;
    # once no watcher is open it must hold nothing either.
    leftover = POLLER.pending() if held == 0 else 0
    return held + leftover + withdrawals_pending()


def assert_nothing_left(timeout: float = 10.0) -> None:
    """Assert that ray-anyio holds no registration with Ray.

    Collects garbage first (for ``remaining`` lists in reference cycles), then
    waits at most ``timeout`` seconds for queued withdrawals to finish.

    Raises:
        AssertionError: something is still registered; the message says what.
        ValueError: ``timeout`` is negative.
    """
    if timeout < 0:
        raise ValueError(f"timeout must be non-negative, got {timeout!r}")
    deadline = time.monotonic() + timeout
    gc.collect()
    while True:
        wait_withdrawn(max(0.0, deadline - time.monotonic()))
        held = live_registrations()
        if held == 0:
            return
        if time.monotonic() >= deadline:
            queued = withdrawals_pending()
            raise AssertionError(
                f"ray_anyio still holds {held} registration(s) with Ray: "
                f"{held - queued} by calls in progress or live `remaining` lists "
                f"of wait(), {queued} withdrawal job(s) queued"
            )
        time.sleep(0.01)
        gc.collect()
