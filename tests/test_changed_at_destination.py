"""A file changed at the destination after fsmove copied it, to the same size, is copied
again on the next run, never skipped as "already identical" on the journal's word.

Before session 31 the skip rule for a destination that cannot keep mtimes ("the journal
says this job copied it from a source of this size and mtime") applied whatever the
destination's time said: `b.txt` rewritten at the destination with other bytes of the
same length and another mtime came out "skipped: 1 file already identical". Now the
journal keeps the destination's mtime as fsmove left it (the time it gave the file, or
the time listed when a run skipped it) and the rule holds only while that time holds.
"""

from __future__ import annotations

import os
import sqlite3
from contextlib import closing
from pathlib import Path

import pytest

from tests.copy_harness import Side, run_copy_inprocess, side_for, tree_digests

MTIME = 1_600_000_000.0
OTHER_TIME = 1_000_000_000.0  # 2001


def rewrite_same_size(dst: Side, rel: str, *, mtime: float | None) -> None:
    """Other bytes of the same length at the destination (as the server's account)."""
    path = dst.root / rel
    data = path.read_bytes()
    path.write_bytes(bytes(b ^ 0xFF for b in data))
    if mtime is not None:
        os.utime(path, (mtime, mtime))


def copied(result_summary: dict[str, object]) -> int:
    return int(result_summary["files_copied"])  # type: ignore[call-overload]


@pytest.mark.interop
def test_a_file_rewritten_at_the_destination_is_copied_again(dst_side: Side,
                                                             tmp_path: Path) -> None:
    src = side_for("local", None, tmp_path / "src", "src")
    src.put({"a.txt": b"hello\n", "b.txt": b"world\n", "c/d.bin": os.urandom(3000)},
            mtime=MTIME)
    journal = tmp_path / "job.db"
    first = run_copy_inprocess(src, dst_side, journal=journal)
    assert first.exit_code == 0, first.output
    rewrite_same_size(dst_side, "b.txt", mtime=OTHER_TIME)
    second = run_copy_inprocess(src, dst_side, journal=journal)
    assert second.exit_code == 0, second.output
    assert copied(second.summary) == 1, second.output
    assert tree_digests(dst_side.root) == tree_digests(src.root)
    third = run_copy_inprocess(src, dst_side, journal=journal)
    assert (copied(third.summary), third.summary["files_skipped"]) == (0, 3), third.output


@pytest.mark.interop
def test_without_times_a_change_after_a_skip_is_seen(dst_side: Side, tmp_path: Path) -> None:
    """``--no-mtime`` (as on a destination that cannot set times): the first rerun skips
    on the journal's word and records the times it listed; a change after that is seen.
    (A change between the copy and the first rerun cannot be: fsmove never learnt the
    time the server gave the file. ``--checksum`` reads both sides.)"""
    src = side_for("local", None, tmp_path / "src", "src")
    src.put({"a.txt": b"hello\n", "b.txt": b"world\n"}, mtime=MTIME)
    journal = tmp_path / "job.db"
    runs = [run_copy_inprocess(src, dst_side, "--no-mtime", journal=journal)
            for _ in range(2)]
    assert [copied(r.summary) for r in runs] == [2, 0], runs[-1].output
    with closing(sqlite3.connect(journal)) as db:
        seen = dict(db.execute("SELECT path, dst_mtime FROM files"))
    assert seen["b.txt"] is not None
    rewrite_same_size(dst_side, "b.txt", mtime=OTHER_TIME)
    after = run_copy_inprocess(src, dst_side, "--no-mtime", journal=journal)
    assert after.exit_code == 0, after.output
    assert copied(after.summary) == 1, after.output
    assert tree_digests(dst_side.root) == tree_digests(src.root)


def test_a_journal_from_before_the_column_is_upgraded_and_still_skips(tmp_path: Path) -> None:
    """A journal written before ``dst_mtime`` existed: the column is added on open, its
    files' times are unknown, and the old rule (the journal's word) still skips them."""
    src = side_for("local", None, tmp_path / "src", "src")
    dst = side_for("local", None, tmp_path / "dst", "dst")
    src.put({"a.txt": b"hello\n"}, mtime=MTIME)
    journal = tmp_path / "job.db"
    assert run_copy_inprocess(src, dst, "--no-mtime", journal=journal).exit_code == 0
    with closing(sqlite3.connect(journal)) as db:
        db.execute("ALTER TABLE files DROP COLUMN dst_mtime")
        db.commit()
    again = run_copy_inprocess(src, dst, "--no-mtime", journal=journal)
    assert again.exit_code == 0, again.output
    assert (copied(again.summary), again.summary["files_skipped"]) == (0, 1), again.output


def test_a_time_the_destination_rounded_is_not_a_change(tmp_path: Path) -> None:
    """A FAT32 disk keeps times to 2 s: the time fsmove gave reads back up to 2 s off.
    That is no rewrite (a rewrite stamps the time of the rewrite): the rerun skips."""
    src = side_for("local", None, tmp_path / "src", "src")
    dst = side_for("local", None, tmp_path / "dst", "dst")
    src.put({"a.txt": b"hello\n"}, mtime=MTIME + 0.3)
    journal = tmp_path / "job.db"
    assert run_copy_inprocess(src, dst, journal=journal).exit_code == 0
    os.utime(dst.root / "a.txt", (MTIME + 2.0, MTIME + 2.0))  # FAT's rounding up
    again = run_copy_inprocess(src, dst, journal=journal)
    assert (copied(again.summary), again.summary["files_skipped"]) == (0, 1), again.output
