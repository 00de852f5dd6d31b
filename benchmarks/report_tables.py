"""The Markdown sections of ``latest.md``, one function per table."""

from __future__ import annotations

from .cells import (
    CPU_RATIO_GOAL,
    FIRST_BYTE_GOAL_S,
    MILLION_RATE_TOLERANCE,
    MILLION_RSS_LIMIT_MIB,
    TOOLS,
)
from .results import RunResult, first_bytes, million_rows, ratios


def fmt(value: float | None, digits: int = 1) -> str:
    return "—" if value is None else f"{value:,.{digits}f}"


def mib(n: int) -> str:
    return f"{n / (1 << 20):,.1f} MiB"


def verdict(met: bool | None) -> str:
    return {True: "**met**", False: "missed", None: "—"}[met]


def cell_text(text: str, limit: int = 300) -> str:
    one_line = " ".join(text.split()).replace("|", "\\|")
    return one_line if len(one_line) <= limit else one_line[: limit - 1] + "…"


def _ok(r: RunResult) -> str:
    return "yes" if r.ok else "**no**"


def _cpu(r: RunResult) -> str:
    value = r.cpu_per_unit
    return "—" if value is None else f"{value:,.2f} {r.cpu_unit}"


def transfer_table(runs: list[RunResult]) -> list[str]:
    out = ["## Transfer cells\n"]
    out.append(
        "| cell | tool | ok | wall s | files/s | MB/s | CPU s | CPU per GB or per 1k files "
        "| first byte s | peak RSS MiB | tree RSS MiB | check |"
    )
    out.append("|---|---|---|---:|---:|---:|---:|---:|---:|---:|---:|---|")
    for r in runs:
        out.append(
            f"| {r.cell} | {r.tool} | {_ok(r)} | {fmt(r.wall_s, 2)} | {fmt(r.files_per_s)} "
            f"| {fmt(r.mb_per_s)} | {fmt(r.cpu_s, 2)} | {_cpu(r)} | {fmt(r.first_byte_s, 2)} "
            f"| {fmt(r.peak_rss_mib)} | {fmt(r.peak_tree_rss_mib)} "
            f"| {cell_text(r.verification or r.error)} |"
        )
    out.append("")
    return out


def ratio_table(runs: list[RunResult]) -> list[str]:
    out = ["## Ratios: fsmove / best peer, and CPU: fsmove / leanest peer (same cell, same run)\n"]
    out.append(
        "| cell | metric | fsmove | best peer | ratio | goal | verdict "
        f"| CPU per | fsmove CPU | leanest peer | CPU ratio | CPU goal <= {CPU_RATIO_GOAL}x |"
    )
    out.append("|---|---|---:|---|---:|---:|---|---|---:|---|---:|---|")
    for ra in ratios(runs):
        peer = f"{ra.best_peer} {fmt(ra.best_peer_value)}" if ra.best_peer else "—"
        goal = f">= {ra.target}x" if ra.target else "(none)"
        ratio = "—" if ra.ratio is None else f"{ra.ratio:.2f}x"
        met = "no fsmove result" if ra.fsmove is None else verdict(ra.met)
        lean = f"{ra.leanest_peer} {fmt(ra.leanest_peer_cpu, 2)}" if ra.leanest_peer else "—"
        cpu_ratio = "—" if ra.cpu_ratio is None else f"{ra.cpu_ratio:.2f}x"
        out.append(
            f"| {ra.cell} | {ra.metric} | {fmt(ra.fsmove)} | {peer} | {ratio} | {goal} | {met} "
            f"| {ra.cpu_unit} | {fmt(ra.fsmove_cpu, 2)} | {lean} | {cpu_ratio} "
            f"| {verdict(ra.cpu_met)} |"
        )
    out.append("")
    return out


def first_byte_table(runs: list[RunResult]) -> list[str]:
    rows = first_bytes(runs)
    if not rows:
        return []
    cells = list(dict.fromkeys(fb.cell for fb in rows))
    tools = [t for t in TOOLS if any(fb.tool == t for fb in rows)]
    out = ["## First byte: seconds from the start to the first destination file holding data\n"]
    out.append(
        "Polled (throttled to ~10 % of a core; the poll's resolution in brackets); "
        f"goal for fsmove <= {FIRST_BYTE_GOAL_S:g} s in every cell.\n"
    )
    out.append("| cell | " + " | ".join(tools) + " | fsmove verdict |")
    out.append("|---|" + "---:|" * len(tools) + "---|")
    for cell in cells:
        in_cell = {fb.tool: fb for fb in rows if fb.cell == cell}
        values = []
        for tool in tools:
            fb = in_cell.get(tool)
            if fb is None or fb.seconds is None:
                values.append("—")
            else:
                values.append(f"{fb.seconds:.2f} ({fmt(fb.poll_s, 2)})")
        mine = in_cell.get("fsmove")
        out.append(
            f"| {cell} | " + " | ".join(values) + f" | {verdict(mine.met if mine else None)} |"
        )
    out.append("")
    return out


def scale_table(runs: list[RunResult]) -> list[str]:
    scale = [r for r in runs if r.kind == "scale"]
    if not scale:
        return []
    out = ["## Scale cells: 100,000 files (local -> SFTP; SFTP -> FTP when selected)\n"]
    out.append(
        "| cell | tool | ok | files | wall s | files/s | CPU s/1k files | first byte s "
        "| peak RSS MiB |"
    )
    out.append("|---|---|---|---:|---:|---:|---:|---:|---:|")
    for r in scale:
        out.append(
            f"| {r.cell} | {r.tool} | {_ok(r)} | {r.files:,} | {fmt(r.wall_s, 2)} "
            f"| {fmt(r.files_per_s)} | {fmt(r.cpu_per_kfiles, 2)} | {fmt(r.first_byte_s, 2)} "
            f"| {fmt(r.peak_rss_mib)} |"
        )
    out.append("")
    return out


def million_table(runs: list[RunResult]) -> list[str]:
    rows = million_rows(runs)
    if not rows:
        return []
    floor = 1.0 - MILLION_RATE_TOLERANCE
    out = ["## Million-file cells: completion, rate against 100,000 files, RSS, first byte\n"]
    out.append(
        f"Goals: completes; files/s >= {floor:.0%} of the same route's 100,000-file cell "
        "(`scale-*`, same run: its mean over the runs before and after the million "
        f"files, each in brackets); peak RSS <= {MILLION_RSS_LIMIT_MIB:.0f} MiB; first byte "
        f'<= {FIRST_BYTE_GOAL_S:g} s. "CPU vs 100k": CPU per 1,000 files over the '
        "100,000-file run's (not judged; it moves far less with the machine's load than "
        "the rate).\n"
    )
    out.append(
        "| cell | tool | ok | files | wall s | files/s | 100k files/s | rate ratio | verdict "
        "| peak RSS MiB | verdict | first byte s | CPU s/1k files | CPU vs 100k |"
    )
    out.append("|---|---|---|---:|---:|---:|---:|---:|---|---:|---|---:|---:|---:|")
    for row in rows:
        r = row.run
        ref = fmt(row.reference_rate)
        if len(row.references) > 1:  # the mean, then each run (before, after)
            ref += " (" + ", ".join(fmt(s.files_per_s) for s in row.references) + ")"
        rate = "—" if row.rate_ratio is None else f"{row.rate_ratio:.2f}x"
        rate_verdict = "no 100k cell" if not row.references else verdict(row.rate_met)
        out.append(
            f"| {r.cell} | {r.tool} | {_ok(r)} | {r.files:,} | {fmt(r.wall_s, 1)} "
            f"| {fmt(r.files_per_s)} | {ref} | {rate} | {rate_verdict} "
            f"| {fmt(r.peak_rss_mib)} | {verdict(row.rss_met)} | {fmt(r.first_byte_s, 2)} "
            f"| {fmt(r.cpu_per_kfiles, 2)} "
            f"| {'—' if row.cpu_ratio is None else f'{row.cpu_ratio:.2f}x'} |"
        )
    out.append("")
    return out


def million_resume_table(runs: list[RunResult]) -> list[str]:
    rows = [r for r in runs if r.kind == "million-resume"]
    if not rows:
        return []
    out = ["## Million-file resume: SIGKILL when half the files have arrived, then rerun\n"]
    out.append(
        "Re-sent: files complete at their final name after the kill that the second run "
        "wrote again (replaced: another inode; rewritten: same inode, new ctime or size). "
        "Goal: re-sent <= one block per file in flight; every file here is smaller than one "
        "block, so at most the files the tool has in flight at once.\n"
    )
    out.append(
        "| cell | tool | ok | files | killed at | complete at kill | partial at kill "
        "| re-sent files (replaced + rewritten) | re-sent bytes | in flight at most "
        "| verdict | peak RSS MiB | 2nd run s |"
    )
    out.append("|---|---|---|---:|---:|---:|---:|---:|---:|---:|---|---:|---:|")
    for r in rows:
        t = r.tree_resume
        if t is None:
            out.append(f"| {r.cell} | {r.tool} | **no** |" + " — |" * 10)
            continue
        second = r.extra.get("second_run_wall_s")
        out.append(
            f"| {r.cell} | {r.tool} | {_ok(r)} | {t.files:,} | {t.killed_at_fraction:.1%} "
            f"| {t.complete_at_kill:,} | {t.partial_at_kill:,} "
            f"| {t.resent_files:,} ({t.replaced:,} + {t.rewritten:,}) | {t.resent_bytes:,} "
            f"| {'—' if t.in_flight_bound is None else f'{t.in_flight_bound:,}'} "
            f"| {verdict(t.met)} | {fmt(r.peak_rss_mib)} "
            f"| {fmt(float(second) if isinstance(second, int | float) else None, 1)} |"
        )
    out.append("")
    return out


def resume_table(runs: list[RunResult]) -> list[str]:
    resume = [r for r in runs if r.kind == "resume"]
    if not resume:
        return []
    out = ["## Resume cell: SIGKILL at half of one file (FTP -> SFTP), then rerun\n"]
    out.append(
        "| tool | ok | size | killed at | sent, 1st run | sent, 2nd run | re-sent | 2nd run s |"
    )
    out.append("|---|---|---:|---:|---:|---:|---:|---:|")
    for r in resume:
        f = r.resume
        if f is None:
            out.append(f"| {r.tool} | **no** | — | — | — | — | — | — |")
            continue
        second = r.extra.get("second_run_wall_s")
        out.append(
            f"| {r.tool} | {_ok(r)} | {mib(f.size)} "
            f"| {f.killed_at_fraction:.0%} | {mib(f.sent_first)} | {mib(f.sent_second)} "
            f"| {mib(f.resent)} "
            f"| {fmt(float(second) if isinstance(second, int | float) else None, 2)} |"
        )
    out.append("")
    return out
