"""The job journal: one SQLite file per source/destination pair, the source of truth
for resume and for ``fsmove status``.

* WAL mode, ``synchronous=NORMAL``: a kill -9 loses nothing that was committed; a power
  cut may lose the last commits, which only means re-sending a little (a block is
  recorded *after* the destination acknowledged it, never before, so a lost record
  can make fsmove redo work but never skip work).
* One writer: an exclusive ``flock`` on ``<journal>.lock`` held for the whole run, so a
  second ``fsmove copy`` of the same job refuses at once instead of corrupting it.
  Readers (``fsmove status``) open the database read-only and never take the lock.
* No secrets: endpoints are stored in their display form (no password).

* Checked on open: a journal that is not a sound SQLite database (truncated, garbage, a
  torn page) fails ``PRAGMA quick_check`` and is set aside whole (``.damaged-<time>``)
  and a new one started, whatever the damage; the run says so in one line.
* ``--journal PATH`` must be a regular file or a new path: a folder, a device
  (``/dev/null``), a socket or a symlink is refused before anything is opened, so
  fsmove never chmods or renames what is not its own file.

Tables: ``meta`` (key/value), ``files`` (one row per source file with its state and
digest), ``blocks`` (per-block digests; ``acked`` = the destination holds the block),
``runs`` (one row per run, with the bytes it sent, how it ended and why, and whether
it got as far as planning: a run that failed before (a refused login) never changes
the job's state).
"""

from __future__ import annotations

import asyncio
import contextlib
import fcntl
import json
import os
import secrets
import sqlite3
import stat
import time
from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from pathlib import Path

from fsmove.verify.digest import BLOCK_SIZE

SCHEMA_VERSION = 1
#: A lazily written record (a file's done mark, run counters) is committed at most
#: this many seconds after it was written.
LAZY_COMMIT_WITHIN = 0.5

_SCHEMA = """
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
    updated REAL NOT NULL
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


class JournalLockedError(Exception):
    pass


class JournalPathError(Exception):
    """``--journal`` names something that is not fsmove's to open (a folder, a device)."""


class JournalDamagedError(sqlite3.DatabaseError):
    """The file opens but is not a sound journal (``PRAGMA quick_check`` failed)."""


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


@dataclass(frozen=True, slots=True)
class FileRecord:
    path: str
    size: int
    mtime: float | None
    state: str
    digest: str | None
    algorithm: str | None
    bytes_done: int
    restarts: int
    note: str | None


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
    base = os.environ.get("XDG_STATE_HOME") or str(Path.home() / ".local" / "state")
    return Path(base) / "fsmove" / "jobs"


def job_id(src_identity: str, dst_identity: str) -> str:
    import xxhash

    return xxhash.xxh3_64_hexdigest(f"{src_identity}\n{dst_identity}".encode())


def default_journal_path(src_identity: str, dst_identity: str) -> Path:
    return default_journal_dir() / f"{job_id(src_identity, dst_identity)}.db"


def _connect(path: Path, *, readonly: bool) -> sqlite3.Connection:
    if readonly:
        conn = sqlite3.connect(f"file:{path}?mode=ro", uri=True, timeout=10)
    else:
        conn = sqlite3.connect(path, timeout=30, isolation_level=None)
        conn.execute("PRAGMA journal_mode=WAL")
        conn.execute("PRAGMA synchronous=NORMAL")
    conn.execute("PRAGMA busy_timeout=10000")
    return conn


class Journal:
    """The writer side. Use as a context manager; it holds the job lock while open."""

    def __init__(self, path: Path, *, src: str, dst: str) -> None:
        self.path = path
        self.src = src
        self.dst = dst
        self._lock_fd: int | None = None
        self._conn: sqlite3.Connection | None = None
        self.run_id: int | None = None
        #: Where an unreadable journal found at ``path`` was moved (None: it was fine).
        self.recovered_from: Path | None = None
        self._pending_writes = 0
        self._last_commit = 0.0
        self._commit_timer: asyncio.TimerHandle | None = None

    # -- lifecycle -------------------------------------------------------------------
    def __enter__(self) -> Journal:
        check_journal_path(self.path)
        self.path.parent.mkdir(parents=True, exist_ok=True, mode=0o700)
        fd = os.open(f"{self.path}.lock", os.O_RDWR | os.O_CREAT, 0o600)
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            os.close(fd)
            raise JournalLockedError(
                f"another fsmove is running this job now (journal {self.path}); "
                "wait for it or stop it, then rerun"
            ) from None
        self._lock_fd = fd
        try:
            conn = self._open_schema()
        except sqlite3.DatabaseError:
            # Not a journal any more (a power cut right after a run, a disk error, or
            # any other file at that path): keep it aside for a post-mortem and start
            # a fresh one. Nothing is lost: files already at the destination with the
            # source's size and time are skipped as usual, partial ones start over.
            aside = self.path.with_name(f"{self.path.name}.damaged-{int(time.time())}")
            for suffix in ("", "-wal", "-shm"):
                src = Path(f"{self.path}{suffix}")
                if src.is_file() and not src.is_symlink():
                    src.rename(f"{aside}{suffix}")
            self.recovered_from = aside
            conn = self._open_schema()
        self._conn = conn
        stored = dict(conn.execute("SELECT key, value FROM meta").fetchall())
        if not stored:
            self._set_meta(
                {
                    "schema": str(SCHEMA_VERSION),
                    "src": self.src,
                    "dst": self.dst,
                    "created": str(time.time()),
                }
            )
        elif (stored.get("src"), stored.get("dst")) != (self.src, self.dst):
            raise JournalLockedError(
                f"journal {self.path} belongs to another job "
                f"({stored.get('src')} -> {stored.get('dst')}); choose another --journal"
            )
        # A run left 'running' by a killed process is over.
        conn.execute("UPDATE runs SET status='interrupted' WHERE status='running'")
        return self

    def _open_schema(self) -> sqlite3.Connection:
        conn = _connect(self.path, readonly=False)
        try:
            os.chmod(self.path, 0o600)
            _check_integrity(conn)
            conn.executescript(_SCHEMA)
            _upgrade(conn)
            conn.execute("SELECT count(*) FROM files").fetchone()
        except BaseException:
            conn.close()
            raise
        return conn

    def __exit__(self, *exc: object) -> None:
        self.close()

    def close(self) -> None:
        if self._commit_timer is not None:
            self._commit_timer.cancel()
            self._commit_timer = None
        if self._conn is not None:
            with contextlib.suppress(sqlite3.Error):
                self._commit()
                # The checkpoint at close is not forced to disk: on ext4 that fsync
                # waits for every file the copy itself just wrote (measured: 1.5 s
                # after 1 GiB). Every record is already in the WAL; a power cut in the
                # next seconds can at worst damage the journal, which the next run
                # sets aside (see __enter__), losing only resume state.
                self._conn.execute("PRAGMA synchronous=OFF")
                self._conn.close()
            self._conn = None
        if self._lock_fd is not None:
            os.close(self._lock_fd)
            self._lock_fd = None

    @property
    def conn(self) -> sqlite3.Connection:
        if self._conn is None:
            raise RuntimeError("journal is not open")
        return self._conn

    def _set_meta(self, items: dict[str, str]) -> None:
        self.conn.executemany(
            "INSERT OR REPLACE INTO meta(key, value) VALUES (?, ?)", list(items.items())
        )

    def set_options(self, options: dict[str, object]) -> None:
        self._set_meta({"options": json.dumps(options, sort_keys=True)})

    def temp_key(self) -> str:
        """This job's secret for naming its temporary files (``tree.TempNames``): made
        on first use and kept for the job's life, so a rerun finds its partial files."""
        row = self.conn.execute("SELECT value FROM meta WHERE key='temp_key'").fetchone()
        if row is not None and row[0]:
            return str(row[0])
        key = secrets.token_hex(16)
        self._set_meta({"temp_key": key})
        return key

    # -- batching --------------------------------------------------------------------
    def _begin(self) -> None:
        if not self.conn.in_transaction:
            self.conn.execute("BEGIN")

    def _wrote(self) -> None:
        """Commit now. In WAL mode with synchronous=NORMAL a commit costs no fsync, and
        committing every record means a kill -9 loses none: resume then re-sends only
        what was in flight, never what the journal could have known."""
        self._commit()

    def _wrote_lazily(self) -> None:
        """Commit at most every ``LAZY_COMMIT_WITHIN`` seconds, and at the latest that
        long after this write even if nothing else is written meanwhile (a timer on
        the running event loop): a file that finished is in the journal within a
        bounded time, also when the copy then stalls (``fsmove status`` and a kill
        see it)."""
        self._pending_writes += 1
        if time.monotonic() - self._last_commit > LAZY_COMMIT_WITHIN:
            self._commit()
        elif self._commit_timer is None:
            try:
                loop = asyncio.get_running_loop()
            except RuntimeError:
                return  # not on an event loop: the next write or close commits
            self._commit_timer = loop.call_later(LAZY_COMMIT_WITHIN, self._timed_commit)

    def _timed_commit(self) -> None:
        self._commit_timer = None
        if self._conn is not None and self._pending_writes:
            with contextlib.suppress(sqlite3.Error):
                self._commit()

    def _commit(self) -> None:
        if self.conn.in_transaction:
            self.conn.execute("COMMIT")
        self._pending_writes = 0
        self._last_commit = time.monotonic()

    def flush(self) -> None:
        self._commit()

    # -- runs ------------------------------------------------------------------------
    def start_run(self) -> int:
        self._commit()
        cur = self.conn.execute(
            "INSERT INTO runs(started, status, pid, heartbeat) VALUES (?, 'running', ?, ?)",
            (time.time(), os.getpid(), time.time()),
        )
        self.run_id = int(cur.lastrowid or 0)
        return self.run_id

    def run_progress(self, *, bytes_sent: int, bytes_resent: int, files_done: int,
                     files_failed: int) -> None:
        self._begin()
        self.conn.execute(
            "UPDATE runs SET bytes_sent=?, bytes_resent=?, files_done=?, files_failed=?,"
            " heartbeat=? WHERE id=?",
            (bytes_sent, bytes_resent, files_done, files_failed, time.time(), self.run_id),
        )
        self._wrote_lazily()

    def finish_run(self, status: str, *, note: str | None = None) -> None:
        """End this run: ``ok``, ``partial``, ``interrupted`` or ``failed`` (with why)."""
        self._begin()
        self.conn.execute(
            "UPDATE runs SET status=?, note=?, finished=?, heartbeat=? WHERE id=?",
            (status, note, time.time(), time.time(), self.run_id),
        )
        self._commit()

    # -- files -----------------------------------------------------------------------
    def get(self, path: str) -> FileRecord | None:
        row = self.conn.execute(
            "SELECT path, size, mtime, state, digest, algorithm, bytes_done, restarts, note"
            " FROM files WHERE path=?",
            (path,),
        ).fetchone()
        return FileRecord(*row) if row else None

    def all_files(self) -> Iterator[FileRecord]:
        cur = self.conn.execute(
            "SELECT path, size, mtime, state, digest, algorithm, bytes_done, restarts, note"
            " FROM files"
        )
        for row in cur:
            yield FileRecord(*row)

    def plan(self, entries: Iterable[tuple[str, int, float | None, str]]) -> None:
        """Record the files of this run: (path, size, mtime, state). A file whose source
        size or mtime changed since the journal saw it loses its blocks (restart)."""
        self._commit()
        self._begin()
        if self.run_id is not None:
            self.conn.execute("UPDATE runs SET planned=1 WHERE id=?", (self.run_id,))
        now = time.time()
        for path, size, mtime, state in entries:
            row = self.conn.execute(
                "SELECT size, mtime, state FROM files WHERE path=?", (path,)
            ).fetchone()
            if row is None:
                self.conn.execute(
                    "INSERT INTO files(path, size, mtime, state, updated) VALUES (?,?,?,?,?)",
                    (path, size, mtime, state, now),
                )
            elif row[2] in ("partial", "pending", "failed") and state == "pending":
                continue  # keep what resume needs; the engine checks size/mtime
            elif row[2] == "done" and state == "skipped" and (row[0], row[1]) == (size, mtime):
                continue  # copied by an earlier run, still identical: keep its digest
            else:
                self.conn.execute(
                    "UPDATE files SET size=?, mtime=?, state=?, updated=? WHERE path=?",
                    (size, mtime, state, now, path),
                )
        self._commit()

    def set_state(self, path: str, state: str, *, note: str | None = None) -> None:
        self._begin()
        self.conn.execute(
            "UPDATE files SET state=?, note=?, updated=? WHERE path=?",
            (state, note, time.time(), path),
        )
        self._wrote()

    def restart(self, path: str, *, size: int, mtime: float | None, note: str) -> None:
        """Forget a file's progress (source changed, destination could not resume)."""
        self._begin()
        self.conn.execute("DELETE FROM blocks WHERE path=?", (path,))
        self.conn.execute("DELETE FROM partials WHERE path=?", (path,))
        self.conn.execute(
            "UPDATE files SET size=?, mtime=?, state='pending', bytes_done=0, digest=NULL,"
            " restarts=restarts+1, note=?, updated=? WHERE path=?",
            (size, mtime, note, time.time(), path),
        )
        self._commit()

    def record_block(self, path: str, idx: int, digest: bytes, *, acked: bool,
                     bytes_done: int | None = None) -> None:
        self._begin()
        self.conn.execute(
            "INSERT OR REPLACE INTO blocks(path, idx, digest, acked) VALUES (?,?,?,?)",
            (path, idx, digest, int(acked)),
        )
        if acked:
            self.conn.execute("DELETE FROM partials WHERE path=? AND idx=?", (path, idx))
        if bytes_done is not None:
            self.conn.execute(
                "UPDATE files SET state='partial', bytes_done=?, updated=? WHERE path=?",
                (bytes_done, time.time(), path),
            )
        self._wrote()

    def record_partial(self, path: str, idx: int, nbytes: int) -> None:
        """The first ``nbytes`` of block ``idx`` are acknowledged at the destination."""
        self._begin()
        self.conn.execute(
            "INSERT OR REPLACE INTO partials(path, idx, nbytes) VALUES (?,?,?)",
            (path, idx, nbytes),
        )
        self.conn.execute(
            "UPDATE files SET state='partial', bytes_done=MAX(bytes_done, ?), updated=?"
            " WHERE path=?",
            (idx * BLOCK_SIZE + nbytes, time.time(), path),
        )
        self._wrote()

    def partials(self, path: str) -> dict[int, int]:
        return dict(
            self.conn.execute("SELECT idx, nbytes FROM partials WHERE path=?", (path,))
        )

    def blocks(self, path: str) -> dict[int, tuple[bytes, bool]]:
        return {
            idx: (bytes(d), bool(a))
            for idx, d, a in self.conn.execute(
                "SELECT idx, digest, acked FROM blocks WHERE path=?", (path,)
            )
        }

    def drop_blocks_from(self, path: str, idx: int) -> None:
        self._begin()
        self.conn.execute("DELETE FROM blocks WHERE path=? AND idx>=?", (path, idx))
        self._wrote()

    def mark_partial(self, path: str, bytes_done: int) -> None:
        self._begin()
        self.conn.execute(
            "UPDATE files SET state='partial', bytes_done=?, updated=? WHERE path=?",
            (bytes_done, time.time(), path),
        )
        self._wrote()

    def mark_done(self, path: str, *, digest: str | None, algorithm: str | None,
                  size: int, mtime: float | None) -> None:
        self._begin()
        self.conn.execute(
            "UPDATE files SET state='done', digest=?, algorithm=?, bytes_done=?, size=?,"
            " mtime=?, note=NULL, updated=? WHERE path=?",
            (digest, algorithm, size, size, mtime, time.time(), path),
        )
        self.conn.execute("DELETE FROM blocks WHERE path=?", (path,))
        self.conn.execute("DELETE FROM partials WHERE path=?", (path,))
        # Lazily: a done mark lost to a kill -9 costs nothing, the file is in place with
        # the source's size and time (the next run skips it), and a commit per small
        # file was a tenth of the client's time.
        self._wrote_lazily()

    def remove_file(self, path: str) -> None:
        self._begin()
        self.conn.execute("DELETE FROM files WHERE path=?", (path,))
        self.conn.execute("DELETE FROM blocks WHERE path=?", (path,))
        self.conn.execute("DELETE FROM partials WHERE path=?", (path,))
        # Lazily: a done mark lost to a kill -9 costs nothing, the file is in place with
        # the source's size and time (the next run skips it), and a commit per small
        # file was a tenth of the client's time.
        self._wrote_lazily()


# -- read side ---------------------------------------------------------------------------


def _check_integrity(conn: sqlite3.Connection) -> None:
    """Raise JournalDamagedError unless SQLite finds the file sound. ``quick_check``
    reads every page (a truncated or overwritten journal fails it) but skips the
    index-content cross-checks of ``integrity_check``: milliseconds for a journal."""
    rows = conn.execute("PRAGMA quick_check").fetchall()
    if [r[0] for r in rows] != ["ok"]:
        raise JournalDamagedError(f"quick_check: {rows[0][0] if rows else 'no answer'}")


def _upgrade(conn: sqlite3.Connection) -> None:
    """Add the columns newer fsmove keeps to a journal an older one wrote."""
    have = {row[1] for row in conn.execute("PRAGMA table_info(runs)")}
    if "note" not in have:
        conn.execute("ALTER TABLE runs ADD COLUMN note TEXT")
    if "planned" not in have:
        conn.execute("ALTER TABLE runs ADD COLUMN planned INTEGER NOT NULL DEFAULT 0")
        # Older versions recorded a run only around a real copy attempt.
        conn.execute("UPDATE runs SET planned=1")


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
    conn = _connect(path, readonly=True)
    try:
        _check_integrity(conn)
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
        options = {}
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
    conn = _connect(path, readonly=True)
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
    return sorted(d.glob("*.db"), key=lambda p: p.stat().st_mtime, reverse=True)


def digest_lookup(path: Path) -> dict[str, tuple[int, float | None, str, str]]:
    """path -> (size, mtime, digest, algorithm) of every file a copy finished (read-only)."""
    if not path.exists():
        return {}
    conn = _connect(path, readonly=True)
    try:
        return {
            p: (s, m, d, a)
            for p, s, m, d, a in conn.execute(
                "SELECT path, size, mtime, digest, algorithm FROM files"
                " WHERE state='done' AND digest IS NOT NULL"
            )
        }
    finally:
        conn.close()
