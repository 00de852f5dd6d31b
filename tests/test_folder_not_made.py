"""A destination folder that cannot be made (its parent not writable) fails what is
below it; the rest is copied and the run ends "partial" (exit 3) with its summary.

Before session 32 it stopped the whole copy: "fsmove: error: mkdir 'd22' ... cannot
create it" (over SFTP "d38: permission denied", not even saying it was a folder),
exit 1, no summary of what had been copied.
"""

from __future__ import annotations

import os
from collections.abc import Callable
from contextlib import AbstractContextManager
from pathlib import Path

import pytest

from tests.copy_harness import Served, run_copy_inprocess, side_for, tree_digests
from tests.servers import RunningServer, start_proftpd, start_vsftpd


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


@pytest.mark.interop
@pytest.mark.parametrize(("start", "lines"), [
    (start_vsftpd, ["deny_file={cgi-bin}"]),
    (start_proftpd, ['PathDenyFilter "cgi-bin"']),
], ids=["vsftpd-deny_file", "proftpd-PathDenyFilter"])
def test_a_top_folder_the_server_refuses_by_name_fails_alone(
        start: Callable[..., AbstractContextManager[RunningServer]], lines: list[str],
        own_server: Callable[..., RunningServer], tmp_path: Path) -> None:
    """A hosting provider's server refuses one folder name (``cgi-bin``) in a root it
    lets the copy write into: that folder fails, the rest is copied, exit 3. Before
    session 33 the run stopped at once, "the destination root is not writable" (exit
    1), with ``index.html`` never copied, on every rerun."""
    server = own_server(start, extra_config=lines)
    dst = side_for(server.kind, server, server.root, "dst")
    src = side_for("local", None, tmp_path / "src", "src")
    src.put({"index.html": b"<p>hi</p>", "cgi-bin/x.cgi": b"#!/bin/sh\n",
             "img/c.png": b"\x89PNG"}, mtime=1_600_000_000)
    result = run_copy_inprocess(src, dst, journal=tmp_path / "job.db")
    assert result.exit_code == 3, result.output
    failed = dict(result.summary["failed"])  # type: ignore[arg-type]
    assert sorted(failed) == ["cgi-bin/x.cgi"], result.output
    assert "the destination root is not writable" not in result.output
    digests = tree_digests(dst.root)
    assert sorted(digests) == ["img/c.png", "index.html"]
