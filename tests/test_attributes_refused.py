"""A destination that takes a file's bytes but refuses to set its attributes.

Found by session 33's adversarial pass on hosting configurations:

* proftpd with ``<Limit SITE_CHMOD> DenyAll`` (its ``SITE HELP`` still lists CHMOD): a
  0600 ``.env`` and a 0600 key were placed with the server's default 0644, "Copy ok",
  not a word. Now each private file placed so is named ("permissions not kept"), the run
  stays ok (a rerun could not do better) and a public file at 0644 is not news.
* OpenSSH with ``internal-sftp -P setstat,fsetstat``: every file was reported FAILED
  although it was in place, and every rerun sent every byte again and failed again. Now
  the file counts as copied, its time and mode are said not kept, and a rerun skips it.
"""

from __future__ import annotations

import os
import stat
from collections.abc import Callable
from pathlib import Path

import pytest

from tests.copy_harness import run_copy_subprocess, side_for, tree_digests
from tests.servers import RunningServer, start_proftpd, start_sshd

PRIVATE = {".env": (b"DB_PASSWORD=hunter2\n", 0o600),
           "keys/secret.key": (os.urandom(2 * 1024 * 1024), 0o640)}
PUBLIC = {"index.php": (b"<?php echo 'hi';\n", 0o644)}


def _source(tmp_path: Path) -> Path:
    root = tmp_path / "src"
    for rel, (data, mode) in (PRIVATE | PUBLIC).items():
        path = root / rel
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_bytes(data)
        os.chmod(path, mode)
        os.utime(path, (1_600_000_000, 1_600_000_000))
    return root


@pytest.mark.interop
def test_private_files_an_ftp_server_would_not_chmod_are_named(
        own_server: Callable[..., RunningServer], tmp_path: Path) -> None:
    server = own_server(start_proftpd,
                        extra_config=["<Limit SITE_CHMOD>", "  DenyAll", "</Limit>"])
    src = side_for("local", None, _source(tmp_path), "src")
    dst = side_for("proftpd", server, server.root, "dst")
    journal = tmp_path / "job.db"
    first = run_copy_subprocess(src, dst, journal=journal)
    assert first.exit_code == 0, first.output
    named = dict(first.summary["modes_not_kept"])  # type: ignore[arg-type]
    assert sorted(named) == sorted(PRIVATE), first.output
    assert all("SITE CHMOD" in why for why in named.values()), named
    said = sorted(str(e["path"]) for e in first.events if e.get("type") == "mode_not_kept")
    assert said == sorted(PRIVATE), first.output
    assert first.summary["times_not_kept"] == [], first.output
    assert tree_digests(dst.root) == tree_digests(src.root)
    assert stat.S_IMODE((dst.root / ".env").stat().st_mode) != 0o600  # the server's default
    again = run_copy_subprocess(src, dst, journal=journal)
    assert again.exit_code == 0, again.output
    assert again.summary["files_copied"] == 0, again.output


@pytest.mark.interop
def test_an_sftp_server_refusing_setstat_still_gets_every_file_once(
        own_server: Callable[..., RunningServer], tmp_path: Path) -> None:
    server = own_server(start_sshd,
                        subsystem="internal-sftp -P setstat,fsetstat,lsetstat@openssh.com")
    src = side_for("local", None, _source(tmp_path), "src")
    dst = side_for("sshd", server, server.root, "dst")
    journal = tmp_path / "job.db"
    first = run_copy_subprocess(src, dst, journal=journal)
    assert first.exit_code == 0, first.output
    assert first.summary["files_copied"] == len(PRIVATE | PUBLIC), first.output
    every = sorted(PRIVATE | PUBLIC)
    assert sorted(dict(first.summary["times_not_kept"])) == every, first.output  # type: ignore[arg-type]
    assert sorted(dict(first.summary["modes_not_kept"])) == every, first.output  # type: ignore[arg-type]
    assert "SETSTAT" in first.output
    assert tree_digests(dst.root) == tree_digests(src.root)
    again = run_copy_subprocess(src, dst, journal=journal)
    assert again.exit_code == 0, again.output
    assert again.summary["files_copied"] == 0, again.output
