"""fsmove never writes into what it only reads: a copy's source, both sides of a verify
(not even its capability probe). Checked on the servers' own folders: creating and
deleting a probe file would change the folder's modification time."""

from __future__ import annotations

import os
from collections.abc import Callable
from pathlib import Path

import pytest

from tests.copy_harness import put_files, run_copy_inprocess, side_for
from tests.servers import RunningServer

pytestmark = pytest.mark.interop

STAMP = 1_000_000_000


def pin(root: Path) -> None:
    os.utime(root, (STAMP, STAMP))


def untouched(root: Path) -> bool:
    return root.stat().st_mtime == STAMP


@pytest.mark.parametrize("src_kind", ["vsftpd_server", "pureftpd_server", "proftpd_server"])
def test_copy_and_verify_write_nothing_into_the_sides_they_read(
    src_kind: str, request: pytest.FixtureRequest,
    fresh_subdir: Callable[[RunningServer], RunningServer], tmp_path: Path,
) -> None:
    from typer.testing import CliRunner

    from fsmove.cli import app

    server = fresh_subdir(request.getfixturevalue(src_kind))
    put_files(server, server.root, {"a.txt": b"a" * 100, "sub/b.bin": os.urandom(5000)})
    src = side_for(src_kind, server, server.root, "src")
    dst_server = fresh_subdir(request.getfixturevalue("vsftpd_server"))
    dst = side_for("vsftpd_server", dst_server, dst_server.root, "dst")
    pin(server.root)
    copied = run_copy_inprocess(src, dst, journal=tmp_path / "job.db")
    assert copied.exit_code == 0, copied.output
    assert untouched(server.root), "the copy wrote into its source"
    pin(server.root)
    pin(dst_server.root)
    env = {**src.env, **dst.env}
    result = CliRunner().invoke(app, ["verify", src.url, dst.url, *src.options(),
                                      *dst.options()], env=env, catch_exceptions=False)
    assert result.exit_code == 0, result.output
    assert untouched(server.root) and untouched(dst_server.root), "verify wrote"
