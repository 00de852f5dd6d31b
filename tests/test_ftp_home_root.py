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


def test_a_tilde_root_is_refused_where_the_server_will_not_say_its_login_folder(
        own_server: Callable[..., RunningServer], tmp_path: Path) -> None:
    """proftpd with PWD denied: the login folder cannot be told. Before session 36 ``~``
    then meant the server's root, and ``--delete`` emptied it (every file outside the
    login folder deleted, exit 0). Now one line, exit 1, nothing written or deleted."""
    from tests.servers import make_tree, start_proftpd

    server = own_server(start_proftpd, extra_config=[
        "DefaultChdir /home", "<Limit PWD XPWD>", "DenyAll", "</Limit>"])
    make_tree(server, {"home/in-home.txt": b"in home", "www/index.html": b"site",
                       "rootfile.txt": b"root"})
    before = sorted(p.relative_to(server.root) for p in server.root.rglob("*"))
    src = tmp_path / "src"
    src.mkdir()
    (src / "new.txt").write_bytes(b"new\n")
    url = f"ftp://{server.user}@{server.host}:{server.port}/~"
    done = _fsmove("copy", str(src), url, "--delete", "--journal", str(tmp_path / "j.db"),
                   password=server.password)
    assert done.returncode == 1, done.stdout + done.stderr
    last = done.stderr.strip().splitlines()[-1]
    assert last.startswith("fsmove: error: ") and "does not say where this login lands" in last
    assert "write the folder's path from the server's root instead of ~" in last
    assert "Traceback" not in done.stderr
    assert sorted(p.relative_to(server.root) for p in server.root.rglob("*")) == before
