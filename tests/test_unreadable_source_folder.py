"""A source folder that can be entered but not read (mode 0711, not the server account's)
is reported as unreadable, and nothing is made up in its place.

Before session 32, vsftpd (which answers ``LIST -a`` of such a folder with one line:
the folder itself) made fsmove take it for a subfolder of the same name: a phantom
``logs/logs`` was created at the destination, the run failed on "logs/logs: no such
folder", and the real cause, and the files it hid, were never named. ``verify`` listed
the destination's copies of them as "not in the source" (exit 4, not 3).
"""

from __future__ import annotations

import os
from pathlib import Path

import pytest
from typer.testing import CliRunner

from fsmove.cli import app
from tests.copy_harness import Served, run_copy_inprocess, side_for, tree_digests, tree_dirs


@pytest.mark.interop
@pytest.mark.parametrize("server_fixture", ["vsftpd_server", "pureftpd_server",
                                            "proftpd_server"])
def test_a_folder_that_can_be_entered_but_not_read(server_fixture: str,
                                                   served: Served,
                                                   tmp_path: Path) -> None:
    server, src = served(server_fixture, "src")
    src.put({"a.txt": b"a", "logs/s.log": b"secret", "empty/.keep": b""},
            mtime=1_600_000_000)
    os.chown(server.root / "logs", 0, 0)  # not the account's: it may enter, not read
    os.chmod(server.root / "logs", 0o711)
    (tmp_path / "dst").mkdir()
    dst = side_for("local", None, tmp_path / "dst", "dst")
    result = run_copy_inprocess(src, dst, journal=tmp_path / "job.db")
    assert result.exit_code == 3, result.output
    failed = dict(result.summary["failed"])  # type: ignore[arg-type]
    assert list(failed) == ["logs"], result.output
    assert "logs/logs" not in tree_dirs(dst.root)
    assert set(tree_digests(dst.root)) == {"a.txt", "empty/.keep"}
    checked = CliRunner().invoke(
        app, ["verify", src.url, dst.url, *src.options(), "-q"], env=src.env,
        catch_exceptions=False)
    assert checked.exit_code == 3, checked.output
