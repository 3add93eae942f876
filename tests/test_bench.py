"""Smoke test of ``python benchmarks/run.py --quick``: it runs and prints its table."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent


def test_bench_quick_prints_table(tmp_path: Path) -> None:
    out = tmp_path / "bench.json"
    env = {k: v for k, v in os.environ.items() if k != "RAY_ADDRESS"}
    proc = subprocess.run(
        [
            sys.executable,
            "benchmarks/run.py",
            "--quick",
            "--only",
            "B1,B3",
            "--json",
            str(out),
        ],
        capture_output=True,
        text=True,
        timeout=240,
        cwd=ROOT,
        env=env,
    )
    assert proc.returncode == 0, proc.stderr[-3000:]
    assert "id   case" in proc.stdout
    rows = json.loads(out.read_text())["rows"]
    scenarios = {row["scenario"] for row in rows}
    assert scenarios == {"B1", "B3"}
    backends = {row["backend"] for row in rows}
    assert {"asyncio", "trio", "trio/asyncio"} <= backends
    assert all(row["value"] > 0 for row in rows)
