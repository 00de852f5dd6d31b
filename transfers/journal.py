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

The schema and how the file is opened and checked: ``journal_db.py``. Reading a job
without taking its lock (status, listing, digests for verify): ``jobs.py``.
"""
from __future__ import annotations

import asyncio
import contextlib
import fcntl
import json
import os
import secrets
import sqlite3
import time
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from pathlib import Path

from fsmove.verify.digest import BLOCK_SIZE

from .journal_db import (
    SCHEMA,
    SCHEMA_VERSION,
    check_integrity,
    check_journal_path,
    check_schema,
    connect,
    upgrade,
)

#: A lazily written record (a file's done mark, run counters) is committed at most
#: this many seconds after it was written.
LAZY_COMMIT_WITHIN = 0.5
#: Paths asked in one ``get_many`` query (SQLite's bound on parameters is 999 in old
#: builds).
_PATHS_PER_QUERY = 500


#: A file's acknowledged bytes from its blocks and partial blocks (at most its size).
_ACKED_BYTES = (
    "UPDATE files SET state='partial', bytes_done=MIN(size,"
    " ? * (SELECT COUNT(*) FROM blocks WHERE path=? AND acked=1)"
    " + (SELECT COALESCE(SUM(nbytes), 0) FROM partials WHERE path=?)), updated=?"
    " WHERE path=?"
)


def storable(text: str) -> str:
    """``text`` as SQLite can keep it: a local root whose name is not UTF-8 (its bytes
    arrive as surrogates, ``src\udce9``) is kept as ``src\xe9``, the same for every
    run of the job (an internal error before session 33)."""
    return text.encode("utf-8", "surrogateescape").decode("utf-8", "backslashreplace")


def _file_id(path: Path) -> tuple[int, int]:
    st = os.stat(path)
    return st.st_dev, st.st_ino


class JournalLockedError(Exception):
    pass


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
    #: The destination's mtime when this job last left the file identical there (its
    #: own copy with the time kept, or a skip: the time listed then); None: not known.
    dst_mtime: float | None = None
    #: When the record was last written (a done file: when its placing read began,
    #: ``mark_done``); only ``get_many`` reads it.
    updated: float | None = None



#: The ``files`` columns a ``FileRecord`` is made of, in its fields' order.
RECORD_COLUMNS = ("path", "size", "mtime", "state", "digest", "algorithm", "bytes_done",
                  "restarts", "note", "dst_mtime", "updated")


def records_of(conn: sqlite3.Connection, paths: Sequence[str],
               columns: Sequence[str] = RECORD_COLUMNS) -> dict[str, FileRecord]:
    """The records of ``paths`` that exist in the journal ``conn`` reads, by path (a few
    queries for a folder, not one a file): the writer's ``get_many`` and a dry run's
    read-only view (``journal_view.py``, which passes ``NULL`` for a column an older
    journal lacks)."""
    found: dict[str, FileRecord] = {}
    selected = ", ".join(columns)
    for i in range(0, len(paths), _PATHS_PER_QUERY):
        chunk = paths[i:i + _PATHS_PER_QUERY]
        for row in conn.execute(
            f"SELECT {selected} FROM files WHERE path IN"
            f" ({','.join('?' * len(chunk))})",
            chunk,
        ):
            found[row[0]] = FileRecord(*row)
    return found


class Journal:
    """The writer side. Use as a context manager; it holds the job lock while open."""

    def __init__(self, path: Path, *, src: str, dst: str) -> None:
        self.path = path
        self.src = storable(src)
        self.dst = storable(dst)
        self._lock_fd: int | None = None
        self._conn: sqlite3.Connection | None = None
        self.run_id: int | None = None
        #: Where an unreadable journal found at ``path`` was moved (None: it was fine).
        self.recovered_from: Path | None = None
        self._pending_writes = 0
        self._last_commit = 0.0
        #: (device, inode) of the journal file this writer has open.
        self._file_id: tuple[int, int] | None = None
        #: What happened to the file under a running job (``keep_in_place``), said
        #: once the run is over: "put back", "replaced" by another file (the run went
        #: on in ``set_aside``), or "lost" (neither could be done).
        self.moved_under_us: str | None = None
        self.set_aside: Path | None = None
        self._side_files: dict[str, tuple[int, int]] = {}
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
            # In one transaction: a first run stopped half-way through these rows left a
            # journal "of another job" (no src) that every rerun refused (session 33).
            self._begin()
            self._set_meta(
                {
                    "schema": str(SCHEMA_VERSION),
                    "src": self.src,
                    "dst": self.dst,
                    "created": str(time.time()),
                }
            )
            self._commit()
        elif (stored.get("src"), stored.get("dst")) != (self.src, self.dst):
            raise JournalLockedError(
                f"journal {self.path} belongs to another job "
                f"({stored.get('src')} -> {stored.get('dst')}); choose another --journal"
            )
        # A run left 'running' by a killed process is over.
        conn.execute("UPDATE runs SET status='interrupted' WHERE status='running'")
        self._file_id = _file_id(self.path)
        self._remember_side_files()
        return self

    def keep_in_place(self) -> None:
        """Put the journal back where it belongs if it was removed under the running
        job (``rm -rf ~/.local/state/fsmove`` during an overnight copy): SQLite goes on
        writing into the removed file, so the run's progress, the job's temporary-file
        key and its options would vanish with the process, and an interruption after
        that could not be resumed (the partial files left as strangers' files). The
        open database is copied back (SQLite's backup API) and the lock taken again.
        A file that another process put at that path meanwhile is left alone: the run
        goes on in a copy of its own beside it (``set_aside``), said once the run is
        over. Checked again after each put-back (removed twice, the second removal
        went unseen: session 33). Called about once a second; one ``stat``."""
        if self._conn is None or self._file_id is None or self.set_aside is not None:
            return
        try:
            found = _file_id(self.path)
        except OSError:
            found = None
        if found == self._file_id:
            return
        try:
            if found is None:
                self._put_back()
                self.moved_under_us = "put back"
                return
            self._go_aside()
        except (OSError, sqlite3.Error):
            self.moved_under_us = "lost"  # could do neither: said after the run
            self._file_id = None
            return
        self.moved_under_us = "replaced"

    def _go_aside(self) -> None:
        """Another file is at the journal's path: go on in a copy beside it. The open
        connection's WAL (``<path>-wal``, by name) would otherwise pair with that file:
        a reader saw this job's rows in another job's journal, or "database disk image
        is malformed" (session 33). SQLite keeps the WAL of a moved database on close
        (no checkpoint): it is removed here, by its inode, as the -shm."""
        self._commit()
        aside = self.path.with_name(f"{self.path.name}.set-aside-{int(time.time())}")
        self._copy_to(aside)
        old = self.conn
        self._conn = connect(aside, readonly=False)
        with contextlib.suppress(sqlite3.Error):
            old.close()
        self._drop_own_side_files()
        self.set_aside = aside
        self._file_id = _file_id(aside)

    def _copy_to(self, target: Path) -> None:
        """The open database, whole, into a new private file ``target`` (SQLite's
        backup API: consistent while this writer holds the job)."""
        copy = sqlite3.connect(target)
        try:
            self.conn.backup(copy)
        finally:
            copy.close()
        os.chmod(target, 0o600)

    def _remember_side_files(self) -> None:
        """The -wal and -shm files this writer's connection uses, by inode."""
        self._side_files = {}
        for suffix in ("-wal", "-shm"):
            with contextlib.suppress(OSError):
                self._side_files[suffix] = _file_id(Path(f"{self.path}{suffix}"))

    def _drop_own_side_files(self) -> None:
        """Remove this writer's -wal and -shm at the journal's path (only if they are
        still the ones it used: never another file's)."""
        for suffix, known in self._side_files.items():
            side = Path(f"{self.path}{suffix}")
            with contextlib.suppress(OSError):
                if _file_id(side) == known:
                    side.unlink()
        self._side_files = {}

    def _put_back(self) -> None:
        self._commit()
        self.path.parent.mkdir(parents=True, exist_ok=True, mode=0o700)
        lock = self._lock_again()
        try:
            placed, file_id = self._placed_copy()
        except BaseException:
            if lock != self._lock_fd:
                os.close(lock)
            raise
        old, self._conn = self.conn, placed
        with contextlib.suppress(sqlite3.Error):
            # SQLite keeps the WAL of a database whose path names another file now
            # (no checkpoint, no deletion on close): the copy's own WAL is safe.
            old.close()
        if self._lock_fd is not None and self._lock_fd != lock:
            os.close(self._lock_fd)
        self._lock_fd = lock
        # The copy's own identity, taken before it was put at the path: removed again
        # at once, a stat of the path here raised, and the run stopped looking after
        # its journal ("lost"; a flaky test, session 34).
        self._file_id = file_id
        self._remember_side_files()

    def _placed_copy(self) -> tuple[sqlite3.Connection, tuple[int, int]]:
        """A copy of the open database put at the journal's path, opened there and
        checked to be that copy. Removed again right after it was put there, the
        writer opened the empty database SQLite made at the path: "no such table:
        runs" (session 34, a flaky test). The open database (this writer's, removed)
        stays open until its copy is in place: it is the only source."""
        want = self.conn.execute("SELECT value FROM meta WHERE key='created'").fetchone()
        fresh = self.path.with_name(f"{self.path.name}.put-back-{os.getpid()}")
        for _attempt in range(3):
            try:
                self._copy_to(fresh)
                file_id = _file_id(fresh)
                os.rename(fresh, self.path)
            except BaseException:
                with contextlib.suppress(OSError):
                    os.unlink(fresh)
                raise
            # The removed database's -wal and -shm, by inode: never paired with the
            # copy (its connection keeps them open until it is closed).
            self._drop_own_side_files()
            try:
                placed = connect(self.path, readonly=False, existing=True)
            except sqlite3.Error:
                continue  # removed again already
            try:
                if placed.execute("SELECT value FROM meta WHERE key='created'"
                                  ).fetchone() == want:
                    return placed, file_id
            except sqlite3.Error:
                pass
            placed.close()
        raise OSError(f"the journal {self.path} kept being removed or replaced")

    def _lock_again(self) -> int:
        """The job's lock on the file at its path: the one held if it is still there,
        else a new lock file locked (a flock on a second opening of the held file would
        conflict with our own)."""
        path = f"{self.path}.lock"
        if self._lock_fd is not None:
            held = os.fstat(self._lock_fd)
            with contextlib.suppress(FileNotFoundError):
                if _file_id(Path(path)) == (held.st_dev, held.st_ino):
                    return self._lock_fd
        lock = os.open(path, os.O_RDWR | os.O_CREAT, 0o600)
        try:
            fcntl.flock(lock, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            os.close(lock)
            raise OSError("another fsmove holds the job's lock now") from None
        return lock

    def _open_schema(self) -> sqlite3.Connection:
        conn = connect(self.path, readonly=False)
        try:
            os.chmod(self.path, 0o600)
            check_integrity(conn)
            check_schema(conn, self.path)
            conn.executescript(SCHEMA)
            upgrade(conn)
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

    def last_run(self) -> tuple[int, str, str | None] | None:
        """(id, status, note) of the newest run of this job, if any."""
        row = self.conn.execute(
            "SELECT id, status, note FROM runs ORDER BY id DESC LIMIT 1").fetchone()
        return (int(row[0]), str(row[1]), row[2]) if row else None

    def set_run_status(self, run_id: int, status: str, *, note: str | None) -> None:
        """Record another outcome for an ended run (``copy --verify``: the copy is over,
        its verification is what the job is waiting for)."""
        self._begin()
        self.conn.execute("UPDATE runs SET status=?, note=?, heartbeat=? WHERE id=?",
                          (status, note, time.time(), run_id))
        self._commit()

    # -- files -----------------------------------------------------------------------
    def get(self, path: str) -> FileRecord | None:
        row = self.conn.execute(
            "SELECT path, size, mtime, state, digest, algorithm, bytes_done, restarts, note,"
            " dst_mtime FROM files WHERE path=?",
            (path,),
        ).fetchone()
        return FileRecord(*row) if row else None

    def get_many(self, paths: Sequence[str]) -> dict[str, FileRecord]:
        """The records of ``paths`` that exist, by path (``records_of``)."""
        return records_of(self.conn, paths)

    def get_with_progress(self, path: str) -> tuple[FileRecord, bool] | None:
        """The file's record and whether any block or partial block of it is recorded,
        in one query (a fresh file, the common case, needs no other)."""
        row = self.conn.execute(
            "SELECT path, size, mtime, state, digest, algorithm, bytes_done, restarts, note,"
            " dst_mtime, EXISTS(SELECT 1 FROM blocks WHERE blocks.path=files.path)"
            " OR EXISTS(SELECT 1 FROM partials WHERE partials.path=files.path)"
            " FROM files WHERE path=?",
            (path,),
        ).fetchone()
        return (FileRecord(*row[:-1]), bool(row[-1])) if row else None

    def plan(self, entries: Iterable[tuple[str, int, float | None, str]
                                     | tuple[str, int, float | None, str, float | None]],
             ) -> None:
        """Record the files of this run: (path, size, mtime, state[, dst_mtime]). A file
        whose source size or mtime changed since the journal saw it loses its blocks
        (restart). A skipped file's ``dst_mtime`` is its time at the destination now."""
        self._commit()
        self._begin()
        if self.run_id is not None:
            self.conn.execute("UPDATE runs SET planned=1 WHERE id=?", (self.run_id,))
        now = time.time()
        for path, size, mtime, state, *more in entries:
            dst_mtime = more[0] if more else None
            row = self.conn.execute(
                "SELECT size, mtime, state, dst_mtime FROM files WHERE path=?", (path,)
            ).fetchone()
            if row is None:
                self.conn.execute(
                    "INSERT INTO files(path, size, mtime, state, updated, dst_mtime)"
                    " VALUES (?,?,?,?,?,?)",
                    (path, size, mtime, state, now, dst_mtime),
                )
            elif row[2] in ("partial", "pending", "failed") and state == "pending":
                continue  # keep what resume needs; the engine checks size/mtime
            elif row[2] == "done" and state == "skipped" and (row[0], row[1]) == (size, mtime):
                # Copied by an earlier run, still identical: keep its digest.
                if dst_mtime is not None and row[3] != dst_mtime:
                    self.conn.execute("UPDATE files SET dst_mtime=? WHERE path=?",
                                      (dst_mtime, path))
            else:
                self.conn.execute(
                    "UPDATE files SET size=?, mtime=?, state=?, updated=?, dst_mtime=?"
                    " WHERE path=?",
                    (size, mtime, state, now, dst_mtime, path),
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
        if acked and bytes_done is not None:
            # What the destination holds, not the end of the furthest block: parallel
            # segments ack blocks far apart (before session 32 `fsmove status` showed
            # a killed copy at 51 % with 12 % acknowledged).
            self.conn.execute(_ACKED_BYTES, (BLOCK_SIZE, path, path, time.time(), path))
        elif bytes_done is not None:  # one stream (FTP): its bytes sent, contiguous
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
        self.conn.execute(_ACKED_BYTES, (BLOCK_SIZE, path, path, time.time(), path))
        self._wrote()

    def partly_sent_in(self, folder: str) -> list[str]:
        """The files directly in ``folder`` ("" for the root) that a run left partly
        sent (their temporary file may hold bytes a later run resumes from)."""
        if folder:
            low, high = folder + "/", folder + "0"  # "0" follows "/": the folder's range
            rows = self.conn.execute(
                "SELECT path FROM files WHERE state='partial' AND path >= ? AND path < ?",
                (low, high))
        else:
            low = ""
            rows = self.conn.execute("SELECT path FROM files WHERE state='partial'")
        return [p for (p,) in rows if "/" not in p[len(low):]]

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

    def mark_done(self, path: str, *, digest: str | None, algorithm: str | None,
                  size: int, mtime: float | None, dst_mtime: float | None = None,
                  read_at: float | None = None) -> None:
        """The file is in place, whole. ``dst_mtime``: the time it was given there (None:
        not set, or not known). ``read_at``: when the attempt that placed it began
        reading the source (``time.time()``; None: now). It is the record's
        ``updated``, the moment a later run or verify compares with the source's time
        (``tree.is_racy``): a file of hours whose read began in the second it was
        written is racy, however long after its read ended."""
        self._begin()
        self.conn.execute(
            "UPDATE files SET state='done', digest=?, algorithm=?, bytes_done=?, size=?,"
            " mtime=?, note=NULL, updated=?, dst_mtime=? WHERE path=?",
            (digest, algorithm, size, size, mtime,
             time.time() if read_at is None else read_at, dst_mtime, path),
        )
        self.conn.execute("DELETE FROM blocks WHERE path=?", (path,))
        self.conn.execute("DELETE FROM partials WHERE path=?", (path,))
        # Lazily: a done mark lost to a kill -9 costs nothing, the file is in place with
        # the source's size and time (the next run skips it), and a commit per small
        # file was a tenth of the client's time.
        self._wrote_lazily()

    def checked(self, path: str, read_at: float) -> None:
        """A racy file (``tree.is_racy``) was read again from ``read_at`` on and found
        to hold what the record says: its record now dates from that read."""
        self._begin()
        self.conn.execute("UPDATE files SET updated=? WHERE path=?", (read_at, path))
        self._wrote_lazily()

    def remove_file(self, path: str) -> None:
        self._begin()
        self.conn.execute("DELETE FROM files WHERE path=?", (path,))
        self.conn.execute("DELETE FROM blocks WHERE path=?", (path,))
        self.conn.execute("DELETE FROM partials WHERE path=?", (path,))
        # Lazily, as a done mark: a deletion lost to a kill -9 is only a row for a file
        # that is gone (the next run's plan sees the destination as it is).
        self._wrote_lazily()
