"""Real servers for the web examples: each a subprocess with its own local Ray.

A test class names its example (``script``); the class-scoped ``services``
fixture hands out three servers of it, each started while the tests use the
one before, since a Ray start is the slow part: one that the class's request
tests share, and one for each test that stops its server with a signal.
Each server runs in a session of its own, so that a test can signal its
whole process group as Ctrl+C does, and so that whatever a server leaves
behind can be found (and killed) afterwards.
"""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

ROOT = Path(__file__).resolve().parents[2]
EXAMPLES = ROOT / "examples"
SITE = Path(__file__).resolve().parent / "site"
#: Seconds a server may take to answer its first request: its Ray's start
#: included, three at once, on a machine that runs the rest of the suite.
START_TIMEOUT = 180.0
#: What ``ray.init`` raises when its raylet does not register in time.
RAY_START_TIMED_OUT = "The current node timed out during startup"
#: Seconds a signalled server may take to exit.
EXIT_TIMEOUT = 60.0
#: How many servers of each example a test class starts.
SERVERS_PER_CLASS = 3


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
        return port


def session_processes(sid: int) -> list[int]:
    """The live processes of session ``sid`` (Linux; elsewhere none are found)."""
    try:
        names = os.listdir("/proc")
    except OSError:
        return []
    found = []
    for name in names:
        if not name.isdigit():
            continue
        try:
            if os.getsid(int(name)) != sid:
                continue
            stat = Path("/proc", name, "stat").read_text()
        except OSError:
            continue
        if stat.rpartition(")")[2].split()[0] != "Z":  # a zombie is gone
            found.append(int(name))
    return found


class Service:
    """One server process of an example, on 127.0.0.1 at a free port."""

    def __init__(self, script: Path, logs: Path) -> None:
        self._script, self._logs = script, logs
        self._start()

    def _start(self) -> None:
        self.port = free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        self.stderr_path = self._logs / f"{self._script.stem}-{self.port}.stderr"
        # Twice the CPUs the largest check keeps busy: a check's tasks must
        # not wait for the CPUs of the previous check's cancelled tasks, whose
        # workers Ray may still be winding down (or killing, after a force).
        env = dict(os.environ, RAY_ADDRESS="local", SQUARES_NUM_CPUS="4")
        # site/sitecustomize.py: a crash's exception group prints in full.
        env["PYTHONPATH"] = os.pathsep.join(
            [str(SITE), *filter(None, [os.environ.get("PYTHONPATH")])]
        )
        with self.stderr_path.open("wb") as stderr:
            self.process = subprocess.Popen(
                [sys.executable, str(self._script), "--port", str(self.port)],
                cwd=ROOT,
                env=env,
                stdin=subprocess.DEVNULL,
                stdout=subprocess.DEVNULL,
                stderr=stderr,
                start_new_session=True,
            )

    @property
    def stderr(self) -> str:
        return self.stderr_path.read_text(errors="replace")

    def wait_until_serving(self) -> None:
        deadline = time.monotonic() + START_TIMEOUT
        restarts = 1
        while time.monotonic() < deadline:
            if self.process.poll() is not None:
                if restarts and RAY_START_TIMED_OUT in self.stderr:
                    # Ray's own start gave up on an overloaded machine (it
                    # waits 30 s for its raylet): not what these tests test.
                    restarts -= 1
                    self.kill_everything()
                    self._start()
                    continue
                pytest.fail(
                    f"the server exited with {self.process.returncode}:\n"
                    + self.stderr[-3000:]
                )
            try:
                httpx.get(f"{self.url}/tracker", timeout=5).raise_for_status()
            except httpx.HTTPError:
                time.sleep(0.2)  # polling a condition, with a deadline
            else:
                return
        pytest.fail(f"no answer in {START_TIMEOUT} s:\n" + self.stderr[-3000:])

    def stop(self, signum: signal.Signals, *, group: bool = False) -> int:
        """Send ``signum`` to the server (or its process group); its exit status."""
        if group:
            os.killpg(self.process.pid, signum)
        else:
            self.process.send_signal(signum)
        try:
            return self.process.wait(timeout=EXIT_TIMEOUT)
        except subprocess.TimeoutExpired:
            pytest.fail(f"still running {EXIT_TIMEOUT} s after {signum.name}")

    def wait_until_nothing_left(self, timeout: float = 120.0) -> list[int]:
        """Wait for the server's session (its Ray) to end; what is left then."""
        deadline = time.monotonic() + timeout
        while (left := session_processes(self.process.pid)) and (
            time.monotonic() < deadline
        ):
            time.sleep(0.2)
        return left

    def kill_everything(self) -> None:
        if self.process.poll() is None:
            self.process.send_signal(signal.SIGTERM)
            try:
                self.process.wait(timeout=EXIT_TIMEOUT)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait()
        for pid in session_processes(self.process.pid):
            try:
                os.kill(pid, signal.SIGKILL)
            except OSError:
                pass


class Services:
    """Servers of one example, handed out one by one.

    Each starts while the tests use the one before it, so that no two of
    their Rays start at once on a busy machine.
    """

    def __init__(self, script: Path, logs: Path) -> None:
        self._script, self._logs = script, logs
        self._left = SERVERS_PER_CLASS - 1
        self._next: Service | None = Service(script, logs)
        self._all = [self._next]

    def take(self) -> Service:
        """The next server, once it answers requests."""
        service = self._next
        assert service is not None, f"a class uses at most {SERVERS_PER_CLASS}"
        service.wait_until_serving()
        self._next = None
        if self._left:
            self._left -= 1
            self._next = Service(self._script, self._logs)
            self._all.append(self._next)
        return service

    def close(self) -> None:
        for service in self._all:
            service.kill_everything()


@pytest.fixture(scope="class")
def services(
    request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[Services]:
    script = EXAMPLES / request.cls.script
    pool = Services(script, tmp_path_factory.mktemp(script.stem))
    yield pool
    pool.close()


@pytest.fixture(scope="class")
def service(services: Services) -> Service:
    """The server that the request tests of a class share."""
    return services.take()
