"""Ray on hosts made of network namespaces (:mod:`.network`), and the test run.

``python -m tests.multihost.hosts up`` builds the hosts and starts Ray on
each, ``down`` removes everything, ``pytest [ARGS]`` builds them, runs the
multi-host tests from the head's namespace and always removes them (the nox
session ``tests_multihost``). Root and ``ip`` (iproute2) are needed.

``ray start`` runs in each host's namespace with a temp dir of its own under
:data:`TMP`, ``--node-ip-address`` and a custom resource naming the host
(``{"host_a": 1}``); token authentication on, with a token file of the run's
own (Ray 2.60 turns it on for a head where ``~/.ray/auth_token`` exists, and
a worker then joins only with the same token); and short health checks and
gRPC keepalives (:data:`FAST_DETECTION`). ``up`` removes what a crashed run
left first. The tests find the head through :data:`ENV_VAR`, which only
:func:`run_pytest` sets.
"""

from __future__ import annotations

import json
import os
import secrets
import shutil
import signal
import subprocess
import sys
from collections.abc import Sequence
from pathlib import Path

from .network import (
    HEAD,
    HOSTS,
    Host,
    build,
    cut,
    heal,
    host,
    ip_command,
    kill_all,
    missing,
    remove,
)

__all__ = ["HEAD", "HOSTS", "Host", "cut", "host", "ip_command", "kill_all"]

#: Short: Ray's Unix socket paths under a temp dir must fit in 107 bytes.
TMP = Path("/tmp/rayanyio-mh")
ENV_VAR = "RAY_ANYIO_MULTIHOST"
GCS_PORT = 6379
CLIENT_PORT = 10001
ADDRESS = f"{HEAD.ip}:{GCS_PORT}"
ROOT = Path(__file__).resolve().parents[2]

#: A node silently cut off is declared dead after about three seconds of
#: failed health checks, and calls in flight to it fail once their gRPC
#: keepalive gives up. Ray's defaults are on ``docs/cluster.md``.
FAST_DETECTION = {
    "RAY_health_check_initial_delay_ms": "1000",
    "RAY_health_check_period_ms": "1000",
    "RAY_health_check_timeout_ms": "1000",
    "RAY_health_check_failure_threshold": "3",
    "RAY_grpc_client_keepalive_time_ms": "2000",
    "RAY_grpc_client_keepalive_timeout_ms": "2000",
}
#: The Ray settings a driver with Ray's default keepalive must not inherit.
KEEPALIVE = (
    "RAY_grpc_client_keepalive_time_ms",
    "RAY_grpc_client_keepalive_timeout_ms",
)


def ray_env() -> dict[str, str]:
    """The environment of every Ray process (nodes and drivers) of the hosts."""
    env = {k: v for k, v in os.environ.items() if k not in ("RAY_ADDRESS", ENV_VAR)}
    env |= FAST_DETECTION
    env |= {
        "RAY_AUTH_MODE": "token",
        "RAY_AUTH_TOKEN_PATH": str(TMP / "token"),
        "RAY_DEDUP_LOGS": "0",
        "RAY_raylet_start_wait_time_s": "120",
    }
    return env


def start_node(h: Host) -> None:
    """``ray start`` on host ``h`` (the head, or a worker joining it)."""
    tmp = TMP / h.name
    shutil.rmtree(tmp, ignore_errors=True)
    tmp.mkdir(parents=True)
    ray = str(Path(sys.executable).with_name("ray"))
    role = [
        "--head", f"--port={GCS_PORT}", f"--ray-client-server-port={CLIENT_PORT}",
        "--include-dashboard=false",
    ]  # fmt: skip
    if h != HEAD:
        role = [f"--address={ADDRESS}"]
    command = [
        ip_command(), "netns", "exec", h.netns, ray, "start", *role,
        f"--node-ip-address={h.ip}", f"--temp-dir={tmp}", "--num-cpus=2",
        f"--resources={json.dumps({h.resource: 1})}",
        "--object-store-memory=200000000", "--disable-usage-stats",
    ]  # fmt: skip
    with open(TMP / f"start-{h.name}.log", "ab") as log:
        subprocess.run(
            command,
            stdout=log,
            stderr=subprocess.STDOUT,
            stdin=subprocess.DEVNULL,
            env=ray_env(),
            check=True,
            timeout=300,
            # ray.cancel without force interrupts a task through SIGINT.
            preexec_fn=lambda: signal.signal(signal.SIGINT, signal.SIG_DFL),
        )


def client_server_logs(lines: int = 40) -> str:
    """The last lines of the head's Ray Client server logs, for a failure message.

    The proxy starts one server per client connection; when one dies at start,
    its reason is only in these files, on the head, gone once the hosts are down.
    """
    logs = sorted((TMP / HEAD.name).glob("session_2*/logs/ray_client_server*"))
    parts = []
    for log in logs:
        tail = log.read_text(errors="replace").splitlines()[-lines:]
        parts.append(f"--- {log.name} ---\n" + "\n".join(tail))
    return "\n".join(parts) or f"no Ray Client server logs under {TMP / HEAD.name}"


def down() -> None:
    """Kill every process of the hosts, remove the network and the temp dirs."""
    remove()
    shutil.rmtree(TMP, ignore_errors=True)


def up() -> None:
    """Build the hosts and start Ray on each; leftovers of a past run go first."""
    reason = missing()
    if reason:
        raise RuntimeError(reason)
    down()
    TMP.mkdir(parents=True)
    (TMP / "token").write_text(secrets.token_hex(32))
    build()
    for h in HOSTS:
        if h.ray:
            start_node(h)


def restart(name: str) -> None:
    """Heal host ``name`` and give it a fresh Ray node (the old one is dead)."""
    h = host(name)
    kill_all(h.netns)
    heal(name)
    start_node(h)


def run_pytest(args: Sequence[str]) -> int:
    """Build the hosts, run pytest in the head's namespace, tear everything down."""
    try:
        up()
        env = ray_env() | {
            ENV_VAR: ADDRESS,
            "RAY_ANYIO_ROOT_NETNS": f"/proc/{os.getpid()}/ns/net",
        }
        command = [
            ip_command(), "netns", "exec", HEAD.netns, sys.executable, "-m", "pytest",
            "--confcutdir=tests/multihost", "-p", "no:cacheprovider", *args,
        ]  # fmt: skip
        if not any(arg.startswith("tests/multihost") for arg in args):
            command.append("tests/multihost")
        return subprocess.run(command, env=env, cwd=ROOT, check=False).returncode
    finally:
        down()


def main(argv: Sequence[str]) -> int:
    usage = "usage: python -m tests.multihost.hosts up | down | pytest [ARGS]"
    if not argv or argv[0] not in ("up", "down", "pytest"):
        print(usage, file=sys.stderr)
        return 2
    reason = missing()
    if reason:
        print(f"multi-host tests skipped: {reason}", file=sys.stderr)
        return 0 if argv[0] == "pytest" else 1
    if argv[0] == "up":
        up()
        print(f"hosts up: head at {ADDRESS}; run drivers with ip netns exec")
    elif argv[0] == "down":
        down()
    else:
        return run_pytest(argv[1:])
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
