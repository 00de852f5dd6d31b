"""Write a run's results: ``latest.json`` (everything) and ``latest.md`` (tables)."""

from __future__ import annotations

import dataclasses
import json
from pathlib import Path

from .cells import RSS_LIMIT_MIB
from .results import Ratio, RunResult, ratios, rss_check


def _fmt(value: float | None, digits: int = 1) -> str:
    return "—" if value is None else f"{value:,.{digits}f}"


def _mib(n: int) -> str:
    return f"{n / (1 << 20):,.1f} MiB"


def run_to_json(run: RunResult) -> dict[str, object]:
    data = dataclasses.asdict(run)
    data["files_per_s"] = None if run.files_per_s is None else round(run.files_per_s, 2)
    data["mb_per_s"] = None if run.mb_per_s is None else round(run.mb_per_s, 2)
    data["cpu_s"] = None if run.cpu_s is None else round(run.cpu_s, 3)
    if run.resume is not None:
        assert isinstance(data["resume"], dict)
        data["resume"]["resent"] = run.resume.resent
    return data


def ratio_to_json(r: Ratio) -> dict[str, object]:
    data = dataclasses.asdict(r)
    data["ratio"] = None if r.ratio is None else round(r.ratio, 3)
    data["met"] = r.met
    return data


def build_document(*, meta: dict[str, object], runs: list[RunResult]) -> dict[str, object]:
    worst, rss_ok = rss_check(runs)
    return {
        **meta,
        "runs": [run_to_json(r) for r in runs],
        "ratios": [ratio_to_json(r) for r in ratios(runs)],
        "fsmove_peak_rss": {"limit_mib": RSS_LIMIT_MIB, "worst_mib": worst, "met": rss_ok},
    }


def write_json(document: dict[str, object], path: Path) -> None:
    path.write_text(json.dumps(document, indent=2, sort_keys=False) + "\n")


def _verdict(met: bool | None) -> str:
    return {True: "**met**", False: "missed", None: "—"}[met]


def markdown(document: dict[str, object], runs: list[RunResult]) -> str:
    machine = document["machine"]
    assert isinstance(machine, dict)
    versions = document["versions"]
    assert isinstance(versions, dict)
    corpora = document["corpora"]
    assert isinstance(corpora, dict)
    out: list[str] = []
    out.append("# fsmove benchmark results\n")
    out.append(f"- Date: {document['date']} ({'quick' if document['quick'] else 'full'} run)")
    out.append(
        f"- Machine: {machine['cores']} cores, {machine['ram_gib']} GiB RAM, "
        f"{machine['cpu_model']}; Python {machine['python']}; kernel {machine['kernel']}"
    )
    out.append(
        f"- Load average at start: {machine['load_average_at_start']}, at end: "
        f"{document.get('load_average_at_end')} (the machine may be shared: figures are noisy)"
    )
    for tool, version in versions.items():
        out.append(f"- {tool}: {version}")
    out.append(f"- Links: {document['link']}")
    out.append(f"- Command: `{document['command']}`; total time {document['total_s']} s\n")

    out.append("## Corpora\n")
    out.append("| corpus | files | size | what |")
    out.append("|---|---:|---:|---|")
    for name, info in corpora.items():
        out.append(f"| {name} | {info['files']:,} | {_mib(info['bytes'])} | {info['what']} |")
    out.append("")

    transfer = [r for r in runs if r.kind == "transfer"]
    if transfer:
        out.append("## Transfer cells\n")
        out.append(
            "| cell | tool | ok | wall s | files/s | MB/s | CPU s | peak RSS MiB "
            "| tree RSS MiB | check |"
        )
        out.append("|---|---|---|---:|---:|---:|---:|---:|---:|---|")
        for r in transfer:
            out.append(
                f"| {r.cell} | {r.tool} | {'yes' if r.ok else '**no**'} | {_fmt(r.wall_s, 2)} "
                f"| {_fmt(r.files_per_s)} | {_fmt(r.mb_per_s)} | {_fmt(r.cpu_s, 2)} "
                f"| {_fmt(r.peak_rss_mib)} | {_fmt(r.peak_tree_rss_mib)} "
                f"| {_cell_text(r.verification or r.error)} |"
            )
        out.append("")
        out.append("## Ratios: fsmove / best peer (same cell, same run)\n")
        out.append("| cell | metric | fsmove | best peer | ratio | target | verdict |")
        out.append("|---|---|---:|---|---:|---:|---|")
        for ra in ratios(runs):
            peer = f"{ra.best_peer} {_fmt(ra.best_peer_value)}" if ra.best_peer else "—"
            target = f">= {ra.target}x" if ra.target else "(none)"
            ratio = "—" if ra.ratio is None else f"{ra.ratio:.2f}x"
            verdict = "no fsmove result" if ra.fsmove is None else _verdict(ra.met)
            out.append(
                f"| {ra.cell} | {ra.metric} | {_fmt(ra.fsmove)} | {peer} | {ratio} "
                f"| {target} | {verdict} |"
            )
        out.append("")

    scale = [r for r in runs if r.kind == "scale"]
    if scale:
        out.append("## Scale cell: many files, local -> SFTP\n")
        out.append("| tool | ok | files | wall s | files/s | time to first byte s | peak RSS MiB |")
        out.append("|---|---|---:|---:|---:|---:|---:|")
        for r in scale:
            out.append(
                f"| {r.tool} | {'yes' if r.ok else '**no**'} | {r.files:,} | {_fmt(r.wall_s, 2)} "
                f"| {_fmt(r.files_per_s)} | {_fmt(r.first_byte_s, 3)} | {_fmt(r.peak_rss_mib)} |"
            )
        out.append("")

    resume = [r for r in runs if r.kind == "resume"]
    if resume:
        out.append("## Resume cell: SIGKILL at half of one file (FTP -> SFTP), then rerun\n")
        out.append(
            "| tool | ok | size | killed at | sent, 1st run | sent, 2nd run | re-sent | 2nd run s |"
        )
        out.append("|---|---|---:|---:|---:|---:|---:|---:|")
        for r in resume:
            f = r.resume
            if f is None:
                out.append(f"| {r.tool} | **no** | — | — | — | — | — | — |")
                continue
            out.append(
                f"| {r.tool} | {'yes' if r.ok else '**no**'} | {_mib(f.size)} "
                f"| {f.killed_at_fraction:.0%} | {_mib(f.sent_first)} | {_mib(f.sent_second)} "
                f"| {_mib(f.resent)} | {_fmt(_num(r.extra.get('second_run_wall_s')), 2)} |"
            )
        out.append("")

    worst = document["fsmove_peak_rss"]
    assert isinstance(worst, dict)
    out.append(
        f"fsmove peak RSS over all cells: {_fmt(worst['worst_mib'])} MiB "
        f"(limit {RSS_LIMIT_MIB:.0f} MiB: {_verdict(worst['met'])}).\n"
    )
    failures = [r for r in runs if not r.ok]
    if failures:
        out.append("## Failures\n")
        for r in failures:
            out.append(f"- {r.cell} / {r.tool}: {_cell_text(r.error or r.verification)}")
        out.append("")
    return "\n".join(out)


def _num(value: object) -> float | None:
    return float(value) if isinstance(value, int | float) else None


def _cell_text(text: str, limit: int = 300) -> str:
    one_line = " ".join(text.split()).replace("|", "\\|")
    return one_line if len(one_line) <= limit else one_line[: limit - 1] + "…"
