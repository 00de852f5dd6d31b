"""`fsmove status [JOB]`: read journals (read-only, safe while a copy runs)."""

from __future__ import annotations

import json
import sqlite3
import sys
import time
from dataclasses import asdict
from pathlib import Path

from fsmove.errors import UsageError
from fsmove.exitcodes import ExitCode
from fsmove.progress import human_bytes, human_seconds
from fsmove.transfers.journal import JobStatus, default_journal_dir, list_jobs, read_status


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


def _line(st: JobStatus) -> str:
    c = st.counts
    done = c.get("done", 0) + c.get("skipped", 0)
    total = sum(c.values())
    state = "running" if st.running else (st.run_status or "planned")
    return (
        f"{st.path.stem}  {state:<11} {done}/{total} files  "
        f"{human_bytes(st.bytes_done)}/{human_bytes(st.bytes_total)}  {st.src} -> {st.dst}"
    )


def _detail(st: JobStatus) -> str:
    c = st.counts
    now = time.time()
    lines = [
        f"job:       {st.path.stem}",
        f"journal:   {st.path}",
        f"source:    {st.src}",
        f"dest:      {st.dst}",
        f"state:     {'running now' if st.running else (st.run_status or 'planned')}",
        f"files:     {c.get('done', 0)} done, {c.get('skipped', 0)} already identical, "
        f"{c.get('partial', 0)} partial, {c.get('pending', 0)} pending, "
        f"{c.get('failed', 0)} failed",
        f"bytes:     {human_bytes(st.bytes_done)} of {human_bytes(st.bytes_total)}",
    ]
    if st.run_started:
        elapsed = max(1e-6, (st.last_activity or now) - st.run_started)
        lines.append(
            f"last run:  {human_bytes(st.bytes_sent_last_run)} sent in "
            f"{human_seconds(elapsed)} ({human_bytes(st.bytes_sent_last_run / elapsed)}/s)"
        )
    if st.last_activity:
        lines.append(f"activity:  {human_seconds(now - st.last_activity)} ago")
    return "\n".join(lines)


def _readable(path: Path) -> JobStatus | None:
    """The job's status, or None (with a one-line note) when its journal is damaged."""
    try:
        return read_status(path)
    except sqlite3.DatabaseError as exc:
        print(f"fsmove: warning: journal {path} cannot be read ({exc}); the next copy of "
              "that job sets it aside and starts a new one", file=sys.stderr)
        return None


def run_status(job: str | None, *, as_json: bool) -> ExitCode:
    if job is None:
        jobs = [st for p in list_jobs() if (st := _readable(p)) is not None]
        if as_json:
            print(json.dumps([_as_dict(s) for s in jobs], indent=2))
        elif not jobs:
            print(f"no jobs yet (journals live in {default_journal_dir()})")
        else:
            for st in jobs:
                print(_line(st))
        return ExitCode.OK
    path = find_journal(job)
    st = _readable(path)
    if st is None:
        return ExitCode.ERROR
    print(json.dumps(_as_dict(st), indent=2) if as_json else _detail(st))
    return ExitCode.OK


def _as_dict(st: JobStatus) -> dict[str, object]:
    d = asdict(st)
    d["path"] = str(st.path)
    d["job"] = st.path.stem
    return d
