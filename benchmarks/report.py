"""The report: a table on stdout, JSON, and a PNG with one panel per scenario."""

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
        "python": platform.python_version(),
        "platform": platform.platform(),
        "cpus": os.cpu_count(),
        **{name: installed(name) for name in ("ray", "anyio", "trio")},
    }


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
            if a_row.ratio is not None and t_row.ratio is not None:
                a, t = a_row.ratio, t_row.ratio
            else:
                a, t = a_row.value, t_row.value
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


def write_json(rows: list[Row], path: Path) -> None:
    path.write_text(
        json.dumps(
            {"machine": machine(), "rows": [r.as_dict() for r in rows]}, indent=2
        )
    )


def _plotted(row: Row) -> float:
    # Ratios to ray.get where the target is one; the measured value elsewhere.
    if row.ratio is not None and row.ratio_to == "ray.get":
        return row.ratio
    return row.value


def write_plot(rows: list[Row], path: Path) -> None:
    try:
        import matplotlib

        matplotlib.use("Agg")
        import matplotlib.pyplot as plt
    except ImportError as exc:
        raise SystemExit(
            "--plot needs matplotlib: pip install 'ray-anyio[plot]'"
        ) from exc
    scenarios = sorted({r.scenario for r in rows if r.backend != "trio/asyncio"})
    fig, axes = plt.subplots(1, len(scenarios), figsize=(4 * len(scenarios), 4))
    if len(scenarios) == 1:
        axes = [axes]
    for ax, scenario in zip(axes, scenarios, strict=True):
        mine = [
            r for r in rows if r.scenario == scenario and r.backend != "trio/asyncio"
        ]
        labels, values = [], []
        for r in mine:
            labels.append(f"{r.case}\n{r.backend}")
            values.append(_plotted(r))
        # Green: target met; red: missed; grey: reported, no target.
        shade = {True: "tab:green", False: "tab:red", None: "tab:gray"}
        colors = [shade[r.ok] for r in mine]
        ax.bar(range(len(values)), values, color=colors)
        positive = [v for v in values if v > 0]
        if positive and max(positive) > 100 * min(positive):
            # e.g. B7: one cancelled get next to thousands of cancelled tasks.
            ax.set_yscale("log")
        ax.set_xticks(range(len(values)), labels, rotation=60, ha="right", fontsize=7)
        unit = (
            "x ray.get" if all(r.ratio_to == "ray.get" for r in mine) else mine[0].unit
        )
        ax.set_title(f"{scenario}: {mine[0].target}", fontsize=9)
        ax.set_ylabel(unit)
    fig.tight_layout()
    fig.savefig(path, dpi=110)
