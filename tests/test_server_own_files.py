"""A server's own bookkeeping in an account's root is not the user's tree.

pure-ftpd with quotas keeps ``/.ftpquota`` in the account's root and answers "553
Prohibited file name" to any RETR or DELE of it. Before session 33 a copy from such a
root ended partial (exit 3) on every run, verify called the file a difference (exit 4)
both ways, and ``copy --delete`` to it could never finish (found by an adversarial pass
on hosting configurations). Now it is left out of copy, ``--delete`` and verify, where
the URL names the account's root.
"""

from __future__ import annotations

import os
from collections.abc import Callable
from contextlib import AbstractContextManager
from pathlib import Path

import pytest
from typer.testing import CliRunner

from fsmove.cli import app
from tests.copy_harness import Side, run_copy_inprocess, side_for, tree_digests
from tests.servers import RunningServer, start_pureftpd, start_vsftpd


def _verify(src: Side, dst: Side) -> int:
    result = CliRunner().invoke(app, ["verify", src.url, dst.url, *src.options(),
                                      *dst.options()], env={**src.env, **dst.env},
                                catch_exceptions=False)
    return result.exit_code


@pytest.mark.interop
def test_pureftpd_quota_file_is_neither_copied_compared_nor_deleted(
        own_server: Callable[..., RunningServer], tmp_path: Path) -> None:
    server = own_server(start_pureftpd, extra_args=["--quota", "1000:20"])
    local = side_for("local", None, tmp_path / "site", "src")
    local.put({"index.php": b"<?php\n", "img/a.png": b"\x89PNG" * 100}, mtime=1_600_000_000)
    bucket = side_for("pure-ftpd", server, server.root, "dst")
    up = run_copy_inprocess(local, bucket, journal=tmp_path / "up.db")
    assert up.exit_code == 0, up.output
    assert (server.root / ".ftpquota").exists()  # the server keeps it: the case is real
    assert _verify(local, bucket) == 0
    again = run_copy_inprocess(local, bucket, "--delete", journal=tmp_path / "up.db")
    assert again.exit_code == 0, again.output
    assert (server.root / ".ftpquota").exists()

    source = side_for("pure-ftpd", server, server.root, "src")
    out = side_for("local", None, tmp_path / "out", "dst")
    down = run_copy_inprocess(source, out, journal=tmp_path / "down.db")
    assert down.exit_code == 0, down.output
    assert sorted(tree_digests(out.root)) == ["img/a.png", "index.php"]
    assert _verify(source, out) == 0


def test_only_an_ftp_account_root_has_server_files() -> None:
    from fsmove.transfers.endpoint import parse_endpoint
    from fsmove.transfers.not_the_tree import server_files

    assert server_files(parse_endpoint("ftp://u@h/")) == ("/.ftpquota",
                                                          ".pureftpd-upload.*")
    assert "/.ftpquota" in server_files(parse_endpoint("ftps://u@h"))
    assert server_files(parse_endpoint("ftp://u@h/www")) == (".pureftpd-upload.*",)
    assert server_files(parse_endpoint("sftp://u@h/")) == ()
    assert server_files(parse_endpoint("/tmp/x")) == ()


@pytest.mark.interop
@pytest.mark.parametrize(("start", "options"), [
    (start_pureftpd, {"extra_args": ["--prohibitdotfileswrite"]}),
    (start_vsftpd, {"extra_config": ["deny_file={.*}"]}),
], ids=["pure-ftpd-prohibitdotfileswrite", "vsftpd-deny_file-dot"])
def test_a_server_refusing_dot_names_gets_every_other_file(
        start: Callable[..., AbstractContextManager[RunningServer]],
        options: dict[str, list[str]], own_server: Callable[..., RunningServer],
        tmp_path: Path) -> None:
    """A host that forbids uploading dot files (``.htaccess``): fsmove's temporary
    names start with a dot too, so before session 33 every file failed ("553
    Prohibited file name ... check that the folder exists and is writable"), and every
    rerun again. The probe now finds that plain names are taken and files are written
    under their own names; only the dot files fail, each naming the refusal."""
    server = own_server(start, **options)
    src = side_for("local", None, tmp_path / "src", "src")
    files = {"index.php": b"<?php\n", "img/a.png": b"\x89PNG" * 1000,
             "big.bin": os.urandom(3 * 1024 * 1024), ".htaccess": b"Deny from all\n"}
    src.put(files, mtime=1_600_000_000)
    dst = side_for(server.kind, server, server.root, "dst")
    journal = tmp_path / "job.db"
    first = run_copy_inprocess(src, dst, journal=journal)
    assert first.exit_code == 3, first.output
    failed = dict(first.summary["failed"])  # type: ignore[arg-type]
    assert list(failed) == [".htaccess"], first.output
    assert "is writable" not in failed[".htaccess"], failed  # not a folder's fault
    copied = tree_digests(dst.root)
    wanted = {p: d for p, d in tree_digests(src.root).items() if p != ".htaccess"}
    assert copied == wanted, first.output
    again = run_copy_inprocess(src, dst, journal=journal)
    assert again.exit_code == 3, again.output
    assert again.summary["files_copied"] == 0, again.output
    assert not [p for p in os.listdir(server.root) if "fsmove" in p]


@pytest.mark.interop
def test_a_users_file_named_like_a_server_file_is_copied_and_compared(
        own_server: Callable[..., RunningServer], tmp_path: Path) -> None:
    """The server's own files are left out on its side only, and at a destination only
    where the source has no such path: a local ``.pureftpd-upload.notes`` (or a root
    ``.ftpquota``) is the user's. (The first version excluded them from both sides: not
    copied, and verify said everything matched.)"""
    server = own_server(start_vsftpd)
    dst = side_for("vsftpd", server, server.root, "dst")  # the account's root: "/"
    assert server.url().endswith(f":{server.port}/")
    src = side_for("local", None, tmp_path / "src", "src")
    files = {".pureftpd-upload.notes": b"real", "sub/.pureftpd-upload.1234.x": b"r",
             ".ftpquota": b"mine", "a.txt": b"a"}
    src.put(files, mtime=1_600_000_000)
    first = run_copy_inprocess(src, dst, journal=tmp_path / "job.db")
    assert first.exit_code == 0, first.output
    assert sorted(tree_digests(dst.root)) == sorted(files)
    assert _verify(src, dst) == 0
