"""A first run into a destination folder that does not exist yet, of a tree whose folders
are big enough to be decided in parts (``transfers/march.py``): a folder of 700 files
and a folder of 150 folders, between real servers both ways. Every file arrives once,
whole, with its time; the journal holds each path once; a rerun moves nothing.

On loopback a listing is usually whole before the march reads it (the scout lists
ahead), so whether a folder comes in one part or several here depends on the machine:
the parts themselves, a listing cut midway and the scout's listing abandoned midway are
proven with gated listings in ``test_march.py``; this is the end-to-end check with the
servers' own listings (SFTP READDIR batches, vsftpd's LIST and MDTM windows)."""

from __future__ import annotations

import dataclasses
import sqlite3
from collections.abc import Callable
from contextlib import closing
from pathlib import Path

import pytest

from tests.copy_harness import run_copy_subprocess, side_for, tree_digests
from tests.servers import RunningServer

MTIME = 1_650_000_000
_KIND = {"vsftpd_server": "vsftpd", "sshd_server": "sftp"}
CASES = [("vsftpd_server", "sshd_server"), ("sshd_server", "vsftpd_server")]


def _tree() -> dict[str, bytes]:
    files = {f"uploads/u{i:04d}.bin": f"file {i} ".encode() * (i % 7) for i in range(700)}
    files |= {f"users/user{i:03d}/avatar.png": f"avatar {i}".encode() for i in range(150)}
    files["top.txt"] = b"top"
    return files


@pytest.mark.interop
@pytest.mark.parametrize(("src_fixture", "dst_fixture"), CASES,
                         ids=["vsftpd-to-sftp", "sftp-to-vsftpd"])
def test_big_folders_into_a_new_destination_arrive_once_and_whole(
    src_fixture: str, dst_fixture: str, request: pytest.FixtureRequest,
    fresh_subdir: Callable[[RunningServer], RunningServer], tmp_path: Path,
) -> None:
    src_server = fresh_subdir(request.getfixturevalue(src_fixture))
    dst_server = fresh_subdir(request.getfixturevalue(dst_fixture))
    src = side_for(_KIND[src_fixture], src_server, src_server.root, "src")
    dst = side_for(_KIND[dst_fixture], dst_server, dst_server.root, "dst")
    new_root = dst_server.root / "migrated" / "bucket"
    dst = dataclasses.replace(dst, url=dst_server.url("migrated/bucket"), root=new_root)
    files = _tree()
    src.put(files, mtime=MTIME)
    journal = tmp_path / "job.db"

    first = run_copy_subprocess(src, dst, journal=journal)
    assert first.exit_code == 0, first.output[-3000:]
    summary = first.summary
    assert (summary["files_copied"], summary["failed"]) == (len(files), []), summary
    started = [e["path"] for e in first.events if e.get("type") == "file_started"]
    assert sorted(started) == sorted(files)  # each once
    plans = [e for e in first.events if e.get("type") == "plan"]
    assert plans[-1]["complete"] and plans[-1]["files_total"] == len(files), [
        (p["t"], p["complete"], p["files_total"]) for p in plans][-4:]
    assert [p["complete"] for p in plans].count(True) == 1
    assert plans[-1]["dirs_to_create"] == 2 + 150  # uploads, users and each user's
    assert tree_digests(new_root) == tree_digests(src_server.root)
    assert all((new_root / p).stat().st_mtime == MTIME for p in files)
    with closing(sqlite3.connect(journal)) as db:
        rows = db.execute("SELECT path, state FROM files").fetchall()
    assert sorted(p for p, _ in rows) == sorted(files)
    assert {s for _, s in rows} == {"done"}

    again = run_copy_subprocess(src, dst, journal=journal)
    assert again.exit_code == 0, again.output[-3000:]
    assert (again.summary["files_skipped"], again.summary["bytes_sent"]) == (len(files), 0)
