"""Benchmarks of ray-anyio against ray.get, Ray's native asyncio and the like.

B1-B8 (and B4D): get, wait, cancellation and fan-in; B9: the loop while
large values are fetched and put; P1-P2: the actor pool;
R1: map's rate limit; C1-C3: long fan-outs (chunks, retries,
checkpoints); S1: Serve requests; Q1-Q2: channels (open_channel) against
ray.util.queue. The ids are in benchmarks/scenarios.py.

    python benchmarks/run.py                     # every scenario, full sizes
    python benchmarks/run.py --quick             # small sizes, what nox -s bench runs
    python benchmarks/run.py --only B1,B3 --json results.json --plot bench.png

Run from a checkout with ``pip install -e .[trio,plot]`` (and ``trio-asyncio``
for its baselines, left out without it). Every scenario runs
ray-anyio on each installed backend and its baselines in one process, the
contenders taking turns run by run; every figure is a median.
"""

from __future__ import annotations

import argparse
import importlib.util
import sys
import time
from pathlib import Path

import ray

# Run as a script, Python puts this folder on sys.path; the checkout's root
# is put there instead so that this folder imports as the package
# ``benchmarks`` (whose modules import each other relatively).
sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from benchmarks.plot import write_plot
from benchmarks.report import format_table, machine, trio_vs_asyncio, write_json
from benchmarks.scenarios import SCENARIOS
from benchmarks.timing import Context, Row


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(
        prog="python benchmarks/run.py", description=__doc__.splitlines()[0]
    )
    parser.add_argument("--quick", action="store_true", help="small sizes, few repeats")
    parser.add_argument("--only", default="", help="comma-separated ids, e.g. B1,B3")
    parser.add_argument("--json", type=Path, help="write the rows as JSON to this file")
    parser.add_argument("--plot", type=Path, help="draw the results into this PNG")
    return parser.parse_args(argv)


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    wanted = [s.strip().upper() for s in args.only.split(",") if s.strip()] or list(
        SCENARIOS
    )
    unknown = [s for s in wanted if s not in SCENARIOS]
    if unknown:
        print(f"--only: unknown scenario(s) {unknown}; choose from {list(SCENARIOS)}")
        return 2
    backends = ["asyncio"]
    if importlib.util.find_spec("trio") is not None:
        backends.append("trio")
    ctx = Context(quick=args.quick, backends=backends)
    ray.init(address="local", num_cpus=2, include_dashboard=False, log_to_driver=False)
    rows: list[Row] = []
    # Taken before the runs: the code measured is the code imported now.
    info = machine()
    try:
        print(f"machine: {info}", flush=True)
        for scenario in wanted:
            start = time.perf_counter()
            new = SCENARIOS[scenario](ctx)
            rows.extend(new)
            print(
                f"{scenario} done in {time.perf_counter() - start:.1f} s",
                file=sys.stderr,
            )
    finally:
        ray.shutdown()
    rows.extend(trio_vs_asyncio(rows))
    print(format_table(rows))
    missed = [r for r in rows if r.ok is False]
    print(f"{len(rows)} rows, {len(missed)} missed target(s)")
    if args.json:
        write_json(rows, args.json, info)
    if args.plot:
        write_plot(rows, args.plot)
    return 0


if __name__ == "__main__":
    sys.exit(main())
