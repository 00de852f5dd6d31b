"""Faults on the disks: a destination that fills up (a 2 MiB tmpfs), source files the
server may not read, source files that grow or shrink while they are copied."""

from __future__ import annotations

import os
import subprocess
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

from tests.copy_harness import temp_leftovers, tree_digests
from tests.faults.fsmove_run import FsmoveRunner, check_partial
from tests.faults.trees import FAST, KiB, random_files, write_local
from tests.servers import RunningServer, make_tree


@pytest.fixture
def small_disk(tmp_path: Path) -> Iterator[Path]:
    """A 2 MiB tmpfs (needs root, as the whole suite does: CI runs as root)."""
    mount = tmp_path / "small-disk"
    mount.mkdir()
    subprocess.run(["mount", "-t", "tmpfs", "-o", "size=2m", "tmpfs", str(mount)], check=True)
    try:
        yield mount
    finally:
        subprocess.run(["umount", "-l", str(mount)], check=False)


def test_destination_disk_full_fails_files_then_rerun_completes(
    fsmove: FsmoveRunner, tmp_path: Path, small_disk: Path
) -> None:
    src = tmp_path / "src"
    files = random_files(3, 900 * KiB, seed=10, prefix="big")
    files |= random_files(8, 8 * KiB, seed=11, prefix="small")
    write_local(src, files)
    dst = small_disk / "dst"
    args = ("copy", str(src), str(dst), "--workers", "4", "--retries", "1", *FAST)
    run = fsmove.run(*args)
    reasons = check_partial(run)
    assert reasons and all("space" in why for why in reasons.values()), reasons
    for rel, data in files.items():  # nothing at a final name that is not whole
        if (dst / rel).exists():
            assert (dst / rel).read_bytes() == data, rel
    # Make room (the fault is gone) and run the same command again.
    subprocess.run(["mount", "-o", "remount,size=16m", str(small_disk)], check=True)
    again = fsmove.run(*args)
    assert again.code == 0, str(again)
    assert tree_digests(dst) == tree_digests(src)
    assert not temp_leftovers(dst)


def test_unreadable_source_files_and_folders_are_listed_and_never_deleted(
    fsmove: FsmoveRunner, tmp_path: Path, vsftpd_server: RunningServer,
    fresh_subdir: Callable[[RunningServer], RunningServer],
) -> None:
    """vsftpd serves as the test account; a root-owned 0600 file and 0700 folder are
    unreadable to it (locally, root reads everything, so a server is the honest test)."""
    server = fresh_subdir(vsftpd_server)
    files = {"open.txt": b"open", "secret.txt": b"no access", "closed/inner.txt": b"inner"}
    make_tree(server, files)
    dst = tmp_path / "dst"
    write_local(dst, {"closed/inner.txt": b"inner", "secret.txt": b"no access"})
    for stale in (dst / "closed" / "inner.txt", dst / "secret.txt"):
        os.utime(stale, (1_000_000_000, 1_000_000_000))  # older: must be copied again
    for path, mode in ((server.root / "secret.txt", 0o600), (server.root / "closed", 0o700)):
        os.chown(path, 0, 0)
        path.chmod(mode)
    env = {"FSMOVE_SRC_PASSWORD": server.password}
    args = ("copy", server.url(), str(dst), "--delete", "--retries", "1", *FAST)
    run = fsmove.run(*args, env=env)
    reasons = check_partial(run, "secret.txt", "closed")
    assert "denied" in reasons["secret.txt"] or "refused" in reasons["secret.txt"], reasons
    assert (dst / "open.txt").read_bytes() == b"open"
    # --delete never removes what only looks absent because it could not be read.
    assert (dst / "closed" / "inner.txt").exists()
    assert (dst / "secret.txt").exists()
    for path in (server.root / "secret.txt", server.root / "closed"):
        os.chown(path, *server.owner)
        path.chmod(0o755 if path.is_dir() else 0o644)
    again = fsmove.run(*args, env=env)
    assert again.code == 0, str(again)
    assert tree_digests(dst) == tree_digests(server.root)


@pytest.mark.parametrize("change", ["grows", "shrinks"])
def test_source_changing_during_its_copy_is_restarted_and_ends_right(
    fsmove: FsmoveRunner, tmp_path: Path, change: str
) -> None:
    src = tmp_path / "src"
    files = random_files(1, 1536 * KiB, seed=12, prefix="moving") | {"still.txt": b"still"}
    write_local(src, files)
    moving = src / "moving00.bin"
    dst = tmp_path / "dst"
    child = fsmove.start("copy", str(src), str(dst), "--bwlimit", "512K", "--retries", "3",
                         *FAST)
    child.wait_for(lambda e: e.get("type") == "file_started"
                   and e.get("path") == "moving00.bin")
    if change == "grows":
        with open(moving, "ab") as fh:
            fh.write(os.urandom(300 * KiB))
    else:
        os.truncate(moving, 1000 * KiB)
    run = child.finish()
    assert run.code == 0, str(run)
    restarted = [p for p, _why in run.summary["restarted"]]  # type: ignore[union-attr]
    assert restarted == ["moving00.bin"], run.summary
    assert tree_digests(dst) == tree_digests(src)
    assert not temp_leftovers(dst)
