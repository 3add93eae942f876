"""Command line: ``python -m ray_anyio demo`` (benchmarks: ``benchmarks/run.py``)."""

from __future__ import annotations

import argparse
import sys


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m ray_anyio")
    commands = parser.add_subparsers(dest="command", required=True)
    commands.add_parser("demo", help="run the async API scenarios on asyncio and trio")
    args = parser.parse_args(argv)
    if args.command == "demo":
        from ._demo import main as demo

        return demo()
    return 2  # pragma: no cover


if __name__ == "__main__":
    sys.exit(main())
