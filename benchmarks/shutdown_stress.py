"""Shut Ray down with the package's background work in flight; count crashes.

    python benchmarks/shutdown_stress.py            # 50 runs of each
    python benchmarks/shutdown_stress.py --runs 10

Two programs, each run ``--runs`` times in a fresh process:

* ``demo``: ``python -m ray_anyio demo``, which ends with ``ray.shutdown()``;
* ``stress``: a fetch of more than a lane chunk of finished refs, cancelled
  ``wait``/``get`` calls over pending refs (withdrawals on the background
  lane) and a ``put`` of a value of unknown size (the fetch lane), then
  ``ray.shutdown()`` at once, on asyncio and trio.

A run fails when the process exits with a non-zero status (a thread calling
into Ray while its core worker is torn down ends the process with status 1).
"""

from __future__ import annotations

import argparse
import os
import subprocess
import sys
import time

_STRESS = """
import sys, time
import anyio, ray
import ray_anyio

@ray.remote
def many(n):
    return tuple(range(n))

@ray.remote
def slow(n, s):
    time.sleep(s)
    return tuple(range(n))

async def wait_all(refs):
    await ray_anyio.wait(refs, num_returns=len(refs))

async def scenario():
    finished = list(many.options(num_returns=5000).remote(5000))
    ray.wait(finished, num_returns=len(finished), fetch_local=True)
    pending = list(slow.options(num_returns=2000).remote(2000, 3))
    async with anyio.create_task_group() as tg:
        tg.start_soon(wait_all, pending)
        tg.start_soon(ray_anyio.get, pending)
        await anyio.sleep(0.05)
        tg.start_soon(ray_anyio.put, {"blob": b"x" * (4 << 20)})
        await anyio.sleep(0)
        tg.cancel_scope.cancel()
    del pending
    refs, finished = finished, None
    assert await ray_anyio.get(refs) == list(range(5000))
    del refs

ray.init(address="local", num_cpus=1, include_dashboard=False, log_to_driver=False)
try:
    for backend in ("asyncio", "trio"):
        anyio.run(scenario, backend=backend)
finally:
    ray.shutdown()
"""

PROGRAMS = {
    "demo": [sys.executable, "-m", "ray_anyio", "demo"],
    "stress": [sys.executable, "-c", _STRESS],
}


def main() -> int:
    parser = argparse.ArgumentParser(prog="python benchmarks/shutdown_stress.py")
    parser.add_argument("--runs", type=int, default=50)
    parser.add_argument("--only", choices=sorted(PROGRAMS), default=None)
    args = parser.parse_args()
    env = {k: v for k, v in os.environ.items() if k != "RAY_ADDRESS"}
    failed = 0
    for name, command in PROGRAMS.items():
        if args.only not in (None, name):
            continue
        failures: list[int] = []
        start = time.perf_counter()
        for run in range(args.runs):
            proc = subprocess.run(command, capture_output=True, text=True, env=env)
            if proc.returncode != 0:
                failures.append(proc.returncode)
                print(
                    f"{name} run {run}: exit {proc.returncode}\n{proc.stderr[-2000:]}"
                )
        elapsed = time.perf_counter() - start
        print(
            f"{name}: {len(failures)} failed of {args.runs} runs "
            f"(exit codes {sorted(set(failures))}), {elapsed:.0f} s",
            flush=True,
        )
        failed += len(failures)
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
