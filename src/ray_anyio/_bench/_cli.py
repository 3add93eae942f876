"""Argument parsing and the run loop of ``python -m ray_anyio bench``."""

from __future__ import annotations

import argparse
import importlib.util
import sys
import time
from pathlib import Path

import ray

from ._report import format_table, machine, trio_vs_asyncio, write_json, write_plot
from ._scenarios import SCENARIOS, Context
from ._timing import Row


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--quick", action="store_true", help="small sizes, few repeats")
    parser.add_argument("--only", default="", help="comma-separated ids, e.g. B1,B3")
    parser.add_argument("--json", type=Path, help="write the rows as JSON to this file")
    parser.add_argument("--plot", type=Path, help="draw the results into this PNG")


def main(args: argparse.Namespace) -> int:
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
    try:
        print(f"machine: {machine()}", flush=True)
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
        write_json(rows, args.json)
    if args.plot:
        write_plot(rows, args.plot)
    return 0
