"""The journal's file: its SQLite schema, how it is opened, checked and upgraded.

Shared by the writer (``journal.py``, one per run, holding the job's lock) and the
readers (``jobs.py``: ``fsmove status``, ``fsmove verify``'s digest lookup), which
open it read-only and never take the lock.

Tables: ``meta`` (key/value), ``files`` (one row per source file with its state and
digest), ``blocks`` (per-block digests; ``acked`` = the destination holds the block),
``partials`` (the acknowledged head of a block not yet whole), ``runs`` (one row per
run, with the bytes it sent, how it ended and why, and whether it got as far as
planning: a run that failed before (a refused login) never changes the job's state).
"""

from __future__ import annotations

import os
import sqlite3
import stat
from pathlib import Path
from urllib.parse import quote

SCHEMA_VERSION = 1

SCHEMA = """
CREATE TABLE IF NOT EXISTS meta (key TEXT PRIMARY KEY, value TEXT NOT NULL);
CREATE TABLE IF NOT EXISTS files (
    path TEXT PRIMARY KEY,
    size INTEGER NOT NULL,
    mtime REAL,
    state TEXT NOT NULL,            -- pending | partial | done | failed | skipped
    digest TEXT,                    -- canonical digest (verify/digest.py) when done
    algorithm TEXT,
    bytes_done INTEGER NOT NULL DEFAULT 0,
    restarts INTEGER NOT NULL DEFAULT 0,
    note TEXT,                      -- why it restarted / failed, one line
    updated REAL NOT NULL,
    dst_mtime REAL                  -- the destination's mtime when last seen or left identical
) WITHOUT ROWID;
CREATE TABLE IF NOT EXISTS blocks (
    path TEXT NOT NULL,
    idx INTEGER NOT NULL,
    digest BLOB NOT NULL,
    acked INTEGER NOT NULL,         -- 1: the destination acknowledged this block
    PRIMARY KEY (path, idx)
) WITHOUT ROWID;
CREATE TABLE IF NOT EXISTS partials (
    path TEXT NOT NULL,
    idx INTEGER NOT NULL,           -- a block only partly acknowledged so far
    nbytes INTEGER NOT NULL,        -- its first nbytes are acknowledged at the destination
    PRIMARY KEY (path, idx)
) WITHOUT ROWID;
CREATE TABLE IF NOT EXISTS runs (
    id INTEGER PRIMARY KEY,
    started REAL NOT NULL,
    finished REAL,
    status TEXT NOT NULL,           -- running | ok | partial | failed | interrupted
    pid INTEGER,
    bytes_sent INTEGER NOT NULL DEFAULT 0,
    bytes_resent INTEGER NOT NULL DEFAULT 0,
    files_done INTEGER NOT NULL DEFAULT 0,
    files_failed INTEGER NOT NULL DEFAULT 0,
    heartbeat REAL,
    note TEXT,                      -- why it failed, one line
    planned INTEGER NOT NULL DEFAULT 0  -- 1: it listed both sides and planned the copy
);
CREATE INDEX IF NOT EXISTS files_state ON files(state);
"""

class JournalPathError(Exception):
    """``--journal`` names something that is not fsmove's to open (a folder, a device)."""


def check_journal_path(path: Path) -> None:
    """Refuse a journal path that is neither a regular file nor free: fsmove chmods,
    locks and (when damaged) renames its journal, never someone else's file."""
    for candidate in (path, Path(f"{path}.lock")):
        try:
            st = os.lstat(candidate)
        except FileNotFoundError:
            continue
        if not stat.S_ISREG(st.st_mode):
            kind = ("a folder" if stat.S_ISDIR(st.st_mode) else
                    "a symlink" if stat.S_ISLNK(st.st_mode) else "not a regular file")
            raise JournalPathError(
                f"journal {candidate} is {kind}: give a new file name or a journal "
                "fsmove wrote (--journal)"
            )


class JournalNewerError(JournalPathError):
    """The journal was written by a newer fsmove (a higher ``schema``): its rows may
    mean what this version cannot know, so it is neither resumed nor trusted."""


def newer_schema(conn: sqlite3.Connection) -> int | None:
    """The journal's schema number when a newer fsmove wrote it, else None (a new file,
    this version's, or an older one this version upgrades)."""
    try:
        row = conn.execute("SELECT value FROM meta WHERE key='schema'").fetchone()
    except sqlite3.OperationalError:
        return None  # no meta table: a new file
    if row is None or not str(row[0]).isdigit() or int(row[0]) <= SCHEMA_VERSION:
        return None
    return int(row[0])


def check_schema(conn: sqlite3.Connection, path: Path) -> None:
    """Refuse a journal a newer fsmove wrote, before anything is written to it."""
    if (found := newer_schema(conn)) is not None:
        raise JournalNewerError(
            f"journal {path} was written by a newer fsmove (journal format {found}; this "
            f"one knows up to {SCHEMA_VERSION}): run that version, or give another "
            "--journal to start this job over"
        )


class JournalDamagedError(sqlite3.DatabaseError):
    """The file opens but is not a sound journal (``PRAGMA quick_check`` failed)."""


def connect(path: Path, *, readonly: bool, existing: bool = False) -> sqlite3.Connection:
    """``existing``: a writer that never creates the file (a missing one is an error,
    not a new empty database)."""
    if readonly:
        # Quoted: a "#" or "?" in the path cut the URI there (a dry run's journal at
        # "j#x.db" read a new empty file "j" instead: session 36's third pass).
        conn = sqlite3.connect(f"file:{quote(str(path))}?mode=ro", uri=True, timeout=10)
    elif existing:
        conn = sqlite3.connect(f"file:{quote(str(path))}?mode=rw", uri=True, timeout=30,
                               isolation_level=None)
        conn.execute("PRAGMA journal_mode=WAL")
        conn.execute("PRAGMA synchronous=NORMAL")
    else:
        conn = sqlite3.connect(path, timeout=30, isolation_level=None)
        conn.execute("PRAGMA journal_mode=WAL")
        conn.execute("PRAGMA synchronous=NORMAL")
    conn.execute("PRAGMA busy_timeout=10000")
    return conn


def check_integrity(conn: sqlite3.Connection) -> None:
    """Raise JournalDamagedError unless SQLite finds the file sound. ``quick_check``
    reads every page (a truncated or overwritten journal fails it) but skips the
    index-content cross-checks of ``integrity_check``: milliseconds for a journal."""
    rows = conn.execute("PRAGMA quick_check").fetchall()
    if [r[0] for r in rows] != ["ok"]:
        raise JournalDamagedError(f"quick_check: {rows[0][0] if rows else 'no answer'}")


def upgrade(conn: sqlite3.Connection) -> None:
    """Add the columns newer fsmove keeps to a journal an older one wrote."""
    if "dst_mtime" not in {row[1] for row in conn.execute("PRAGMA table_info(files)")}:
        # NULL for the files it knows: "unknown", the skip rule of before (plan.py).
        conn.execute("ALTER TABLE files ADD COLUMN dst_mtime REAL")
    have = {row[1] for row in conn.execute("PRAGMA table_info(runs)")}
    if "note" not in have:
        conn.execute("ALTER TABLE runs ADD COLUMN note TEXT")
    if "planned" not in have:
        conn.execute("ALTER TABLE runs ADD COLUMN planned INTEGER NOT NULL DEFAULT 0")
        # Older versions recorded a run only around a real copy attempt.
        conn.execute("UPDATE runs SET planned=1")
