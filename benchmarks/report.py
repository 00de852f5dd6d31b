"""Write a run's results: ``latest.json`` (everything) and ``latest.md`` (tables)."""

from __future__ import annotations

import dataclasses
import json
from pathlib import Path

from .cells import RSS_LIMIT_MIB
from .goals import GoalCheck, check_goals
from .report_tables import (
    cell_text,
    first_byte_table,
    fmt,
    mib,
    million_resume_table,
    million_table,
    ratio_table,
    resume_table,
    scale_table,
    transfer_table,
    verdict,
)
from .results import FirstByte, MillionRow, Ratio, RunResult, first_bytes, million_rows, rss_check
from .results import ratios as ratio_rows


def _round(value: float | None, digits: int) -> float | None:
    return None if value is None else round(value, digits)


def run_to_json(run: RunResult) -> dict[str, object]:
    data = dataclasses.asdict(run)
    data["files_per_s"] = _round(run.files_per_s, 2)
    data["mb_per_s"] = _round(run.mb_per_s, 2)
    data["cpu_s"] = _round(run.cpu_s, 3)
    data["cpu_unit"] = run.cpu_unit
    data["cpu_per_unit"] = _round(run.cpu_per_unit, 3)
    if run.resume is not None:
        assert isinstance(data["resume"], dict)
        data["resume"]["resent"] = run.resume.resent
    if run.tree_resume is not None:
        assert isinstance(data["tree_resume"], dict)
        data["tree_resume"]["resent_files"] = run.tree_resume.resent_files
        data["tree_resume"]["met"] = run.tree_resume.met
    return data


def ratio_to_json(r: Ratio) -> dict[str, object]:
    data = dataclasses.asdict(r)
    data["ratio"] = _round(r.ratio, 3)
    data["met"] = r.met
    data["cpu_ratio"] = _round(r.cpu_ratio, 3)
    data["cpu_met"] = r.cpu_met
    return data


def _first_byte_json(fb: FirstByte) -> dict[str, object]:
    return {**dataclasses.asdict(fb), "met": fb.met}


def _million_json(m: MillionRow) -> dict[str, object]:
    return {
        "cell": m.run.cell,
        "tool": m.run.tool,
        "ok": m.run.ok,
        "files": m.run.files,
        "files_per_s": _round(m.run.files_per_s, 2),
        "reference_cell": m.references[0].cell if m.references else None,
        "reference_files_per_s": _round(m.reference_rate, 2),
        "reference_runs_files_per_s": [_round(r.files_per_s, 2) for r in m.references],
        "rate_ratio": _round(m.rate_ratio, 3),
        "rate_met": m.rate_met,
        "cpu_ratio": _round(m.cpu_ratio, 3),
        "peak_rss_mib": m.run.peak_rss_mib,
        "rss_limit_mib": m.rss_limit_mib,
        "rss_met": m.rss_met,
        "first_byte_s": m.run.first_byte_s,
    }


def _goal_json(g: GoalCheck) -> dict[str, object]:
    return {**dataclasses.asdict(g), "verdict": g.verdict}


def build_document(*, meta: dict[str, object], runs: list[RunResult]) -> dict[str, object]:
    worst, rss_ok = rss_check(runs)
    return {
        **meta,
        "goals": [_goal_json(g) for g in check_goals(runs)],
        "runs": [run_to_json(r) for r in runs],
        "ratios": [ratio_to_json(r) for r in ratio_rows(runs)],
        "first_bytes": [_first_byte_json(fb) for fb in first_bytes(runs)],
        "million": [_million_json(m) for m in million_rows(runs)],
        "fsmove_peak_rss": {"limit_mib": RSS_LIMIT_MIB, "worst_mib": worst, "met": rss_ok},
    }


def write_json(document: dict[str, object], path: Path) -> None:
    path.write_text(json.dumps(document, indent=2, sort_keys=False) + "\n")


def _goal_lines(runs: list[RunResult]) -> list[str]:
    out = ["## Goals (issue 18): verdicts of this run\n"]
    out.append("| goal | verdict | met | missed | not measured |")
    out.append("|---|---|---|---|---|")
    for g in check_goals(runs):

        def names(items: tuple[str, ...]) -> str:
            return ", ".join(items) if items else "—"

        out.append(
            f"| {g.goal} | {verdict(g.verdict)} | {len(g.met)} | {names(g.missed)} "
            f"| {names(g.unmeasured)} |"
        )
    out.append("")
    return out


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

    out += _goal_lines(runs)

    out.append("## Corpora\n")
    out.append("| corpus | files | size | what |")
    out.append("|---|---:|---:|---|")
    for name, info in corpora.items():
        out.append(f"| {name} | {info['files']:,} | {mib(info['bytes'])} | {info['what']} |")
    out.append("")

    transfer = [r for r in runs if r.kind == "transfer"]
    if transfer:
        out += transfer_table(transfer)
        out += ratio_table(runs)
    out += first_byte_table(runs)
    out += scale_table(runs)
    out += million_table(runs)
    out += million_resume_table(runs)
    out += resume_table(runs)

    worst = document["fsmove_peak_rss"]
    assert isinstance(worst, dict)
    out.append(
        f"fsmove peak RSS over all cells but the million-file ones: {fmt(worst['worst_mib'])} "
        f"MiB (limit {RSS_LIMIT_MIB:.0f} MiB: {verdict(worst['met'])}).\n"
    )
    failures = [r for r in runs if not r.ok]
    if failures:
        out.append("## Failures\n")
        for r in failures:
            out.append(f"- {r.cell} / {r.tool}: {cell_text(r.error or r.verification)}")
        out.append("")
    return "\n".join(out)
