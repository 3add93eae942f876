"""Readiness: the hook or the poller, and one-off checks of what is ready or local."""

from __future__ import annotations

from typing import Any

import pytest
import ray

from ray_anyio._core import _ray, _readiness

from ..helpers import fail, square

#: Both ways of telling whether a reported object is on this node.
by_locality_check = pytest.mark.parametrize(
    "object_exists", [True, False], ids=["object_exists", "ray_wait"]
)


@ray.remote(resources={"remote": 1})
def _far() -> list[Any]:
    # The object stays in the other node's store: the driver gets only its
    # ref, inside a list, and Ray pulls it here only when asked to.
    return [ray.put(b"x" * 20_000_000)]


@by_locality_check
def test_split_local_keeps_out_what_is_on_another_node_only(
    object_exists: bool, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(_ray, "HAS_OBJECT_EXISTS", object_exists)
    put_here = ray.put(b"x" * 200_000)  # in this node's object store
    returned = square.remote(3)  # a small value, inline in this process
    failed = fail.remote("no")  # an error is a value too
    # Not a return value of the task: on Ray 2.48 the test raced a pull of the
    # task's large return to this node; a ref inside a value stays where it is
    # until someone asks for it here.
    (far,) = ray.get(_far.remote())
    ray.wait([returned, failed], num_returns=2)
    refs: list[Any] = [put_here, returned, failed, far]
    assert _readiness.split_local(refs) == ([put_here, returned, failed], [far])
    ray.wait([far], fetch_local=True)
    assert _readiness.split_local([far]) == ([far], [])
