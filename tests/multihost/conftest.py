"""Multi-host tests: a driver on the head of three hosts made of namespaces.

``nox -s tests_multihost`` (through ``python -m tests.multihost.hosts
pytest``) builds the hosts, starts Ray on each and runs this folder from the
head's namespace with ``--confcutdir=tests/multihost``, so that the main
suite's ``tests/conftest.py`` and its local cluster are never loaded. Run
any other way, every test here is skipped with a message saying so.
"""

from __future__ import annotations

import os
import signal
import time
from collections.abc import Iterator
from typing import Any

import pytest

from . import hosts

ADDRESS = os.environ.get(hosts.ENV_VAR)
SKIP_REASON = (
    "multi-host tests need hosts made of network namespaces: run them with "
    "`nox -s tests_multihost` or `python -m tests.multihost.hosts pytest` (root)"
)

if signal.getsignal(signal.SIGINT) is signal.SIG_IGN:
    signal.signal(signal.SIGINT, signal.default_int_handler)


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    if ADDRESS is None:
        for item in items:
            item.add_marker(pytest.mark.skip(reason=SKIP_REASON))


@pytest.fixture(params=["asyncio", "trio"])
def anyio_backend(request: pytest.FixtureRequest) -> Any:
    return request.param


def alive_nodes() -> dict[str, str]:
    """``{host name: node id}`` of the nodes the GCS has alive."""
    import ray

    found = {}
    for node in ray.nodes():
        for h in hosts.HOSTS:
            if node["Alive"] and h.resource in node["Resources"]:
                found[h.name] = node["NodeID"]
    return found


def wait_for_nodes(names: list[str], timeout: float = 120) -> dict[str, str]:
    """Poll the GCS until every host of ``names`` has a live node."""
    deadline = time.monotonic() + timeout
    while not set(names) <= set(nodes := alive_nodes()):
        if time.monotonic() > deadline:
            raise TimeoutError(f"nodes alive: {sorted(nodes)}, wanted {names}")
        time.sleep(0.2)
    return nodes


RAY_HOSTS = [h.name for h in hosts.HOSTS if h.ray]


@pytest.fixture(scope="session", autouse=True)
def ray_on_the_head() -> Iterator[None]:
    """This process is a driver on the head: ``ray.init`` with its address."""
    if ADDRESS is None:
        yield
        return
    import ray

    ray.init(address=ADDRESS, _node_ip_address=hosts.HEAD.ip, log_to_driver=False)
    wait_for_nodes(RAY_HOSTS)
    yield
    ray.shutdown()


@pytest.fixture
def nodes() -> dict[str, str]:
    """``{host name: node id}``, every host's node alive (a dead one restarted)."""
    missing = set(RAY_HOSTS) - set(alive_nodes())
    for name in sorted(missing):
        hosts.restart(name)
    return wait_for_nodes(RAY_HOSTS)


@pytest.fixture
def cut_b(nodes: dict[str, str]) -> Iterator[Any]:
    """``cut_b(how)`` partitions host b; it is healed with a new node after."""
    done: list[str] = []

    def cut(how: str) -> None:
        hosts.cut("b", how)
        done.append(how)

    yield cut
    if done:
        hosts.restart("b")
        wait_for_nodes(RAY_HOSTS)
