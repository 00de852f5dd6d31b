"""The delta pass for cut-over (only what changed moves; --delete only when asked, listed
by --dry-run first), `fsmove status` on a copy running in another process, and the job
lock that refuses a second copy of the same job."""

from __future__ import annotations

import dataclasses
import json
import os
import shutil
import subprocess
import sys
import time
from collections.abc import Callable
from pathlib import Path

import pytest
from typer.testing import CliRunner

from fsmove.cli import app
from fsmove.exitcodes import ExitCode
from tests.copy_harness import (
    Side,
    put_files,
    run_copy_inprocess,
    side_for,
    tree_digests,
)
from tests.faults.hostile_ftpd import HostileDir, HostileFile, start_hostile_ftpd
from tests.servers import RunningServer

MTIME = 1_600_000_000.0


def small_tree(n: int) -> dict[str, bytes]:
    return {f"d{i % 7}/sub{i % 3}/f{i:04d}.bin": os.urandom(100 + (i * 37) % 5000)
            for i in range(n)}


@pytest.mark.interop
def test_delta_pass_moves_only_touched_files(dst_side: Side, tmp_path: Path) -> None:
    src_root = tmp_path / "src"
    src = side_for("local", None, src_root, "src")
    files = small_tree(400)
    src.put(files, mtime=MTIME)
    journal = tmp_path / "job.db"
    first = run_copy_inprocess(src, dst_side, journal=journal)
    assert first.exit_code == 0, first.output
    assert first.summary["files_copied"] == 400

    touched = sorted(files)[::100]  # 1 %
    for rel in touched:
        (src_root / rel).write_bytes(b"changed " + os.urandom(64))
        os.utime(src_root / rel, (MTIME + 3600, MTIME + 3600))
    (src_root / "d0" / "new.txt").write_bytes(b"a new file")
    delta = run_copy_inprocess(src, dst_side, journal=journal)
    assert delta.exit_code == 0, delta.output
    done = sorted(str(e["path"]) for e in delta.events if e.get("type") == "file_done")
    assert done == sorted([*touched, "d0/new.txt"])
    moved = sum(len((src_root / p).read_bytes()) for p in done)
    assert delta.summary["bytes_sent"] == moved
    assert tree_digests(dst_side.root) == tree_digests(src_root)


@pytest.mark.interop
def test_delete_only_when_asked_and_dry_run_lists_first(dst_side: Side,
                                                        tmp_path: Path) -> None:
    src_root = tmp_path / "src"
    src = side_for("local", None, src_root, "src")
    files = small_tree(30)
    src.put(files, mtime=MTIME)
    journal = tmp_path / "job.db"
    assert run_copy_inprocess(src, dst_side, journal=journal).exit_code == 0
    gone = sorted(files)[:3]
    for rel in gone:
        (src_root / rel).unlink()

    plain = run_copy_inprocess(src, dst_side, journal=journal)
    assert plain.exit_code == 0
    assert all((dst_side.root / rel).exists() for rel in gone)  # no --delete: kept

    dry = run_copy_inprocess(src, dst_side, "--delete", "--dry-run", journal=journal)
    assert dry.exit_code == 0
    listed = sorted(str(e["path"]) for e in dry.events if e.get("type") == "deleted")
    assert listed == gone
    assert all(e.get("dry_run") for e in dry.events if e.get("type") == "deleted")
    assert all((dst_side.root / rel).exists() for rel in gone)

    real = run_copy_inprocess(src, dst_side, "--delete", journal=journal)
    assert real.exit_code == 0, real.output
    assert real.summary["files_deleted"] == 3
    assert not any((dst_side.root / rel).exists() for rel in gone)
    assert tree_digests(dst_side.root) == tree_digests(src_root)


@pytest.mark.interop
def test_delete_removes_the_folders_the_source_lost(dst_side: Side, tmp_path: Path) -> None:
    """A folder the source lost, with its subfolders: ``--delete`` removes its files and
    then the folders, deepest first, so the trees end equal folder for folder (a folder
    left behind empty made ``fsmove verify`` report a mismatch). A lost folder still
    holding an excluded file stays, with that file."""
    src_root = tmp_path / "src"
    src = side_for("local", None, src_root, "src")
    files = {"keep/a.bin": b"a", "gone/b.bin": b"b", "gone/deep/er/c.bin": b"c",
             "gone/deep/d.bin": b"d", "logs/x.log": b"log", "logs/y.bin": b"y"}
    src.put(files, mtime=MTIME)
    journal = tmp_path / "job.db"
    assert run_copy_inprocess(src, dst_side, journal=journal).exit_code == 0
    shutil.rmtree(src_root / "gone")
    shutil.rmtree(src_root / "logs")

    real = run_copy_inprocess(src, dst_side, "--delete", "--exclude", "*.log",
                              journal=journal)
    assert real.exit_code == 0, real.output
    assert real.summary["files_deleted"] == 4  # gone/* and logs/y.bin; x.log excluded

    def folders(root: Path) -> set[str]:
        return {str(Path(d).relative_to(root)) for d, _, _ in os.walk(root)} - {"."}

    assert folders(dst_side.root) == {"keep", "logs"}
    assert sorted(os.listdir(dst_side.root / "logs")) == ["x.log"]
    # The folder kept for its excluded file is a real difference (verify names it);
    # everything else is equal, folders included.
    checked = CliRunner().invoke(
        app, ["verify", src.url, dst_side.url, *src.options(), *dst_side.options(),
              "--exclude", "logs", "-q"],
        env={**src.env, **dst_side.env}, catch_exceptions=False)
    assert checked.exit_code == 0, checked.output


def _wait_for_line(proc: subprocess.Popen[str], kind: str) -> None:
    assert proc.stdout is not None
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        line = proc.stdout.readline()
        if not line:
            break
        if line.startswith("{") and json.loads(line).get("type") == kind:
            return
    raise AssertionError(f"no {kind!r} event from the copy")


def test_status_while_running_and_second_copy_refused(tmp_path: Path) -> None:
    """The copy is held mid-file by a source that stops sending (not slowed down by a
    rate: a loaded machine could then finish it before the checks), so "running" and
    the refused second copy are certain; SIGTERM ends it; the source is then fixed and
    the same command finishes the job."""
    files = {f"big{i}.bin": os.urandom(6 * 1024 * 1024) for i in range(6)}
    tree: dict[bytes, HostileDir | HostileFile] = {b"/": HostileDir(auto=True)}
    tree |= {f"/{name}".encode(): HostileFile(data, stall_after=64 * 1024)
             for name, data in files.items()}
    journal, dst = tmp_path / "job.db", tmp_path / "dst"
    with start_hostile_ftpd(tree) as server:
        env = {**os.environ, "FSMOVE_SRC_PASSWORD": server.password}
        argv = [sys.executable, "-m", "fsmove.cli", "copy", server.url(), str(dst),
                "--journal", str(journal), "--json", "--timeout", "300"]
        proc = subprocess.Popen(argv, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                                text=True, env=env)
        try:
            _wait_for_line(proc, "file_started")
            status = subprocess.run(
                [sys.executable, "-m", "fsmove.cli", "status", str(journal), "--json"],
                capture_output=True, text=True, timeout=120, check=False,
            )
            assert status.returncode == 0, status.stderr
            info = json.loads(status.stdout)
            assert info["running"] is True and info["state"] == "running"
            assert info["bytes_total"] == 6 * 6 * 1024 * 1024
            assert sum(info["counts"].values()) == 6

            second = subprocess.run(argv, capture_output=True, text=True, timeout=120,
                                    check=False, env=env)
            assert second.returncode == ExitCode.ERROR
            assert "another fsmove is running this job" in second.stderr
            assert "Traceback" not in second.stderr
        finally:
            proc.terminate()
            _out, err = proc.communicate(timeout=120)
        # SIGTERM is an interruption: journal saved, exit 130, one line.
        assert proc.returncode == ExitCode.INTERRUPTED, err
        assert "Traceback" not in err
        after = subprocess.run(
            [sys.executable, "-m", "fsmove.cli", "status", str(journal), "--json"],
            capture_output=True, text=True, timeout=120, check=False,
        )
        info = json.loads(after.stdout)
        assert info["running"] is False and info["run_status"] == "interrupted"
        assert info["state"] == "interrupted"
        server.stop_stalling()
        resumed = subprocess.run(argv, capture_output=True, text=True, timeout=300,
                                 check=False, env=env)
    assert resumed.returncode == 0, resumed.stderr
    assert {p.name: p.read_bytes() for p in dst.iterdir()} == files


def test_a_damaged_journal_is_set_aside_and_the_rerun_skips_what_is_there(
    tmp_path: Path,
) -> None:
    """A journal that is no longer a database (a power cut right after a run, a disk
    error): the copy keeps it aside, says so in one line, starts a new one, and files
    already at the destination are still skipped."""
    src_root, dst_root = tmp_path / "src", tmp_path / "dst"
    src_root.mkdir()
    dst_root.mkdir()
    src = side_for("local", None, src_root, "src")
    dst = side_for("local", None, dst_root, "dst")
    put_files(None, src_root, small_tree(20))
    journal = tmp_path / "job.db"
    first = run_copy_inprocess(src, dst, journal=journal)
    assert first.exit_code == 0, first.output
    journal.write_bytes(b"this is not a database" * 100)
    for extra in ("-wal", "-shm"):
        Path(f"{journal}{extra}").unlink(missing_ok=True)
    status = CliRunner().invoke(app, ["status", str(journal)])
    assert status.exit_code == 1 and "cannot be read" in status.output, status.output
    assert "Traceback" not in status.output
    again = run_copy_inprocess(src, dst, journal=journal)
    assert again.exit_code == 0, again.output
    assert "could not be read" in again.output and "new one started" in again.output
    assert again.summary["files_skipped"] == 20 and again.summary["bytes_sent"] == 0
    aside = list(tmp_path.glob("job.db.damaged-*"))
    assert len(aside) == 1 and aside[0].read_bytes().startswith(b"this is not")
    assert tree_digests(dst_root) == tree_digests(src_root)


@pytest.mark.interop
@pytest.mark.parametrize("fixture", ["vsftpd_server", "pureftpd_server", "proftpd_server"])
def test_a_destination_folder_that_does_not_exist_yet_gets_the_full_probe(
    fixture: str, request: pytest.FixtureRequest,
    fresh_subdir: Callable[[RunningServer], RunningServer], tmp_path: Path,
) -> None:
    """The usual first run: the folder on the new bucket does not exist. fsmove makes
    it before probing the server, so mtimes are kept (and resume works) from the first
    run: the rerun skips everything and sends nothing."""
    server = fresh_subdir(request.getfixturevalue(fixture))
    new_root = server.root / "new" / "bucket"
    dst = side_for(fixture, server, server.root, "dst")
    dst = dataclasses.replace(dst, url=server.url("new/bucket"), root=new_root)
    src = side_for("local", None, tmp_path / "src", "src")
    src.put(small_tree(12), mtime=MTIME)
    first = run_copy_inprocess(src, dst, journal=tmp_path / "a.db")
    assert first.exit_code == 0, first.output
    for path in (tmp_path / "src").rglob("*"):
        if path.is_file():
            rel = path.relative_to(tmp_path / "src")
            assert (new_root / rel).stat().st_mtime == MTIME, rel
    again = run_copy_inprocess(src, dst, journal=tmp_path / "b.db")  # no journal help
    assert again.summary["files_skipped"] == 12 and again.summary["bytes_sent"] == 0
