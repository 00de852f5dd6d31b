"""A job journal read, never written: what a dry run's skip rule asks of it.

A dry run opens no journal (it writes nothing, and must not wait on a running copy's
lock), so its plan used to skip by size and time alone: a file the real run reads again
(``tree.is_racy``: rewritten in the second its copy began) or copies again (a
``--no-mtime`` destination changed since) was "already identical" in the dry run and
copied by the real one (session 36's second pass). The view answers ``get_many`` from
the job's journal, read-only, and takes ``checked`` as nothing to record.
"""

from __future__ import annotations

import sqlite3
from collections.abc import Sequence
from pathlib import Path

from .journal import RECORD_COLUMNS, FileRecord, records_of, storable
from .journal_db import connect, newer_schema


class JournalView:
    """The records of one job's journal, read-only (``open``)."""

    def __init__(self, conn: sqlite3.Connection) -> None:
        self._conn = conn
        # An older fsmove's journal lacks columns added since (the writer adds them
        # when it opens it; a view never writes): read as NULL, "not known" (a view
        # that failed on them planned without the journal: the third pass).
        present = {row[1] for row in conn.execute("PRAGMA table_info(files)")}
        self._columns = [c if c in present else "NULL" for c in RECORD_COLUMNS]

    @classmethod
    def open(cls, path: Path, *, src: str, dst: str) -> JournalView | None:
        """The view of the journal at ``path`` when it is this pair's (``src`` and
        ``dst``: the endpoints' identities) and readable; None otherwise (no journal
        yet, another job's, a newer fsmove's, damaged: the dry run then plans by size
        and time, as the real run's first time would)."""
        if not path.is_file():
            return None
        try:
            conn = connect(path, readonly=True)
        except sqlite3.Error:
            return None
        try:
            meta = dict(conn.execute("SELECT key, value FROM meta").fetchall())
            mine = (meta.get("src"), meta.get("dst")) == (storable(src), storable(dst))
            if mine and newer_schema(conn) is None:
                return cls(conn)
        except sqlite3.Error:
            pass
        conn.close()
        return None

    def get_many(self, paths: Sequence[str]) -> dict[str, FileRecord]:
        try:
            return records_of(self._conn, paths, self._columns)
        except sqlite3.Error:
            return {}  # gone or damaged meanwhile: planned by size and time

    def checked(self, path: str, read_at: float) -> None:
        """A dry run records nothing."""

    def close(self) -> None:
        self._conn.close()
