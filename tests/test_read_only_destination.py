"""A destination that refuses every write (OpenSSH's `internal-sftp -R`, a read-only
account): every file fails with "permission denied", and the summary says what to fix
rather than "rerun the same command to retry them", which only fails them again."""

from __future__ import annotations

import os
import subprocess
import sys
from collections.abc import Callable
from pathlib import Path

import pytest

from tests.servers import RunningServer, start_sshd

pytestmark = pytest.mark.interop


def test_a_read_only_sftp_destination_says_what_to_fix(
        own_server: Callable[..., RunningServer], tmp_path: Path) -> None:
    server = own_server(start_sshd, subsystem="internal-sftp -R")
    (server.root / "dst").mkdir()
    src = tmp_path / "src"
    src.mkdir()
    (src / "a.txt").write_bytes(b"a")
    (src / "b.txt").write_bytes(b"b")
    url = f"sftp://{server.user}@{server.host}:{server.port}{server.root}/dst"
    env = {**os.environ, "FSMOVE_DST_PASSWORD": server.password}
    done = subprocess.run(
        [sys.executable, "-m", "fsmove.cli", "copy", str(src), url, "--known-hosts",
         str(server.known_hosts), "--journal", str(tmp_path / "job.db"), "--retries", "0"],
        env=env, capture_output=True, text=True, timeout=120, check=False)
    assert done.returncode == 3, done.stdout + done.stderr
    out = done.stdout + done.stderr
    assert "FAILED:   2 files (the destination refused to write them: give the account " \
        "the right to write there, then rerun the same command)" in out, out
    assert "Traceback" not in out and not list((server.root / "dst").iterdir())
