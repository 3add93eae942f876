"""A private Ray head with a Ray Client server on loopback, and its stop.

Every port Ray would take from a fixed default is given a free one, so the
head coexists with other Rays on the machine. The head runs in a session of
its own (one process group) with SIGINT at its default, so that a polite
``ray.cancel`` works; stopping it kills that group and any process whose
command line names its temp dir, never anything else (``ray stop`` would
kill every Ray of the user).
"""

from __future__ import annotations

import os
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path

#: A client only sends a token when its own environment asks for one: the
#: head runs without token authentication (Ray 2.60 turns it on by itself
#: when ~/.ray/auth_token exists).
CLIENT_ENV = {"RAY_AUTH_MODE": "disabled"}


def _free_ports(n: int) -> list[int]:
    sockets = [socket.socket() for _ in range(n)]
    try:
        for s in sockets:
            s.bind(("127.0.0.1", 0))
        return [s.getsockname()[1] for s in sockets]
    finally:
        for s in sockets:
            s.close()


def _processes_of(pgid: int, marker: str) -> set[int]:
    found = set()
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit() or int(entry.name) == os.getpid():
            continue
        try:
            command = (entry / "cmdline").read_bytes().replace(b"\0", b" ").decode()
            if os.getpgid(int(entry.name)) == pgid or marker in command:
                found.add(int(entry.name))
        except (OSError, ProcessLookupError):
            continue
    return found


def start_client_server(
    num_cpus: int = 2, timeout: float = 180
) -> tuple[str, Callable[[], None]]:
    """Start the head; return ``("ray://127.0.0.1:<port>", stop)``."""
    # Short: Ray's socket paths under the temp dir must fit in 107 bytes.
    tmp = tempfile.mkdtemp(prefix="rayc", dir="/tmp")
    gcs, client, nm, om, agent, agent_grpc, metrics, runtime_env = _free_ports(8)
    ray = str(Path(sys.executable).with_name("ray"))
    command = [
        ray, "start", "--head", "--block", "--node-ip-address=127.0.0.1",
        f"--port={gcs}", f"--ray-client-server-port={client}",
        f"--node-manager-port={nm}", f"--object-manager-port={om}",
        f"--dashboard-agent-listen-port={agent}",
        f"--dashboard-agent-grpc-port={agent_grpc}",
        f"--metrics-export-port={metrics}", f"--runtime-env-agent-port={runtime_env}",
        f"--num-cpus={num_cpus}", "--include-dashboard=false",
        f"--temp-dir={tmp}", "--disable-usage-stats",
    ]  # fmt: skip
    env = {k: v for k, v in os.environ.items() if k != "RAY_ADDRESS"} | CLIENT_ENV
    # A loaded machine can take longer than Ray's default to start a raylet.
    env.setdefault("RAY_raylet_start_wait_time_s", "120")
    log = open(os.path.join(tmp, "ray_start.log"), "wb")
    head = subprocess.Popen(
        command,
        stdout=log,
        stderr=subprocess.STDOUT,
        stdin=subprocess.DEVNULL,
        start_new_session=True,
        preexec_fn=lambda: signal.signal(signal.SIGINT, signal.SIG_DFL),
        env=env,
    )

    def stop() -> None:
        # A test's head keeps nothing worth a graceful stop.
        for sig, grace in ((signal.SIGKILL, 10.0),):
            deadline = time.monotonic() + grace
            while pids := _processes_of(head.pid, f"--temp-dir={tmp}") | _processes_of(
                head.pid, os.path.join(tmp, "session_")
            ):
                for pid in pids:
                    try:
                        os.kill(pid, sig)
                    except ProcessLookupError:
                        pass
                if time.monotonic() > deadline:
                    break
                time.sleep(0.2)
        head.wait(10)
        log.close()
        shutil.rmtree(tmp, ignore_errors=True)

    address = f"ray://127.0.0.1:{client}"
    probe = "import ray, sys; ray.init(sys.argv[1]); assert ray.get(ray.put(1)) == 1"
    deadline = time.monotonic() + timeout
    try:
        while True:
            if head.poll() is not None:
                raise RuntimeError(f"ray start exited: {Path(log.name).read_text()}")
            left = deadline - time.monotonic()
            if left <= 0:
                raise TimeoutError("the Ray Client server did not accept a client")
            connected = subprocess.run(
                [sys.executable, "-c", probe, address],
                capture_output=True,
                timeout=left,
                env=env,
            )
            if connected.returncode == 0:
                return address, stop
            time.sleep(0.5)
    except BaseException:
        stop()
        raise
