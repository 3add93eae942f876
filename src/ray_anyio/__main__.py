"""Command line: ``python -m ray_anyio demo`` and ``python -m ray_anyio bench``."""

from __future__ import annotations

import argparse
import sys


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m ray_anyio")
    commands = parser.add_subparsers(dest="command", required=True)
    commands.add_parser("demo", help="run the async API scenarios on asyncio and trio")
    bench = commands.add_parser("bench", help="benchmarks B1-B7 against ray.get")
    from ._bench._cli import add_arguments

    add_arguments(bench)
    args = parser.parse_args(argv)
    if args.command == "demo":
        from ._demo import main as demo

        return demo()
    if args.command == "bench":
        from ._bench._cli import main as bench_main

        return bench_main(args)
    return 2  # pragma: no cover


if __name__ == "__main__":
    sys.exit(main())
