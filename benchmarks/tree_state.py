"""What a destination tree holds while and after a tool writes into it: a count of its
files (cheap: no ``stat``), and a snapshot of each file's identity (inode, ctime, size),
to tell a file left alone from one written again."""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path


@dataclass(frozen=True, slots=True)
class FileState:
    inode: int
    ctime_ns: int
    size: int


def count_files(root: Path) -> int:
    """Regular files below ``root`` (folders appearing or vanishing meanwhile are skipped)."""
    count = 0
    stack = [str(root)]
    while stack:
        try:
            with os.scandir(stack.pop()) as it:
                for entry in it:
                    if entry.is_dir(follow_symlinks=False):
                        stack.append(entry.path)
                    elif entry.is_file(follow_symlinks=False):
                        count += 1
        except (FileNotFoundError, NotADirectoryError):
            continue
    return count


def snapshot(root: Path) -> dict[str, FileState]:
    """Every regular file below ``root`` by its "/"-separated relative path."""
    found: dict[str, FileState] = {}
    base = len(str(root)) + 1
    stack = [str(root)]
    while stack:
        try:
            with os.scandir(stack.pop()) as it:
                for entry in it:
                    if entry.is_dir(follow_symlinks=False):
                        stack.append(entry.path)
                    elif entry.is_file(follow_symlinks=False):
                        try:
                            st = entry.stat(follow_symlinks=False)
                        except FileNotFoundError:
                            continue
                        rel = entry.path[base:].replace(os.sep, "/")
                        found[rel] = FileState(st.st_ino, st.st_ctime_ns, st.st_size)
        except (FileNotFoundError, NotADirectoryError):
            continue
    return found


def settled_snapshot(root: Path, *, attempts: int = 5) -> dict[str, FileState]:
    """A snapshot taken twice in a row with the same result (a server may still be
    finishing what a killed client sent); the last one after ``attempts`` tries."""
    previous = snapshot(root)
    for _ in range(attempts - 1):
        current = snapshot(root)
        if current == previous:
            return current
        previous = current
    return previous


@dataclass(frozen=True)
class Rewrites:
    """Of the files complete after a kill, those the rerun wrote again."""

    replaced: tuple[str, ...]  # another inode now: a new file renamed over it
    rewritten: tuple[str, ...]  # same inode, another ctime or size: written in place


def rewrites(before: dict[str, FileState], root: Path) -> Rewrites:
    """Compare each file of ``before`` with what is at its path below ``root`` now."""
    replaced: list[str] = []
    rewritten: list[str] = []
    for rel, old in before.items():
        try:
            st = os.stat(root / rel, follow_symlinks=False)
        except FileNotFoundError:
            replaced.append(rel)  # gone (the verification reports it missing)
            continue
        if st.st_ino != old.inode:
            replaced.append(rel)
        elif st.st_ctime_ns != old.ctime_ns or st.st_size != old.size:
            rewritten.append(rel)
    return Rewrites(replaced=tuple(replaced), rewritten=tuple(rewritten))
