"""A destination folder that cannot be made (its parent not writable) fails what is
below it; the rest is copied and the run ends "partial" (exit 3) with its summary.

Before session 32 it stopped the whole copy: "fsmove: error: mkdir 'd22' ... cannot
create it" (over SFTP "d38: permission denied", not even saying it was a folder),
exit 1, no summary of what had been copied.
"""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from tests.copy_harness import Served, run_copy_inprocess, side_for, tree_digests


@pytest.mark.interop
@pytest.mark.parametrize("server_fixture", ["vsftpd_server", "sshd_server"])
def test_a_folder_that_cannot_be_made_fails_what_is_below_it(
        server_fixture: str, served: Served,
        tmp_path: Path) -> None:
    server, dst = served(server_fixture, "dst")
    locked = server.root / "locked"
    locked.mkdir()
    os.chown(locked, *server.owner)
    (tmp_path / "src").mkdir()
    src = side_for("local", None, tmp_path / "src", "src")
    others = {f"ok/f{i:02d}.txt": os.urandom(200) for i in range(30)}
    src.put({**others, "locked/sub/a.txt": b"a", "locked/sub/deeper/b.txt": b"b",
             "top.txt": b"t"}, mtime=1_600_000_000)
    locked.chmod(0o555)  # the account may enter it, not make anything in it
    try:
        result = run_copy_inprocess(src, dst, journal=tmp_path / "job.db")
    finally:
        locked.chmod(0o755)
    assert result.exit_code == 3, result.output
    failed = dict(result.summary["failed"])  # type: ignore[arg-type]
    assert failed and all(p.startswith("locked/sub") for p in failed), failed
    assert any("locked/sub" in why for why in failed.values()), failed
    copied = tree_digests(dst.root)
    assert set(others) | {"top.txt"} <= set(copied), result.output
