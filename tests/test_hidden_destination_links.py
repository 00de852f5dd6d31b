"""A dangling symbolic link at the destination where the source has a folder fails that
folder only, on every FTP server, and no rerun is stuck on it.

proftpd's MLSD leaves dangling links out of its listings, so fsmove did not know the
name was taken: its MKD got "550 ... File exists" and, before session 32, that stopped
the whole copy ("fsmove: error: mkdir 'd' ...", exit 1), leaving partial files behind,
and every rerun stopped the same way.
"""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from tests.copy_harness import Served, run_copy_inprocess, side_for


@pytest.mark.interop
@pytest.mark.parametrize("server_fixture", ["proftpd_server", "vsftpd_server",
                                            "pureftpd_server"])
def test_a_dangling_link_where_a_folder_goes_fails_that_folder(
        server_fixture: str, served: Served,
        tmp_path: Path) -> None:
    server, dst = served(server_fixture, "dst")
    for name in ("d", "e"):
        os.symlink("nowhere", server.root / name)
        os.lchown(server.root / name, *server.owner)
    (tmp_path / "src").mkdir()
    src = side_for("local", None, tmp_path / "src", "src")
    files = {f"f{i:02d}.txt": os.urandom(100) for i in range(20)}
    src.put({**files, "d/g.txt": b"below the link"}, mtime=1_600_000_000)
    (src.root / "e").mkdir()  # an empty folder: made after the files, by itself
    journal = tmp_path / "job.db"
    for _run in range(2):
        result = run_copy_inprocess(src, dst, journal=journal)
        assert result.exit_code == 3, result.output
        failed = {p for p, _why in result.summary["failed"]}  # type: ignore[union-attr]
        refused = {p for p, _why in result.summary["refused"]}  # type: ignore[union-attr]
        assert failed | refused <= {"d", "d/g.txt", "e"}, result.output
        assert {"d", "d/g.txt"} & (failed | refused), result.output
        for name, data in files.items():
            assert (dst.root / name).read_bytes() == data, result.output
        assert os.readlink(server.root / "d") == os.readlink(server.root / "e") == "nowhere"
        assert not (tmp_path / "nowhere").exists()
