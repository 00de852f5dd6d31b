"""Copy and verify apply one set of tree rules (transfers/tree.py), run as the real CLI
on local folders.

Regressions (issue 14, item 7): ``copy --include '*.jpg' --verify`` dropped sub-folders
in verify (the filter ran without the entry's kind) and passed over a corrupted
``photos/a.jpg``; a user's ``.fsmove.notes.part`` was ignored by verify; a source file
named ``.fsmove.0123456789abcdef.part`` was neither copied nor verified, and such a
file at the destination was removed without ``--delete``."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

MTIME = 1_600_000_000


def fsmove(*args: str, state: Path) -> subprocess.CompletedProcess[str]:
    env = {**os.environ, "XDG_STATE_HOME": str(state)}
    return subprocess.run([sys.executable, "-m", "fsmove.cli", *args], env=env,
                          capture_output=True, text=True, timeout=300, check=False)


def put(root: Path, files: dict[str, bytes]) -> None:
    for rel, data in files.items():
        p = root / rel
        p.parent.mkdir(parents=True, exist_ok=True)
        p.write_bytes(data)
        os.utime(p, (MTIME, MTIME))


def corrupt(path: Path) -> None:
    """Same size, same mtime, other bytes: only reading the content can tell."""
    data = bytearray(path.read_bytes())
    data[0] ^= 0xFF
    path.write_bytes(bytes(data))
    os.utime(path, (MTIME, MTIME))


def test_include_glob_verifies_files_in_sub_folders(tmp_path: Path) -> None:
    src, dst, state = tmp_path / "src", tmp_path / "dst", tmp_path / "state"
    put(src, {"top.jpg": b"top" * 100, "photos/a.jpg": b"a" * 1000,
              "photos/2024/b.jpg": b"b" * 1000, "photos/notes.txt": b"not included"})
    first = fsmove("copy", str(src), str(dst), "--include", "*.jpg", "-q", state=state)
    assert first.returncode == 0, first.stderr
    assert (dst / "photos/a.jpg").read_bytes() == b"a" * 1000
    assert (dst / "photos/2024/b.jpg").exists() and not (dst / "photos/notes.txt").exists()
    clean = fsmove("copy", str(src), str(dst), "--include", "*.jpg", "--verify", state=state)
    assert clean.returncode == 0, clean.stdout + clean.stderr

    corrupt(dst / "photos/a.jpg")
    again = fsmove("copy", str(src), str(dst), "--include", "*.jpg", "--verify", state=state)
    assert again.returncode == 4, again.stdout + again.stderr
    assert "photos/a.jpg" in again.stdout
    checked = fsmove("verify", str(src), str(dst), "--exclude", "*.txt", state=state)
    assert checked.returncode == 4 and "photos/a.jpg" in checked.stdout


USER_FILES = {
    ".fsmove.notes.part": b"my notes",
    "d/.fsmove.0123456789abcdef.part": b"a file that only looks like a temp",
    "d/.fsmove.0123456789abcdef.0123456789abcdef.part": b"this one too",
}


def test_user_files_named_like_temps_are_copied_and_verified(tmp_path: Path) -> None:
    src, dst, state = tmp_path / "src", tmp_path / "dst", tmp_path / "state"
    put(src, {**USER_FILES, "d/plain.txt": b"plain"})
    done = fsmove("copy", str(src), str(dst), "--verify", "-q", state=state)
    assert done.returncode == 0, done.stdout + done.stderr
    for rel, data in USER_FILES.items():
        assert (dst / rel).read_bytes() == data, rel

    corrupt(dst / ".fsmove.notes.part")
    checked = fsmove("verify", str(src), str(dst), state=state)
    assert checked.returncode == 4, checked.stdout
    assert ".fsmove.notes.part" in checked.stdout
    corrupt(dst / ".fsmove.notes.part")  # back to the source's bytes
    corrupt(dst / "d/.fsmove.0123456789abcdef.part")
    checked = fsmove("verify", str(src), str(dst), state=state)
    assert checked.returncode == 4 and "d/.fsmove.0123456789abcdef.part" in checked.stdout


def test_a_destination_file_named_like_a_temp_is_kept_without_delete(tmp_path: Path) -> None:
    src, dst, state = tmp_path / "src", tmp_path / "dst", tmp_path / "state"
    put(src, {"d/plain.txt": b"plain"})
    put(dst, {"d/.fsmove.0123456789abcdef.part": b"the user's, only here",
              ".fsmove.notes.part": b"also the user's"})
    done = fsmove("copy", str(src), str(dst), "-q", state=state)
    assert done.returncode == 0, done.stderr
    assert (dst / "d/.fsmove.0123456789abcdef.part").read_bytes() == b"the user's, only here"
    assert (dst / ".fsmove.notes.part").exists()
    checked = fsmove("verify", str(src), str(dst), state=state)
    assert checked.returncode == 4, checked.stdout  # files only in the destination
    assert "d/.fsmove.0123456789abcdef.part" in checked.stdout
    deleted = fsmove("copy", str(src), str(dst), "--delete", "-q", state=state)
    assert deleted.returncode == 0, deleted.stderr
    assert not (dst / "d/.fsmove.0123456789abcdef.part").exists()
    assert fsmove("verify", str(src), str(dst), state=state).returncode == 0


def test_a_name_fsmove_cannot_carry_that_the_filters_leave_out_is_not_a_failure(
        tmp_path: Path) -> None:
    """A source name with a newline cannot be carried (refused, exit 3), but one the
    user's --exclude (or --include) leaves out is simply out: before session 31 it was
    refused before the filters ran, and a run that excluded it ended "partial" (exit 3)
    whatever the filters said. Verify agrees. Without the filter it is still refused."""
    src, dst, state = tmp_path / "src", tmp_path / "dst", tmp_path / "state"
    put(src, {"keep.txt": b"keep", "logs/bad\nname.log": b"odd"})
    out = fsmove("copy", str(src), str(dst), "--exclude", "*.log", "--verify", state=state)
    assert out.returncode == 0, out.stdout + out.stderr
    assert "refused" not in out.stdout + out.stderr
    only = fsmove("copy", str(src), str(tmp_path / "dst2"), "--include", "/keep.txt",
                  state=state)
    assert only.returncode == 0, only.stdout + only.stderr
    unfiltered = fsmove("copy", str(src), str(tmp_path / "dst3"), state=state)
    assert unfiltered.returncode == 3, unfiltered.stdout + unfiltered.stderr
    assert "refused" in unfiltered.stdout + unfiltered.stderr


PATTERNS = [  # (path, kind, pattern, matches): rsync's and rclone's reading
    ("logs", "dir", "logs", True), ("sub/logs", "dir", "logs", True),
    ("sub/logs", "dir", "logs/", True), ("sub/logs", "file", "logs/", False),
    ("sub/logs/y.log", "file", "logs/**", True), ("logs/y.log", "file", "logs/**", True),
    ("logs", "dir", "/logs", True), ("sub/logs", "dir", "/logs", False),
    ("a/b.txt", "file", "*.txt", True), ("a/b.txt", "file", "/*.txt", False),
    ("x/a/b", "file", "a/b", True), ("xa/b", "file", "a/b", False),
    ("cache/a/b.txt", "file", "cache/*", False), ("cache/a", "dir", "cache/*", True),
    ("a/d.txt", "file", "a/**/d.txt", True), ("a/b/c/d.txt", "file", "a/**/d.txt", True),
    ("a/b", "file", "a?b", False), ("a/b", "file", "a[!x]b", False),
    ("a]b", "file", "/a[]]b", True), ("a*b", "file", "/a[*]b", True),
    ("axb", "file", "/a[*]b", False), ("x/.ftpquota", "file", "/.ftpquota", False),
]


def test_patterns_read_as_rsync_reads_them() -> None:
    from fsmove.transfers.backend import EntryKind
    from fsmove.transfers.tree import Filters

    kinds = {"dir": EntryKind.DIR, "file": EntryKind.FILE}
    wrong = [(path, kind, pattern) for path, kind, pattern, want in PATTERNS
             if Filters(exclude=(pattern,)).excludes(path, kinds[kind]) is not want]
    assert wrong == []
    below = Filters(include=("docs/",))  # a folder-only include: the files below it
    assert not below.excludes("x/docs/a/b.txt", EntryKind.FILE)
    assert below.excludes("docs.txt", EntryKind.FILE)


def test_an_excluded_folder_at_any_depth_is_never_deleted(tmp_path: Path) -> None:
    """``--exclude logs/`` with ``--delete``: before session 34 only the top ``logs``
    was kept, ``sub/logs/y.log`` at the destination deleted (rsync and rclone keep
    both)."""
    src, dst, state = tmp_path / "src", tmp_path / "dst", tmp_path / "state"
    put(src, {"a.txt": b"a"})
    put(dst, {"logs/x.log": b"x", "sub/logs/y.log": b"y", "sub/old.txt": b"old"})
    for pattern in ("logs/", "logs/**", "logs"):
        run = fsmove("copy", str(src), str(dst), "--delete", "--exclude", pattern, "-q",
                     state=state)
        assert run.returncode == 0, run.stderr
        assert (dst / "logs" / "x.log").exists() and (dst / "sub" / "logs" / "y.log").exists()
    assert not (dst / "sub" / "old.txt").exists()
