"""``ftp://u@h/~/site``: the folder ``site`` in the folder the login lands in, as on
SFTP (tests/test_sftp_backend.py) and as curl and lftp read an ftp:// URL. Before session
35 the ``~`` was a folder name: a first copy made ``/~/site`` at the server's root (or
failed where the server's ``/`` is not writable). Against vsftpd with its account not
chrooted (the login lands in a folder that is not ``/``, as on many shared hosts) and
aioftp's server (no FEAT: the one-command-at-a-time login)."""

from __future__ import annotations

import os
import subprocess
import sys
from collections.abc import Callable
from pathlib import Path

import pytest

from tests.servers import RunningServer, start_aioftp, start_vsftpd

pytestmark = pytest.mark.interop


def _fsmove(*args: str, password: str) -> subprocess.CompletedProcess[str]:
    env = {**os.environ, "FSMOVE_DST_PASSWORD": password}
    return subprocess.run([sys.executable, "-m", "fsmove.cli", *args], env=env,
                          capture_output=True, text=True, timeout=120, check=False)


@pytest.mark.parametrize("kind", ["vsftpd-not-chrooted", "aioftp"])
def test_a_tilde_root_is_the_login_folder_on_the_first_run(
        own_server: Callable[..., RunningServer], tmp_path: Path, kind: str) -> None:
    if kind == "aioftp":
        server = own_server(start_aioftp)
    else:
        server = own_server(start_vsftpd, extra_config=["chroot_local_user=NO"])
    src = tmp_path / "src"
    (src / "a b").mkdir(parents=True)
    (src / "a b" / "x.txt").write_bytes(b"in the login folder\n")
    (src / "empty").write_bytes(b"")
    url = f"ftp://{server.user}@{server.host}:{server.port}/~/site"
    for command in ("copy", "verify"):
        done = _fsmove(command, str(src), url, "--journal", str(tmp_path / "job.db"),
                       password=server.password)
        assert done.returncode == 0, (command, done.stdout + done.stderr)
    landed = server.root / "site"
    assert (landed / "a b" / "x.txt").read_bytes() == b"in the login folder\n"
    assert (landed / "empty").stat().st_size == 0
    assert not (server.root / "~").exists() and not Path("/~").exists()
