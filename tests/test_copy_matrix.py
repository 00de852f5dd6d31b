"""`fsmove copy` between every pair of {local, vsftpd, proftpd, pure-ftpd, SFTP}: a tree
with nested and empty dirs, empty files, UTF-8 and space names and a 1 GiB file; the
destination is checked with an independent hash, mtimes where the destination keeps
them; a rerun moves 0 bytes; --dry-run writes nothing."""

from __future__ import annotations

import os
import shutil
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

from tests.copy_harness import (
    Side,
    run_copy_inprocess,
    side_for,
    temp_leftovers,
    tree_digests,
    tree_dirs,
)
from tests.servers import RunningServer

KINDS = {
    "local": None,
    "vsftpd": "vsftpd_server",
    "proftpd": "proftpd_server",
    "pureftpd": "pureftpd_server",
    "sftp": "sshd_server",
}
GIB = 1024**3
MTIME = 1_500_000_000.0

SMALL_TREE = {
    "top.txt": b"top level\n",
    "empty.bin": b"",
    "a/b/c/deep.txt": b"deep " * 1000,
    "a/b/empty-in-deep": b"",
    "with space/file with space.txt": b"spaces",
    "ünïcødé/日本語.txt": "こんにちは".encode(),
    "odd/hash#percent%.dat": os.urandom(70_000),
    "media/photo.jpg": os.urandom(2_500_000),
    "media/video.mp4": os.urandom(9 * 1024 * 1024 + 123),
}
EMPTY_DIRS = ("empty-dir", "a/empty-nested/also-empty")


@pytest.fixture(scope="session")
def big_file(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """1 GiB of incompressible data, written once per session."""
    path = tmp_path_factory.mktemp("bigfile") / "big.bin"
    block = os.urandom(16 * 1024 * 1024)
    with open(path, "wb") as fh:
        for i in range(GIB // len(block)):
            fh.write(bytes([i % 251]) + block[1:])
    return path


def make_side(
    kind: str,
    role: str,
    request: pytest.FixtureRequest,
    fresh_subdir: Callable[[RunningServer], RunningServer],
    tmp_path: Path,
) -> Side:
    fixture = KINDS[kind]
    if fixture is None:
        root = tmp_path / f"{role}-local"
        root.mkdir()
        return side_for(kind, None, root, role)
    server = fresh_subdir(request.getfixturevalue(fixture))
    return side_for(kind, server, server.root, role)


def fill_source(src: Side, big: Path | None) -> None:
    src.put(SMALL_TREE, mtime=MTIME)
    for d in EMPTY_DIRS:
        src.mkdir(d)
    if big is not None:
        target = src.root / "large" / "big file.bin"
        src.mkdir("large")
        try:
            os.link(big, target)
        except OSError:
            shutil.copyfile(big, target)
        if src.server is not None:
            os.chown(target, *src.server.owner)
        os.utime(target, (MTIME, MTIME))


@pytest.fixture
def cleanup() -> Iterator[list[Path]]:
    paths: list[Path] = []
    yield paths
    for p in paths:
        shutil.rmtree(p, ignore_errors=True)


PAIRS = [(a, b) for a in KINDS for b in KINDS]


@pytest.mark.interop
@pytest.mark.parametrize(("src_kind", "dst_kind"), PAIRS, ids=[f"{a}-to-{b}" for a, b in PAIRS])
def test_copy_pair(
    src_kind: str,
    dst_kind: str,
    request: pytest.FixtureRequest,
    fresh_subdir: Callable[[RunningServer], RunningServer],
    tmp_path: Path,
    big_file: Path,
    cleanup: list[Path],
) -> None:
    src = make_side(src_kind, "src", request, fresh_subdir, tmp_path)
    dst = make_side(dst_kind, "dst", request, fresh_subdir, tmp_path)
    cleanup += [src.root, dst.root]
    fill_source(src, big_file)
    journal = tmp_path / "job.db"

    # --dry-run writes nothing.
    before = sorted(p.name for p in dst.root.iterdir())
    dry = run_copy_inprocess(src, dst, "--dry-run", journal=journal)
    assert dry.exit_code == 0, dry.output
    assert dry.summary["dry_run"] is True
    assert sorted(p.name for p in dst.root.iterdir()) == before
    assert not journal.exists()

    first = run_copy_inprocess(src, dst, journal=journal)
    assert first.exit_code == 0, first.output
    expected = tree_digests(src.root)
    assert tree_digests(dst.root) == expected
    assert first.summary["files_copied"] == len(expected)
    assert {d for d in tree_dirs(src.root)} <= tree_dirs(dst.root)
    assert not temp_leftovers(dst.root)
    for rel in ("top.txt", "large/big file.bin", "ünïcødé/日本語.txt"):
        assert abs((dst.root / rel).stat().st_mtime - MTIME) <= 1, rel

    again = run_copy_inprocess(src, dst, journal=journal)
    assert again.exit_code == 0, again.output
    assert again.summary["bytes_sent"] == 0
    assert again.summary["files_copied"] == 0
    assert again.summary["files_skipped"] == len(expected)
