"""`fsmove status [JOB]`: read journals (read-only, safe while a copy runs)."""

from __future__ import annotations

import json
import math
import sqlite3
import sys
import time
from dataclasses import asdict
from pathlib import Path

from fsmove.errors import UsageError
from fsmove.exitcodes import ExitCode
from fsmove.progress import human_bytes, human_seconds
from fsmove.transfers.jobs import JobStatus, default_journal_dir, list_jobs, read_status


def find_journal(job: str) -> Path:
    candidate = Path(job).expanduser()
    if candidate.suffix == ".db" and candidate.exists():
        return candidate
    matches = [p for p in list_jobs() if p.stem.startswith(job)]
    if len(matches) == 1:
        return matches[0]
    if not matches:
        raise UsageError(
            f"no job {job!r} in {default_journal_dir()}: run `fsmove status` to list jobs"
        )
    raise UsageError(f"job id {job!r} is ambiguous: give more characters")


#: The columns of `fsmove status` (one row per job, newest first).
_HEADER = ("JOB", "STATE", "FILES", "BYTES", "DONE", "ETA", "SOURCE -> DESTINATION")


def _percent(st: JobStatus) -> str:
    if st.bytes_total == 0:
        return "100%" if st.counts and st.started else "-"
    return f"{100 * st.bytes_done / st.bytes_total:.0f}%"


def eta_seconds(st: JobStatus, *, now: float | None = None) -> float | None:
    """Seconds left for a running job at the rate of its current run (None: unknown)."""
    if not st.running or not st.run_started or st.bytes_sent_last_run <= 0:
        return None
    elapsed = (st.last_activity or now or time.time()) - st.run_started
    if elapsed <= 0:
        return None
    rate = st.bytes_sent_last_run / elapsed
    return max(0.0, st.bytes_total - st.bytes_done) / rate


def _row(st: JobStatus) -> tuple[str, ...]:
    c = st.counts
    done = c.get("done", 0) + c.get("skipped", 0)
    eta = eta_seconds(st)
    return (
        st.path.stem,
        _short(st.state),
        f"{done}/{sum(c.values())}",
        f"{human_bytes(st.bytes_done)}/{human_bytes(st.bytes_total)}",
        _percent(st),
        human_seconds(eta) if eta is not None else "-",
        f"{st.src} -> {st.dst}",
    )


#: The table's state column: a failure's reason is cut to this (``status JOB`` and
#: ``--json`` give it whole).
STATE_WIDTH = 40


def _short(state: str) -> str:
    return state if len(state) <= STATE_WIDTH else state[: STATE_WIDTH - 3] + "..."


def _table(rows: list[tuple[str, ...]]) -> str:
    """Columns padded to their widest cell; the last (the endpoints) is not padded."""
    widths = [max(len(r[i]) for r in rows) for i in range(len(rows[0]) - 1)]
    return "\n".join(
        "  ".join([*(cell.ljust(w) for cell, w in zip(r, widths, strict=False)), r[-1]])
        for r in rows
    )


def _detail(st: JobStatus) -> str:
    c = st.counts
    now = time.time()
    lines = [
        f"job:       {st.path.stem}",
        f"journal:   {st.path}",
        f"source:    {st.src}",
        f"dest:      {st.dst}",
        f"state:     {'running now' if st.running else st.state}",
        f"files:     {c.get('done', 0)} done, {c.get('skipped', 0)} already identical, "
        f"{c.get('partial', 0)} partial, {c.get('pending', 0)} pending, "
        f"{c.get('failed', 0)} failed",
        f"bytes:     {human_bytes(st.bytes_done)} of {human_bytes(st.bytes_total)} "
        f"({_percent(st)})",
    ]
    eta = eta_seconds(st)
    if eta is not None:
        lines.append(f"eta:       {human_seconds(eta)} at the current rate")
    if st.run_started:
        elapsed = max(1e-6, (st.last_activity or now) - st.run_started)
        lines.append(
            f"last run:  {human_bytes(st.bytes_sent_last_run)} sent in "
            f"{human_seconds(elapsed)} ({human_bytes(st.bytes_sent_last_run / elapsed)}/s)"
        )
    if st.last_activity:
        lines.append(f"activity:  {human_seconds(now - st.last_activity)} ago")
    return "\n".join(lines)


def readable(path: Path) -> JobStatus | None:
    """The job's status, or None (with a one-line note) when its journal is damaged."""
    try:
        return read_status(path)
    except sqlite3.DatabaseError as exc:
        print(f"fsmove: warning: journal {path} cannot be read ({exc}); the next copy of "
              "that job sets it aside and starts a new one", file=sys.stderr)
        return None


def readable_jobs() -> list[JobStatus]:
    return [st for p in list_jobs() if (st := readable(p)) is not None]


def parse_age(text: str) -> float:
    """``30d``, ``12h``, ``90m``, ``3600s``, ``2w`` (a bare number is days) -> seconds."""
    units = {"s": 1, "m": 60, "h": 3600, "d": 86400, "w": 7 * 86400}
    t = text.strip().lower()
    unit = units.get(t[-1:], None)
    number = t[:-1] if unit is not None else t
    try:
        value = float(number)
    except ValueError:
        value = float("nan")
    if not math.isfinite(value) or value < 0:
        raise UsageError(f"--older-than {text!r}: give an age like 30d, 12h or 90m")
    return value * (unit or 86400)


def prune_jobs(older_than: float, *, now: float | None = None) -> list[JobStatus]:
    """Delete the journals of jobs idle for longer than ``older_than`` seconds (finished
    or not: a job untouched that long is rerun from scratch anyway, and a rerun still
    skips every file already at the destination). Running jobs are never touched;
    damaged journals set aside (``.damaged-*``) that old go too."""
    now = time.time() if now is None else now
    removed: list[JobStatus] = []
    for st in readable_jobs():
        last = st.last_activity or st.path.stat().st_mtime
        if st.running or now - last < older_than:
            continue
        for suffix in ("", "-wal", "-shm", ".lock"):
            Path(f"{st.path}{suffix}").unlink(missing_ok=True)
        removed.append(st)
    for aside in default_journal_dir().glob("*.db.damaged-*"):
        if aside.is_file() and now - aside.stat().st_mtime >= older_than:
            aside.unlink(missing_ok=True)
    return removed


def run_prune(older_than: str, *, as_json: bool) -> ExitCode:
    removed = prune_jobs(parse_age(older_than))
    if as_json:
        print(json.dumps([_as_dict(s) for s in removed], indent=2))
    elif not removed:
        print(f"no job idle for more than {older_than}")
    else:
        for st in removed:
            print(f"removed {st.path.stem}  {st.state}  {st.src} -> {st.dst}")
    return ExitCode.OK


def run_status(job: str | None, *, as_json: bool) -> ExitCode:
    if job is None:
        jobs = readable_jobs()
        if as_json:
            print(json.dumps([_as_dict(s) for s in jobs], indent=2))
        elif not jobs:
            print(f"no jobs yet (journals live in {default_journal_dir()})")
        else:
            print(_table([_HEADER, *(_row(st) for st in jobs)]))
        return ExitCode.OK
    path = find_journal(job)
    st = readable(path)
    if st is None:
        return ExitCode.ERROR
    print(json.dumps(_as_dict(st), indent=2) if as_json else _detail(st))
    return ExitCode.OK


def _as_dict(st: JobStatus) -> dict[str, object]:
    d = asdict(st)
    d["path"] = str(st.path)
    d["job"] = st.path.stem
    d["percent"] = round(100 * st.bytes_done / st.bytes_total, 1) if st.bytes_total else None
    d["eta_seconds"] = eta_seconds(st)
    return d
