"""benchmarks/tree_state.py on a real folder: counting files, and telling a file the
rerun of a resume cell replaced or rewrote from one it left alone."""

from __future__ import annotations

import dataclasses
import os
from pathlib import Path

from benchmarks.measure import Throttled
from benchmarks.tree_state import count_files, rewrites, settled_snapshot, snapshot


def make_tree(root: Path) -> None:
    for rel in ("a/1.dat", "a/b/2.dat", "a/b/3.dat", "c/4.dat"):
        path = root / rel
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_bytes(rel.encode())
    (root / "empty").mkdir()


def test_count_and_snapshot_see_every_regular_file(tmp_path: Path):
    make_tree(tmp_path)
    os.symlink(tmp_path / "a", tmp_path / "link")  # not followed, not counted
    assert count_files(tmp_path) == 4
    snap = settled_snapshot(tmp_path)
    assert sorted(snap) == ["a/1.dat", "a/b/2.dat", "a/b/3.dat", "c/4.dat"]
    assert snap["a/b/2.dat"].size == len(b"a/b/2.dat")
    assert count_files(tmp_path / "missing") == 0


def test_rewrites_tell_replaced_rewritten_and_untouched(tmp_path: Path):
    make_tree(tmp_path)
    before = snapshot(tmp_path)
    # replaced: a new file renamed over the old one (what a temporary name + rename does)
    (tmp_path / "a" / "tmp").write_bytes(b"a/1.dat")
    os.replace(tmp_path / "a" / "tmp", tmp_path / "a" / "1.dat")
    # rewritten in place, same size: the ctime tells it. The snapshot's ctime is moved
    # back by 1 ns instead of waiting for the clock to move (a write within one clock
    # tick keeps the ctime).
    with open(tmp_path / "a" / "b" / "2.dat", "r+b") as f:
        f.write(b"A")
    old = before["a/b/2.dat"]
    before["a/b/2.dat"] = dataclasses.replace(old, ctime_ns=old.ctime_ns - 1)
    # rewritten in place with another size, the ctime of the snapshot left as it was
    with open(tmp_path / "c" / "4.dat", "ab") as f:
        f.write(b"more")
    found = rewrites(before, tmp_path)
    assert found.replaced == ("a/1.dat",)
    assert sorted(found.rewritten) == ["a/b/2.dat", "c/4.dat"]  # a/b/3.dat untouched


def test_throttled_check_waits_in_proportion_to_its_cost():
    calls: list[int] = []

    def check() -> bool:
        calls.append(1)
        return len(calls) >= 2

    look = Throttled(check, min_interval=3600.0)
    assert look() is False
    assert look() is False  # within the interval: not called again
    assert len(calls) == 1
    assert look.interval >= 3600.0
