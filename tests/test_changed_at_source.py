"""A source file rewritten at the same size soon after fsmove copied it is copied again on
the next run, and ``verify`` does not vouch for it on the journal's word.

Two stores' times are compared with a tolerance of at least a second (a destination may
keep whole seconds only). Before session 32 that tolerance also decided whether the
*source* had changed since the copy: a file rewritten at the same size 0.3 s after its
copy (an app's last write before a migration's final pass) came out "skipped: already
identical", and ``verify`` used the journal's digest for it ("Everything matched",
exit 0). The same held for a remote source whose time moved by one whole second. The
journal's source time is now compared at the source's own step: any change is one.
"""

from __future__ import annotations

import os
import time
from pathlib import Path

import pytest
from typer.testing import CliRunner

from fsmove.cli import app
from tests.copy_harness import Side, run_copy_inprocess, side_for, tree_digests
from tests.servers import RunningServer

MTIME = 1_600_000_000.25


def verify_exit(src: Side, dst: Side, journal: Path) -> int:
    """``fsmove verify`` with the copy's journal (its default: digests it recorded stand
    for the source's files whose size and time are unchanged)."""
    result = CliRunner().invoke(
        app, ["verify", src.url, dst.url, "--journal", str(journal), *src.options(),
              *dst.options(), "-q"],
        env={**src.env, **dst.env}, catch_exceptions=False)
    return result.exit_code


def rewrite(side: Side, rel: str, mtime: float) -> None:
    """Other bytes of the same length, then the time ``mtime``."""
    path = side.root / rel
    path.write_bytes(bytes(b ^ 0x5A for b in path.read_bytes()))
    os.utime(path, (mtime, mtime))


@pytest.mark.interop
def test_a_local_file_rewritten_within_the_second_is_copied_again(dst_side: Side,
                                                                  tmp_path: Path) -> None:
    src = side_for("local", None, tmp_path / "src", "src")
    src.put({"state.db": os.urandom(4096), "other.txt": b"unchanged\n"}, mtime=MTIME)
    journal = tmp_path / "job.db"
    first = run_copy_inprocess(src, dst_side, journal=journal)
    assert first.exit_code == 0, first.output
    rewrite(src, "state.db", MTIME + 0.3)
    assert verify_exit(src, dst_side, journal) == 4
    second = run_copy_inprocess(src, dst_side, journal=journal)
    assert second.exit_code == 0, second.output
    assert (second.summary["files_copied"], second.summary["files_skipped"]) == (1, 1), \
        second.output
    assert tree_digests(dst_side.root) == tree_digests(src.root)
    assert verify_exit(src, dst_side, journal) == 0
    third = run_copy_inprocess(src, dst_side, journal=journal)
    assert third.summary["files_copied"] == 0, third.output


@pytest.mark.interop
def test_a_remote_file_whose_time_moved_one_second_is_copied_again(
        vsftpd_server: RunningServer,
        fresh_subdir: object, tmp_path: Path) -> None:
    """An FTP source lists whole seconds (MDTM): one second later is a change, though
    one second is within the tolerance between the two stores."""
    server = fresh_subdir(vsftpd_server)  # type: ignore[operator]
    src = side_for("vsftpd_server", server, server.root, "src")
    src.put({"state.db": os.urandom(4096), "other.txt": b"unchanged\n"}, mtime=1_600_000_000)
    dst = side_for("local", None, tmp_path / "dst", "dst")
    (tmp_path / "dst").mkdir()
    journal = tmp_path / "job.db"
    first = run_copy_inprocess(src, dst, journal=journal)
    assert first.exit_code == 0, first.output
    rewrite(src, "state.db", 1_600_000_001)
    assert verify_exit(src, dst, journal) == 4
    second = run_copy_inprocess(src, dst, journal=journal)
    assert second.exit_code == 0, second.output
    assert second.summary["files_copied"] == 1, second.output
    assert tree_digests(dst.root) == tree_digests(src.root)


def _copied_once(tmp_path: Path, data: bytes, mtime: float) -> tuple[Side, Side, Path]:
    """A local ``a.txt`` of ``data`` and time ``mtime`` copied once with a journal:
    (source, destination, journal)."""
    src = side_for("local", None, tmp_path / "src", "src")
    src.put({"a.txt": data}, mtime=mtime)
    dst = side_for("local", None, tmp_path / "dst", "dst")
    journal = tmp_path / "job.db"
    assert run_copy_inprocess(src, dst, journal=journal).exit_code == 0
    return src, dst, journal


def _dry_plan(src: Side, dst: Side, journal: Path) -> dict[str, object]:
    """The whole plan a ``--dry-run`` with ``journal`` reports."""
    dry = run_copy_inprocess(src, dst, "--dry-run", journal=journal)
    assert dry.exit_code == 0, dry.output
    return [e for e in dry.events if e.get("type") == "plan"][-1]


def _now_whole() -> int:
    """A source time within ``tree.RACY_WINDOW`` of the copy about to run (whole seconds:
    what an FTP or SFTP source lists)."""
    return int(time.time())


@pytest.mark.interop
@pytest.mark.parametrize("source", ["vsftpd_server", "sshd_server"])
def test_a_file_rewritten_in_the_second_of_its_copy_is_copied_again(
        source: str, request: pytest.FixtureRequest,
        fresh_subdir: object, tmp_path: Path) -> None:
    """A server lists whole seconds: a file rewritten at the same size within the second
    its copy began keeps the size and time the journal recorded. Before session 36 the
    next run skipped it as "already identical" (an app's last write before a
    migration's final pass, lost). A file whose time is within a minute of its copy is
    now read again before a rerun skips it: the changed one is copied, the unchanged
    one skipped (read, not sent again), and one changed long before its copy keeps the
    old rule (size and time, as rsync: the time put back by hand is not seen)."""
    server = fresh_subdir(request.getfixturevalue(source))  # type: ignore[operator]
    src = side_for(source, server, server.root, "src")
    now = _now_whole()
    src.put({"state.db": os.urandom(4096), "same.txt": b"unchanged\n"}, mtime=now)
    src.put({"old.txt": b"written long ago\n"}, mtime=1_600_000_000)
    dst = side_for("local", None, tmp_path / "dst", "dst")
    journal = tmp_path / "job.db"
    first = run_copy_inprocess(src, dst, journal=journal)
    assert first.exit_code == 0, first.output
    rewrite(src, "state.db", now)
    rewrite(src, "old.txt", 1_600_000_000)
    # The dry run reads the journal too: it plans what the real run does (before the
    # second pass on session 36 it said "already identical" for state.db).
    planned = _dry_plan(src, dst, journal)
    assert (planned["files_to_copy"], planned["files_skipped"]) == (1, 2), planned
    second = run_copy_inprocess(src, dst, journal=journal)
    assert second.exit_code == 0, second.output
    assert (second.summary["files_copied"], second.summary["files_skipped"]) == (1, 2), \
        second.output
    assert (dst.root / "state.db").read_bytes() == (src.root / "state.db").read_bytes()
    assert (dst.root / "same.txt").read_bytes() == b"unchanged\n"
    assert (dst.root / "old.txt").read_bytes() == b"written long ago\n"  # the old rule


def test_a_racy_file_found_unchanged_is_dated_from_its_check(tmp_path: Path) -> None:
    """The check dates the record from its read, so a file is read again only while
    its time is still within ``RACY_WINDOW`` of the last read (not at every rerun
    forever). Local disk; the window is crossed by giving the source an older time,
    the journal's record its own."""
    import sqlite3

    from fsmove.transfers.tree import RACY_WINDOW

    then = time.time()
    src, dst, journal = _copied_once(tmp_path, b"kept\n", then)

    def updated() -> float:
        with sqlite3.connect(journal) as conn:
            return conn.execute("SELECT updated FROM files WHERE path='a.txt'").fetchone()[0]

    copied_at = updated()
    assert copied_at <= time.time()
    again = run_copy_inprocess(src, dst, journal=journal)
    assert again.summary["files_skipped"] == 1, again.output
    assert updated() > copied_at  # read again (racy), found the same: dated from then
    # A record older than the window: not read, not touched.
    with sqlite3.connect(journal) as conn:
        conn.execute("UPDATE files SET updated=? WHERE path='a.txt'",
                     (then + RACY_WINDOW + 5,))
    settled = updated()
    third = run_copy_inprocess(src, dst, journal=journal)
    assert third.summary["files_skipped"] == 1, third.output
    assert updated() == settled


def test_a_dry_run_reads_journals_at_odd_paths_and_of_older_fsmoves(tmp_path: Path) -> None:
    """The dry run's read-only view of the journal: at a path holding "#" or "?" (the
    read-only URI was cut there: an empty file "j" made beside it and the journal
    ignored), and a journal an older fsmove wrote, without the columns added since (the
    view failed on them and planned without it). Both plan the racy rewrite as the real
    run copies it (session 36's third pass)."""
    import shutil
    import sqlite3

    now = time.time()
    src, dst, journal = _copied_once(tmp_path, b"first version", now)
    rewrite(src, "a.txt", now)
    odd, old = tmp_path / "j#x?y.db", tmp_path / "old.db"
    shutil.copy(journal, odd)
    shutil.copy(journal, old)
    with sqlite3.connect(old) as conn:  # the files table as an older fsmove made it
        conn.execute("ALTER TABLE files RENAME TO files_now")
        conn.execute("CREATE TABLE files AS SELECT path, size, mtime, state, digest,"
                     " algorithm, bytes_done, restarts, note FROM files_now")
    for path in (odd, old):
        planned = _dry_plan(src, dst, path)
        assert planned["files_to_copy"] == 1, (path.name, planned)
    assert not (tmp_path / "j").exists()
