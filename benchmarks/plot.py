"""The comparison plot (``--plot``): one panel per scenario, grouped bars.

Each case of a scenario is a group of bars: ray-anyio on each backend, then
the alternatives a user would pick instead (a row's ``compare`` baselines,
measured in the row's unit). Every contender keeps its colour across panels;
one legend serves them all. The bars of ray-anyio carry their ratio (to the
baseline the row names); one that missed its target is hatched and edged in
red. A panel whose values span
more than ``LOG_SPREAD`` uses a log axis. The figure is 800 px wide, the
width of a README.
"""

from __future__ import annotations

import math
import textwrap
from pathlib import Path
from typing import Any

from .timing import Row

#: A panel whose largest value is this many times its smallest is drawn on a
#: log axis.
LOG_SPREAD = 30.0
_WIDTH_INCHES, _DPI, _COLUMNS, _LEGEND_COLUMNS = 8.0, 100, 2, 4

_OURS = {"asyncio": "tab:blue", "trio": "tab:orange"}
#: Colours of the alternatives, by a word of their name; the first match wins.
_THEIRS = [
    ("ray.get", "tab:gray"),
    ("native", "tab:red"),
    ("gather", "tab:red"),
    ("to_thread (asyncio)", "tab:green"),
    ("to_thread", "yellowgreen"),
    ("trio-asyncio", "tab:purple"),
    ("ray.util", "tab:brown"),
    ("ideal", "black"),
    ("ordered=False (asyncio)", "lightsteelblue"),
    ("ordered=False", "navajowhite"),
    ("sleep loop (asyncio)", "tab:olive"),
    ("sleep loop", "khaki"),
    ("2 per actor (asyncio)", "tab:pink"),
    ("2 per actor", "plum"),
    ("list copy", "tab:cyan"),
    ("task per actor (asyncio)", "darkcyan"),
    ("task per actor", "paleturquoise"),
    ("ray.wait", "tab:gray"),
    ("anyio.Event", "tab:olive"),
]


def _ours(backend: str) -> str:
    return f"ray-anyio ({backend})"


def _color(label: str) -> str:
    for backend, color in _OURS.items():
        if label == _ours(backend):
            return color
    for word, color in _THEIRS:
        if word in label:
            return color
    return "tab:pink"


def _groups(rows: list[Row]) -> list[tuple[str, dict[str, tuple[float, Row | None]]]]:
    """Per case, in order: bar label -> (value, the row if it is ray-anyio's)."""
    cases: dict[str, dict[str, tuple[float, Row | None]]] = {}
    for row in rows:
        bars = cases.setdefault(row.case, {})
        bars[_ours(row.backend)] = (row.value, row)
    for row in rows:
        for name in row.compare:
            cases[row.case].setdefault(name, (row.baselines[name], None))
    return list(cases.items())


def _panel(ax: Any, scenario: str, rows: list[Row]) -> None:
    groups = _groups(rows)
    width = 0.8 / max(3, *(len(bars) for _, bars in groups))
    values = [v for _, bars in groups for v, _ in bars.values() if v > 0]
    if values and max(values) > LOG_SPREAD * min(values):
        ax.set_yscale("log")
    for g, (_, bars) in enumerate(groups):
        left = g - width * (len(bars) - 1) / 2
        for i, (label, (value, row)) in enumerate(bars.items()):
            missed = row is not None and row.ok is False
            bar = ax.bar(
                left + i * width,
                value,
                width,
                color=_color(label),
                hatch="///" if missed else None,
                edgecolor="tab:red" if missed else "white",
                linewidth=1.2 if missed else 0.3,
            )
            if row is not None and row.ratio is not None:
                ax.bar_label(bar, [f"{row.ratio:.2f}x"], fontsize=6, padding=1)
    # Narrower labels where more groups share the panel's width.
    cases = [textwrap.fill(case, max(8, 44 // len(groups))) for case, _ in groups]
    ax.set_xticks(range(len(groups)), cases, fontsize=7)
    ax.tick_params(axis="y", labelsize=7)
    ax.set_ylabel(rows[0].unit, fontsize=7)
    targets = list(dict.fromkeys(r.target for r in rows))
    target = "; ".join(targets)
    ratio_to = f" (ratio to {rows[0].ratio_to})" if rows[0].ratio_to else ""
    ax.set_title(
        textwrap.fill(f"{scenario}: target {target}{ratio_to}", 48), fontsize=8
    )
    ax.margins(y=0.15)


def write_plot(rows: list[Row], path: Path) -> None:
    """Draw every scenario of ``rows`` into the PNG ``path``."""
    try:
        import matplotlib

        matplotlib.use("Agg")
        import matplotlib.pyplot as plt
        from matplotlib.patches import Patch
    except ImportError as exc:
        raise SystemExit(
            "--plot needs matplotlib: pip install 'ray-anyio[plot]'"
        ) from exc
    mine = [r for r in rows if r.backend != "trio/asyncio"]
    # One panel per scenario and unit: B4D's costs per ref and its growth
    # factors do not share an axis.
    panels = list(dict.fromkeys((r.scenario, r.unit) for r in mine))
    lines = math.ceil(len(panels) / _COLUMNS)
    columns = min(_COLUMNS, len(panels))
    labels = {_ours(r.backend) for r in mine} | {n for r in mine for n in r.compare}
    ours = [_ours(b) for b in _OURS if _ours(b) in labels]
    legend = ours + sorted(labels - set(ours))
    legend_inches = 0.2 + 0.16 * math.ceil(len(legend) / _LEGEND_COLUMNS)
    height = legend_inches + 2.7 * lines
    fig, axes = plt.subplots(
        lines, columns, figsize=(_WIDTH_INCHES, height), squeeze=False
    )
    flat = [ax for line in axes for ax in line]
    for ax, (scenario, unit) in zip(flat, panels, strict=False):
        in_panel = [r for r in mine if (r.scenario, r.unit) == (scenario, unit)]
        _panel(ax, scenario, in_panel)
    for ax in flat[len(panels) :]:
        ax.set_visible(False)
    fig.legend(
        [Patch(color=_color(label)) for label in legend],
        legend,
        loc="upper center",
        ncol=_LEGEND_COLUMNS,
        fontsize=7,
        frameon=False,
    )
    fig.tight_layout(rect=(0, 0, 1, 1 - legend_inches / height))
    fig.savefig(path, dpi=_DPI)
    plt.close(fig)
