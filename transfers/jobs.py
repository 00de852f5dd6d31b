"""Jobs as their journals record them, read without taking a job's lock (safe while a
copy runs): where journals live, a job's status and options, the list of jobs, and the
digests of finished files (``fsmove verify`` trusts those still valid).
"""

from __future__ import annotations

import fcntl
import json
import os
from dataclasses import dataclass
from pathlib import Path

from .journal_db import check_integrity, connect, newer_schema
from .state_dir import state_dir


@dataclass(frozen=True)
class JobStatus:
    path: Path
    src: str
    dst: str
    counts: dict[str, int]
    bytes_total: int
    bytes_done: int
    run_status: str | None
    run_started: float | None
    last_activity: float | None
    bytes_sent_last_run: int
    bytes_resent_last_run: int
    running: bool
    #: The honest state: ``running``, ``ok``, ``partial``, ``interrupted``,
    #: ``failed: <reason>``, or ``planned`` (no run yet).
    state: str = "planned"
    #: Some run got as far as planning the copy (a refused login did not).
    started: bool = False
    #: The options the job was started with (``fsmove resume`` replays them).
    options: dict[str, object] | None = None


def default_journal_dir() -> Path:
    """Where copy journals live: ``$XDG_STATE_HOME/fsmove/jobs`` (``state_dir.py``)."""
    return state_dir("jobs")


def job_id(src_identity: str, dst_identity: str) -> str:
    import xxhash

    # surrogateescape: a local root whose name is not UTF-8 ("src\xe9") is the bytes
    # it names (an internal error before session 33).
    return xxhash.xxh3_64_hexdigest(
        f"{src_identity}\n{dst_identity}".encode("utf-8", "surrogateescape"))


def default_journal_path(src_identity: str, dst_identity: str) -> Path:
    return default_journal_dir() / f"{job_id(src_identity, dst_identity)}.db"


def job_state(runs: list[tuple[str, str | None, int]], *, running: bool) -> tuple[str, bool]:
    """(state, started) from the job's runs, newest first: (status, note, planned).

    The state is that of the newest run that got as far as planning: an attempt that
    failed before (a refused login, a server down) says nothing about the files, so a
    finished job stays ``ok``. A job no run ever planned shows how its last attempt
    ended (``failed: <why>``)."""
    if running:
        return "running", any(planned for _s, _n, planned in runs)
    for status, note, planned in runs:
        if planned:
            return _state_text(status, note), True
    if runs:
        status, note, _planned = runs[0]
        return _state_text(status, note), False
    return "planned", False


def _state_text(status: str, note: str | None) -> str:
    if status == "running":
        return "interrupted"  # left 'running' by a process that is gone (kill -9)
    if status in ("failed", "partial") and note:
        return f"{status}: {note}"
    return status


def read_status(path: Path) -> JobStatus:
    """Progress of the job in ``path``, read-only: safe while a copy runs."""
    conn = connect(path, readonly=True)
    try:
        check_integrity(conn)
        meta = dict(conn.execute("SELECT key, value FROM meta").fetchall())
        counts = dict(conn.execute("SELECT state, COUNT(*) FROM files GROUP BY state").fetchall())
        total, done = conn.execute(
            "SELECT COALESCE(SUM(size),0),"
            " COALESCE(SUM(CASE WHEN state='skipped' THEN size ELSE bytes_done END),0)"
            " FROM files"
        ).fetchone()
        last = conn.execute("SELECT MAX(updated) FROM files").fetchone()[0]
        run = conn.execute(
            "SELECT status, started, bytes_sent, bytes_resent, heartbeat FROM runs"
            " ORDER BY id DESC LIMIT 1"
        ).fetchone()
        columns = {row[1] for row in conn.execute("PRAGMA table_info(runs)")}
        if {"note", "planned"} <= columns:
            runs = conn.execute(
                "SELECT status, note, planned FROM runs ORDER BY id DESC").fetchall()
        else:  # written by an older fsmove: every run was a copy attempt
            runs = [(st, None, 1) for (st,) in conn.execute(
                "SELECT status FROM runs ORDER BY id DESC")]
    finally:
        conn.close()
    running = _is_locked(path)
    state, started = job_state(runs, running=running)
    run_status = run[0] if run else None
    if run_status == "running" and not running:
        run_status = "interrupted"
    heartbeat = run[4] if run else None
    try:
        options = json.loads(meta.get("options", "{}"))
    except ValueError:
        # Not JSON (edited, damaged): said so, never taken as "no option" (resume then
        # dropped a saved --delete or --exclude without a word, session 32).
        options = {"format": "damaged"}
    return JobStatus(
        path=path,
        src=meta.get("src", "?"),
        dst=meta.get("dst", "?"),
        counts=counts,
        bytes_total=int(total),
        bytes_done=int(done),
        run_status=run_status,
        run_started=run[1] if run else None,
        last_activity=max(x for x in (last, heartbeat, 0.0) if x is not None) or None,
        bytes_sent_last_run=int(run[2]) if run else 0,
        bytes_resent_last_run=int(run[3]) if run else 0,
        running=running,
        state=state,
        started=started,
        options=options if isinstance(options, dict) else {},
    )


def read_meta(path: Path) -> dict[str, str]:
    conn = connect(path, readonly=True)
    try:
        return dict(conn.execute("SELECT key, value FROM meta").fetchall())
    finally:
        conn.close()


def _is_locked(path: Path) -> bool:
    lock = f"{path}.lock"
    if not os.path.exists(lock):
        return False
    fd = os.open(lock, os.O_RDONLY)
    try:
        fcntl.flock(fd, fcntl.LOCK_SH | fcntl.LOCK_NB)
    except BlockingIOError:
        return True
    finally:
        os.close(fd)
    return False


def list_jobs(directory: Path | None = None) -> list[Path]:
    d = directory or default_journal_dir()
    if not d.is_dir():
        return []
    # Regular files only: a FIFO named like a journal hung `status` at its open, past
    # SIGTERM (session 32).
    found = [p for p in d.glob("*.db") if p.is_file()]
    return sorted(found, key=lambda p: p.stat().st_mtime, reverse=True)


def digest_lookup(path: Path) -> dict[str, tuple[int, float | None, str, str, float]]:
    """path -> (size, mtime, digest, algorithm, when it was recorded) of every file a
    copy finished (read-only)."""
    if not path.exists():
        return {}
    conn = connect(path, readonly=True)
    try:
        if newer_schema(conn) is not None:
            return {}  # a newer fsmove's rows: not vouched for by this one
        return {
            p: (s, m, d, a, u)
            for p, s, m, d, a, u in conn.execute(
                "SELECT path, size, mtime, digest, algorithm, updated FROM files"
                " WHERE state='done' AND digest IS NOT NULL"
            )
        }
    finally:
        conn.close()
