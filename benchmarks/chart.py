"""The PNG chart: fsmove's ratio to the best peer per cell, and every tool's throughput."""

from __future__ import annotations

from pathlib import Path

import matplotlib

matplotlib.use("Agg")

import matplotlib.pyplot as plt
from matplotlib.patches import Patch

from .cells import BYTE_CORPORA, CPU_RATIO_GOAL, FIRST_BYTE_GOAL_S, TOOLS
from .results import RunResult, first_bytes, ratios

_COLORS = {"fsmove": "#1b7837", "rclone": "#2166ac", "lftp": "#b2182b"}


def _throughput_panel(ax: plt.Axes, runs: list[RunResult], *, metric: str) -> None:
    cells: list[str] = []
    for r in runs:
        if r.kind == "transfer" and (r.corpus in BYTE_CORPORA) == (metric == "MB/s"):
            if r.cell not in cells:
                cells.append(r.cell)
    if not cells:
        ax.set_axis_off()
        ax.set_title(f"(no cell measured in {metric} in this run)")
        return
    width = 0.8 / len(TOOLS)
    for i, tool in enumerate(TOOLS):
        for x, cell in enumerate(cells):
            run = next((r for r in runs if r.cell == cell and r.tool == tool), None)
            if run is None:
                continue
            value = run.mb_per_s if metric == "MB/s" else run.files_per_s
            xpos = x + (i - (len(TOOLS) - 1) / 2) * width
            if value is None:
                ax.annotate(
                    "failed",
                    (xpos, 0.02),
                    xycoords=("data", "axes fraction"),
                    ha="center",
                    rotation=90,
                    fontsize=7,
                    color=_COLORS[tool],
                )
                continue
            ax.bar(xpos, value, width, color=_COLORS[tool])
            ax.annotate(f"{value:,.0f}", (xpos, value), ha="center", va="bottom", fontsize=7)
    handles = [Patch(color=_COLORS[tool], label=tool) for tool in TOOLS]
    ax.set_xticks(range(len(cells)), cells, rotation=30, ha="right", fontsize=8)
    ax.set_ylabel(metric)
    ax.set_yscale("log")
    ax.set_title(f"Throughput per tool ({metric}, log scale)")
    ax.legend(handles=handles, fontsize=8)


def _ratio_panel(ax: plt.Axes, runs: list[RunResult]) -> None:
    rows = ratios(runs)
    labels = [r.cell for r in rows]
    values = [r.ratio or 0.0 for r in rows]
    colors = ["#999999" if r.ratio is None else ("#1b7837" if r.met else "#d6604d") for r in rows]
    if not rows:
        ax.set_axis_off()
        return
    ax.bar(range(len(rows)), values, 0.6, color=colors)
    for x, r in enumerate(rows):
        if r.target is not None:
            ax.hlines(r.target, x - 0.4, x + 0.4, colors="black", linestyles="dashed")
        text = "no result" if r.ratio is None else f"{r.ratio:.2f}x"
        ax.annotate(text, (x, values[x]), ha="center", va="bottom", fontsize=8)
    ax.axhline(1.0, color="#555555", linewidth=0.8)
    top = max([*values, *(r.target or 0.0 for r in rows), 1.0])
    ax.set_ylim(0, top * 1.2)
    ax.set_xticks(range(len(rows)), labels, rotation=30, ha="right", fontsize=8)
    ax.set_ylabel("fsmove / best peer")
    ax.set_title("fsmove's throughput over the best peer's (dashed: goal; green met, red missed)")


def _cpu_panel(ax: plt.Axes, runs: list[RunResult]) -> None:
    rows = ratios(runs)
    if not rows:
        ax.set_axis_off()
        return
    values = [r.cpu_ratio or 0.0 for r in rows]
    colors = [
        "#999999" if r.cpu_ratio is None else ("#1b7837" if r.cpu_met else "#d6604d") for r in rows
    ]
    ax.bar(range(len(rows)), values, 0.6, color=colors)
    for x, r in enumerate(rows):
        text = "no result" if r.cpu_ratio is None else f"{r.cpu_ratio:.2f}x"
        ax.annotate(text, (x, values[x]), ha="center", va="bottom", fontsize=8)
    ax.axhline(CPU_RATIO_GOAL, color="black", linestyle="dashed", linewidth=0.8)
    ax.set_ylim(0, max([*values, CPU_RATIO_GOAL]) * 1.2)
    ax.set_xticks(range(len(rows)), [r.cell for r in rows], rotation=30, ha="right", fontsize=8)
    ax.set_ylabel("fsmove CPU / leanest peer's")
    ax.set_title(
        "fsmove's client CPU (per GB or per 1,000 files) over the leanest peer's "
        f"(dashed: goal <= {CPU_RATIO_GOAL}x; lower is better)"
    )


def _first_byte_panel(ax: plt.Axes, runs: list[RunResult]) -> None:
    rows = first_bytes(runs)
    cells = list(dict.fromkeys(fb.cell for fb in rows))
    if not cells:
        ax.set_axis_off()
        return
    width = 0.8 / len(TOOLS)
    for i, tool in enumerate(TOOLS):
        for x, cell in enumerate(cells):
            fb = next((f for f in rows if f.cell == cell and f.tool == tool), None)
            if fb is None or fb.seconds is None:
                continue
            xpos = x + (i - (len(TOOLS) - 1) / 2) * width
            ax.bar(xpos, fb.seconds, width, color=_COLORS[tool])
            ax.annotate(f"{fb.seconds:.2f}", (xpos, fb.seconds), ha="center", va="bottom",
                        fontsize=6)  # fmt: skip
    ax.axhline(FIRST_BYTE_GOAL_S, color="black", linestyle="dashed", linewidth=0.8)
    ax.set_xticks(range(len(cells)), cells, rotation=30, ha="right", fontsize=8)
    ax.set_ylabel("seconds")
    ax.set_title(
        f"Time to the first destination byte (dashed: fsmove's goal, {FIRST_BYTE_GOAL_S:g} s)"
    )
    ax.legend(handles=[Patch(color=_COLORS[t], label=t) for t in TOOLS], fontsize=8)


def write_chart(runs: list[RunResult], path: Path, *, title: str) -> None:
    fig, axes = plt.subplots(5, 1, figsize=(11, 21))
    _ratio_panel(axes[0], runs)
    _cpu_panel(axes[1], runs)
    _first_byte_panel(axes[2], runs)
    _throughput_panel(axes[3], runs, metric="files/s")
    _throughput_panel(axes[4], runs, metric="MB/s")
    fig.suptitle(title)
    fig.tight_layout(rect=(0, 0, 1, 0.98))  # room for the title above the first panel
    fig.savefig(path, dpi=100)
    plt.close(fig)
