"""A private source folder stays private at the destination.

Before session 33 every folder fsmove made had the destination's default mode (0755 on
most servers): a 0700 ``private/`` came out listable by everyone, its files keeping
their own bits (found by an adversarial pass). Now a folder that keeps its names or its
way in from group or others is made with its source bits; any other folder still gets
the destination's default (a server's own policy is not overridden for nothing).
"""

from __future__ import annotations

import os
import stat
from pathlib import Path

import pytest

from fsmove.transfers.copy.folders import is_private_folder
from tests.copy_harness import Served, run_copy_inprocess, side_for, tree_digests


@pytest.mark.interop
@pytest.mark.parametrize("dst_fixture", ["local", "sshd_server", "vsftpd_server"])
def test_private_folders_are_made_private(dst_fixture: str, served: Served,
                                          tmp_path: Path) -> None:
    src = side_for("local", None, tmp_path / "src", "src")
    src.put({"private/keys/id.txt": b"secret", "team/notes.txt": b"n",
             "public/index.html": b"<p>"}, mtime=1_600_000_000)
    os.chmod(src.root / "private", 0o700)
    os.chmod(src.root / "private" / "keys", 0o711)
    os.chmod(src.root / "team", 0o750)
    src.put({"sealed/a.txt": b"a"}, mtime=1_600_000_000)
    os.chmod(src.root / "sealed", 0o500)  # read-only at the source: the copy must write
    if dst_fixture == "local":
        (tmp_path / "dst").mkdir()
        dst = side_for("local", None, tmp_path / "dst", "dst")
    else:
        _server, dst = served(dst_fixture, "dst")
    result = run_copy_inprocess(src, dst, journal=tmp_path / "job.db")
    assert result.exit_code == 0, result.output
    assert tree_digests(dst.root) == tree_digests(src.root)

    def mode(rel: str) -> int:
        return stat.S_IMODE((dst.root / rel).stat().st_mode)

    assert mode("private") == 0o700
    assert mode("private/keys") == 0o711
    assert mode("team") == 0o750
    assert mode("sealed") == 0o700  # what fsmove can write into, still private
    assert mode("public") & 0o055 == 0o055  # the destination's default, readable


def test_which_folders_keep_their_bits() -> None:
    assert is_private_folder(0o700) and is_private_folder(0o750)
    assert is_private_folder(0o711)  # others may enter, not list
    assert not is_private_folder(0o755) and not is_private_folder(0o775)
    assert not is_private_folder(None)  # a source that does not say
