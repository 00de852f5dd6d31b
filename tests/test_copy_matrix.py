"""`fsmove copy` between every pair of {local, vsftpd, proftpd, pure-ftpd, SFTP}: a tree
with nested and empty dirs, empty files, UTF-8 and space names and a large file; the
destination is checked with an independent hash, mtimes where the destination keeps
them; a rerun moves 0 bytes; --dry-run writes nothing.

The large file goes through the segmented path on every pair: one pair (``GIB_PAIR``)
moves 1 GiB with the engine's own segment sizes (64 MiB segments, 4 at once); the others
move 21 MiB with the segment threshold lowered to 8 MiB and segments of 4 MiB (six
segments, the last one short), which exercises the same code for a fiftieth of the
bytes. Where the destination takes parallel writes (local, SFTP) the file is copied in
several segments; an FTP destination takes it as one stream."""

from __future__ import annotations

import dataclasses
import os
import shutil
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest

from fsmove.transfers.copy import CopyEngine, CopyOptions
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
MiB = 1024**2
GIB = 1024**3
#: The one pair that moves 1 GiB (an FTP source read in ranges, an SFTP destination
#: written in parallel: both servers, the engine's default segments).
GIB_PAIR = ("vsftpd", "sftp")
#: Every other pair: a file over a lowered segment threshold.
SEGMENTED_SIZE = 21 * MiB + 123
SMALL_SEGMENTS = {"segment_threshold": 8 * MiB, "segment_size": 4 * MiB}
#: Destinations that take a file in parallel segments (FTP takes one stream per file).
PARALLEL_WRITES = {"local", "sftp"}
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


def write_large(path: Path, size: int) -> Path:
    """``size`` bytes of incompressible data, no two 16 MiB blocks alike."""
    block = os.urandom(16 * MiB)
    with open(path, "wb") as fh:
        for i in range(-(-size // len(block))):
            fh.write((bytes([i % 251]) + block[1:])[: size - i * len(block)])
    return path


@pytest.fixture(scope="session")
def big_file(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """1 GiB, written once per session (for ``GIB_PAIR`` only)."""
    return write_large(tmp_path_factory.mktemp("bigfile") / "big.bin", GIB)


@pytest.fixture(scope="session")
def segmented_file(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """``SEGMENTED_SIZE`` bytes, written once per session."""
    return write_large(tmp_path_factory.mktemp("segmented") / "big.bin", SEGMENTED_SIZE)


@pytest.fixture
def small_segments(monkeypatch: pytest.MonkeyPatch) -> None:
    """Every copy engine of this test segments files of ``SMALL_SEGMENTS`` sizes (the
    CLI runs in this process; its other options are the user's)."""
    original = CopyEngine.__init__

    def init(self: CopyEngine, *, options: CopyOptions, **kwargs: Any) -> None:
        original(self, options=dataclasses.replace(options, **SMALL_SEGMENTS), **kwargs)

    monkeypatch.setattr(CopyEngine, "__init__", init)


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
    cleanup: list[Path],
) -> None:
    src = make_side(src_kind, "src", request, fresh_subdir, tmp_path)
    dst = make_side(dst_kind, "dst", request, fresh_subdir, tmp_path)
    cleanup += [src.root, dst.root]
    if (src_kind, dst_kind) == GIB_PAIR:
        fill_source(src, request.getfixturevalue("big_file"))
    else:
        request.getfixturevalue("small_segments")
        fill_source(src, request.getfixturevalue("segmented_file"))
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
    started = {e["path"]: e for e in first.events if e.get("type") == "file_started"}
    segments = started["large/big file.bin"]["segments"]
    assert (segments > 1) == (dst_kind in PARALLEL_WRITES), segments  # type: ignore[operator]

    again = run_copy_inprocess(src, dst, journal=journal)
    assert again.exit_code == 0, again.output
    assert again.summary["bytes_sent"] == 0
    assert again.summary["files_copied"] == 0
    assert again.summary["files_skipped"] == len(expected)
