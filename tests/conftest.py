"""One real Ray for the whole session: a two-node ``Cluster`` on this machine.

The driver is attached to the head node; a second node carries the custom
resource ``"remote"`` so that tests can place objects away from the driver.
Every async test runs on asyncio and on trio.
"""

from __future__ import annotations

import os
import signal
from collections.abc import Iterator
from typing import Any

import pytest
import ray
from ray.cluster_utils import Cluster

from ray_anyio._core import _readiness

from .helpers import Gates, Track, square, start, tracker_actor

pytest_plugins = ["pytester"]
collect_ignore = ["multihost"]  # hosts made of namespaces: nox -s tests_multihost

os.environ.setdefault("RAY_DEDUP_LOGS", "0")

# A shell without job control (CI, a background job) starts commands with SIGINT
# ignored, and Ray's processes inherit that from this one. ray.cancel() without
# force interrupts a running task through SIGINT, so it would do nothing and the
# cancellation tests would wait in vain: restore the default before Ray starts.
if signal.getsignal(signal.SIGINT) is signal.SIG_IGN:
    signal.signal(signal.SIGINT, signal.default_int_handler)


#: ``RAY_ANYIO_TEST_UVLOOP=1`` (``nox -s tests_uvloop``) runs the asyncio half
#: of the suite on uvloop.
_ASYNCIO: Any = (
    pytest.param(("asyncio", {"use_uvloop": True}), id="uvloop")
    if os.environ.get("RAY_ANYIO_TEST_UVLOOP") == "1"
    else "asyncio"
)


@pytest.fixture(params=[_ASYNCIO, "trio"])
def anyio_backend(request: pytest.FixtureRequest) -> Any:
    return request.param


@pytest.fixture(scope="session", autouse=True)
def ray_cluster() -> Iterator[Cluster]:
    cluster = Cluster(
        initialize_head=True,
        head_node_args={"num_cpus": 2, "include_dashboard": False},
    )
    # The driver joins before the second node exists: both nodes have this
    # machine's address, and Ray 2.48 may attach a driver to either of them.
    ray.init(address=cluster.address, log_to_driver=False)
    cluster.add_node(num_cpus=1, resources={"remote": 1})
    cluster.wait_for_nodes()
    head = cluster.head_node
    assert head is not None
    assert ray.get_runtime_context().get_node_id() == head.node_id, (
        "the driver must be on the head node: tests place objects away from it"
    )
    # Start the workers the suite needs once, so no test pays for a spawn.
    ray.get([square.remote(i) for i in range(4)])
    ray.get(square.options(resources={"remote": 1}).remote(0))
    yield cluster
    ray.shutdown()
    cluster.shutdown()


@pytest.fixture(scope="session", autouse=True)
def ray_in_every_test(ray_cluster: Cluster, ray_session: Any) -> Any:
    """The plugin's ``ray_session``, which takes the cluster's Ray as it is."""
    return ray_session


@pytest.fixture(params=["hook", "poller"])
def engine_path(request: pytest.FixtureRequest, monkeypatch: pytest.MonkeyPatch) -> str:
    """Run a test through both readiness paths: Ray's hook and the poller.

    On a Ray without the hook both runs take the poller.
    """
    if request.param == "poller":
        monkeypatch.setattr(_readiness, "PREFER_HOOK", False)
    return str(request.param)


@pytest.fixture
def track(request: pytest.FixtureRequest) -> Iterator[Track]:
    """One key of the session's ``Tracker`` actor, opened when the test ends."""
    t = Track(tracker_actor(), request.node.nodeid)
    yield t
    t.open()


@pytest.fixture(scope="session")
def gates_actor(ray_cluster: Cluster) -> ray.actor.ActorHandle[Any]:
    actor: ray.actor.ActorHandle[Any] = start(Gates)
    ray.get(actor.ping.remote())
    return actor


@pytest.fixture
def gate(
    gates_actor: ray.actor.ActorHandle[Any], request: pytest.FixtureRequest
) -> Iterator[Gate]:
    """A named event in the shared ``Gates`` actor, opened when the test ends."""
    g = Gate(gates_actor, request.node.nodeid)
    yield g
    g.open()


@pytest.fixture
def other_gate(
    gates_actor: ray.actor.ActorHandle[Any], request: pytest.FixtureRequest
) -> Iterator[Gate]:
    """A second gate, for tests that open two groups of calls at different times."""
    g = Gate(gates_actor, request.node.nodeid + "/other")
    yield g
    g.open()


class Gate:
    def __init__(self, actor: ray.actor.ActorHandle[Any], name: str) -> None:
        self.actor = actor
        self.name = name

    def value_after(self, value: object) -> ray.ObjectRef[Any]:
        """A ref that becomes ``value`` once the gate is opened."""
        ref: ray.ObjectRef[Any] = self.actor.value_after.remote(self.name, value)
        return ref

    def fail_after(self, message: str) -> ray.ObjectRef[Any]:
        """A ref whose task raises ``ValueError(message)`` once the gate opens."""
        ref: ray.ObjectRef[Any] = self.actor.fail_after.remote(self.name, message)
        return ref

    def open(self) -> None:
        ray.get(self.actor.open.remote(self.name))

    def waiting(self) -> int:
        return int(ray.get(self.actor.waiting.remote(self.name)))
