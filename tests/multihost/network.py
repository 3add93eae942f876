"""Hosts made of network namespaces on a private bridge, and their partition.

One namespace per host (``rayanyio-head``, ``rayanyio-a``, ``rayanyio-b``, and
``rayanyio-cli``, which runs no Ray: a Ray Client driver's machine), each with
a veth pair whose outer end is a port of the bridge ``rayanyio-br`` in the
root namespace, and an address in 10.231.0.0/24. The root namespace gets no
address: nothing but the hosts talks on the bridge.

A partition: ``blackhole`` detaches the host's port from the bridge (both
ends stay up, packets vanish), ``linkdown`` sets the outer end down.

Processes are found by namespace (``ip netns pids``), never by name: ``ray
stop`` would stop every Ray on the machine. Everything made here is named
with the prefix ``rayanyio-``, so that :func:`remove` finds what a crashed
run left. Only the standard library: ``noxfile.py`` loads this file by path.
"""

from __future__ import annotations

import os
import shutil
import signal
import subprocess
import sys
import time
from dataclasses import dataclass

PREFIX = "rayanyio-"
BRIDGE = PREFIX + "br"


@dataclass(frozen=True)
class Host:
    name: str
    ip: str
    ray: bool = True  # False: a machine with a driver only

    @property
    def netns(self) -> str:
        return PREFIX + self.name

    @property
    def port(self) -> str:
        """The veth end in the root namespace: the host's port on the bridge."""
        return PREFIX + self.name

    @property
    def resource(self) -> str:
        """The custom resource that names the host, ``host_a``."""
        return "host_" + self.name


HOSTS = (
    Host("head", "10.231.0.10"),
    Host("a", "10.231.0.11"),
    Host("b", "10.231.0.12"),
    Host("cli", "10.231.0.20", ray=False),
)
HEAD = HOSTS[0]


def host(name: str) -> Host:
    return next(h for h in HOSTS if h.name == name)


def ip_command() -> str:
    found = shutil.which("ip") or shutil.which("ip", path="/usr/sbin:/sbin")
    if found is None:
        raise RuntimeError("iproute2's ip is not installed")
    return found


def missing() -> str | None:
    """Why hosts cannot be built here, or None when they can."""
    if sys.platform != "linux":
        return "network namespaces need Linux"
    if os.geteuid() != 0:
        return "network namespaces need root (run as root, as CI does)"
    try:
        ip_command()
    except RuntimeError as exc:
        return str(exc)
    if shutil.which("nsenter") is None:
        return "nsenter (util-linux) is not installed"
    return None


def _sh(*args: str, check: bool = True) -> str:
    done = subprocess.run(args, capture_output=True, text=True, check=False)
    if check and done.returncode != 0:
        raise RuntimeError(f"{' '.join(args)}: {done.stderr.strip()}")
    return done.stdout


def _root(*args: str) -> None:
    """Run ``ip ARGS`` in the root namespace, from whichever namespace we are in.

    ``RAY_ANYIO_ROOT_NETNS`` names it for the tests, which run in the head's.
    """
    root_ns = os.environ.get("RAY_ANYIO_ROOT_NETNS", "/proc/self/ns/net")
    _sh("nsenter", f"--net={root_ns}", ip_command(), *args)


def pids(netns: str) -> set[int]:
    out = _sh(ip_command(), "netns", "pids", netns, check=False).split()
    return {int(p) for p in out} - {os.getpid()}


def kill_all(netns: str, timeout: float = 20) -> None:
    """SIGKILL every process in ``netns`` until none is left."""
    deadline = time.monotonic() + timeout
    while found := pids(netns):
        for pid in found:
            try:
                os.kill(pid, signal.SIGKILL)
            except ProcessLookupError:
                pass
        if time.monotonic() > deadline:
            raise RuntimeError(f"processes left in {netns}: {sorted(found)}")
        time.sleep(0.1)


def remove() -> None:
    """Kill every process of the hosts; remove namespaces, links and bridge."""
    ip = ip_command()
    for line in _sh(ip, "netns", "list").splitlines():
        if line.startswith(PREFIX):
            kill_all(line.split()[0])
            _sh(ip, "netns", "delete", line.split()[0], check=False)
    for line in _sh(ip, "-o", "link", "show").splitlines():
        name = line.split(":")[1].strip().split("@")[0]
        if name.startswith(PREFIX):
            _sh(ip, "link", "delete", name, check=False)


def build() -> None:
    """The bridge, and each host's namespace, link and address."""
    ip = ip_command()
    _sh(ip, "link", "add", BRIDGE, "type", "bridge")
    _sh(ip, "link", "set", BRIDGE, "up")
    for h in HOSTS:
        _sh(ip, "netns", "add", h.netns)
        _sh(ip, "-n", h.netns, "link", "set", "lo", "up")
        _sh(ip, "link", "add", h.port, "type", "veth", "peer", "eth0", "netns", h.netns)
        _sh(ip, "link", "set", h.port, "master", BRIDGE)
        _sh(ip, "link", "set", h.port, "up")
        _sh(ip, "-n", h.netns, "addr", "add", f"{h.ip}/24", "dev", "eth0")
        _sh(ip, "-n", h.netns, "link", "set", "eth0", "up")


def cut(name: str, how: str) -> None:
    """Partition host ``name``: ``blackhole`` or ``linkdown``."""
    port = host(name).port
    if how == "blackhole":
        _root("link", "set", port, "nomaster")
    elif how == "linkdown":
        _root("link", "set", port, "down")
    else:
        raise ValueError(f"unknown partition {how!r}")


def heal(name: str) -> None:
    """Undo :func:`cut`: the port is back on the bridge, and up."""
    port = host(name).port
    _root("link", "set", port, "master", BRIDGE)
    _root("link", "set", port, "up")
