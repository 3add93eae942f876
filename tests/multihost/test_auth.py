"""Token authentication between hosts: a worker without the cluster's token
cannot join.

The hosts run with ``RAY_AUTH_MODE=token`` and a token file of the run's own
(``hosts.ray_env``), as Ray 2.60 does by itself for a head started where
``~/.ray/auth_token`` exists. A newcomer's worker host that has no token, or
another one, is refused by the GCS with ``AuthenticationError``.
"""

from __future__ import annotations

import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest

from . import hosts

pytestmark = pytest.mark.timeout(180)


@pytest.fixture
def newcomer(tmp_path: Path) -> Iterator[hosts.Host]:
    """The driver-only host, on which a test may try ``ray start``."""
    h = hosts.host("cli")
    yield h
    hosts.kill_all(h.netns)


@pytest.mark.parametrize("token", ["none", "another"])
def test_a_worker_without_the_token_cannot_join(
    token: str, newcomer: hosts.Host, tmp_path: Path
) -> None:
    env = hosts.ray_env()
    # A home of its own: no ~/.ray/auth_token of this machine's to find.
    env["HOME"] = str(tmp_path)
    if token == "none":
        del env["RAY_AUTH_MODE"], env["RAY_AUTH_TOKEN_PATH"]
    else:
        (tmp_path / "token").write_text("0" * 64)
        env["RAY_AUTH_TOKEN_PATH"] = str(tmp_path / "token")
    ray = str(Path(sys.executable).with_name("ray"))
    command = [
        hosts.ip_command(), "netns", "exec", newcomer.netns, ray, "start",
        f"--address={hosts.ADDRESS}", f"--node-ip-address={newcomer.ip}",
        f"--temp-dir={hosts.TMP / 'newcomer'}", "--num-cpus=1", "--disable-usage-stats",
    ]  # fmt: skip
    done = subprocess.run(command, capture_output=True, text=True, env=env, timeout=150)
    assert done.returncode != 0, done.stdout
    assert "AuthenticationError" in done.stdout + done.stderr, done.stderr[-2000:]
