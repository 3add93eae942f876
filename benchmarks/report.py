"""The report: a table on stdout and JSON (the plot is in :mod:`.plot`)."""

from __future__ import annotations

import json
import platform
from collections import defaultdict
from pathlib import Path
from typing import Any

from .timing import Row


def machine() -> dict[str, Any]:
    import os
    from importlib.metadata import PackageNotFoundError, version

    def installed(name: str) -> str:
        try:
            return version(name)
        except PackageNotFoundError:
            return "not installed"

    return {
        "ray_anyio_src": _src_digest(),
        "python": platform.python_version(),
        "platform": platform.platform(),
        "cpus": os.cpu_count(),
        **{name: installed(name) for name in ("ray", "anyio", "trio", "trio-asyncio")},
    }


def _src_digest() -> str:
    """A digest of ``src/ray_anyio`` as it is on disk: the code that was measured."""
    import hashlib

    src = Path(__file__).resolve().parent.parent / "src" / "ray_anyio"
    digest = hashlib.sha1()
    for path in sorted(src.rglob("*.py")):
        digest.update(path.relative_to(src).as_posix().encode())
        digest.update(path.read_bytes())
    return digest.hexdigest()[:12]


def trio_vs_asyncio(rows: list[Row]) -> list[Row]:
    """Rows comparing trio to asyncio for every case measured on both.

    A case with a ratio is compared by it: against a baseline shared by both
    backends (``ray.get``, ``ray.wait``) that is the same as comparing times,
    and against a per-backend baseline (tasks cancelled on an Event) it takes
    the event loop's own difference out. Other cases compare their values.
    """
    by_case: dict[tuple[str, str], dict[str, Row]] = defaultdict(dict)
    for row in rows:
        by_case[(row.scenario, row.case)][row.backend] = row
    out = []
    for (scenario, case), backends in by_case.items():
        if {"asyncio", "trio"} <= backends.keys():
            a_row, t_row = backends["asyncio"], backends["trio"]
            if "+-" in a_row.target:
                continue  # a band around a set figure (a rate): not a cost
            if a_row.ratio is not None and t_row.ratio is not None:
                a, t = a_row.ratio, t_row.ratio
            else:
                a, t = a_row.value, t_row.value
            # Where more is better (a throughput), trio's cost is a / t.
            if a_row.target.startswith(">="):
                a, t = t, a
            if not a and not t:
                continue  # nothing on either (Q2's store peak): no cost to compare
            ratio = t / a if a else float("nan")
            out.append(
                Row(
                    scenario,
                    case,
                    "trio/asyncio",
                    ratio,
                    "x",
                    {},
                    ratio,
                    "asyncio",
                    "<= 1.1x",
                    ok=ratio <= 1.1,
                )
            )
    return out


def format_table(rows: list[Row]) -> str:
    lines = [
        f"{'id':4} {'case':38} {'backend':13} {'value':>12} {'ratio':>8}  "
        f"{'target':24} {'ok':4} baselines"
    ]
    for r in rows:
        base = ", ".join(f"{k}={_fmt(v)}" for k, v in r.baselines.items())
        ratio = "" if r.ratio is None else f"{r.ratio:.2f}x"
        ok = "" if r.ok is None else ("yes" if r.ok else "NO")
        lines.append(
            f"{r.scenario:4} {r.case:38} {r.backend:13} {_fmt(r.value):>9} {r.unit:2} "
            f"{ratio:>8}  {r.target:24} {ok:4} {base}"
            + (f"  [{r.note}]" if r.note else "")
        )
    return "\n".join(lines)


def _fmt(v: float) -> str:
    if isinstance(v, int):
        return str(v)
    return f"{v:.4g}"


def write_json(rows: list[Row], path: Path, info: dict[str, Any] | None = None) -> None:
    """Write ``rows`` and ``info`` (by default :func:`machine`) as JSON."""
    data = {"machine": info or machine(), "rows": [r.as_dict() for r in rows]}
    path.write_text(json.dumps(data, indent=2))
