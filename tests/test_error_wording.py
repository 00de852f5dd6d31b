"""Each error a new user met in issue 16 is pinned here, word for word where it matters:
one line, no traceback, the missing word back, no asyncio text, the options that fix a
self-signed certificate named, the folder that cannot be created named.

Real servers only (vsftpd with TLS, sshd), on 127.0.0.1, and refused ports on a free
port nobody listens on."""

from __future__ import annotations

import os
import socket
import subprocess
import sys
from collections.abc import Callable
from pathlib import Path

import pytest
from typer.testing import CliRunner

from fsmove.cli import app
from fsmove.exitcodes import ExitCode
from tests.servers import RunningServer, make_tree, start_vsftpd


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def _fsmove(*args: str, env: dict[str, str] | None = None) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", "fsmove.cli", *args], capture_output=True,
                          text=True, timeout=120, check=False,
                          env={**os.environ, **(env or {})}, stdin=subprocess.DEVNULL)


def _one_line(proc: subprocess.CompletedProcess[str], code: int) -> str:
    assert proc.returncode == code, proc.stderr
    assert "Traceback" not in proc.stderr
    lines = [line for line in proc.stderr.splitlines() if line.strip()]
    assert len(lines) == 1 and lines[0].startswith("fsmove: error: "), proc.stderr
    return lines[0]


@pytest.mark.parametrize("scheme", ["ftp", "ftps"])
def test_refused_ftp_port_says_cannot_connect_to(scheme: str, tmp_path: Path) -> None:
    port = _free_port()
    proc = _fsmove("copy", f"{scheme}://user@127.0.0.1:{port}/x", str(tmp_path / "d"),
                   "--timeout", "5", "--retries", "0", env={"FSMOVE_SRC_PASSWORD": "pw"})
    assert _one_line(proc, ExitCode.ERROR) == (
        f"fsmove: error: cannot connect to 127.0.0.1:{port}: connection refused; check the "
        "host and port and that the server runs")


def test_refused_sftp_port_has_no_asyncio_text(tmp_path: Path) -> None:
    port = _free_port()
    proc = _fsmove("copy", f"sftp://user@127.0.0.1:{port}/x", str(tmp_path / "d"),
                   "--timeout", "5", "--retries", "0", env={"FSMOVE_SRC_PASSWORD": "pw"})
    line = _one_line(proc, ExitCode.ERROR)
    assert line == (f"fsmove: error: cannot connect to user@127.0.0.1:{port}: connection "
                    "refused; check the host and port and that the SSH server runs")
    assert "Connect call failed" not in proc.stderr


def test_self_signed_ftps_names_the_options(
    vsftpd_tls_server: RunningServer, fresh_subdir: Callable[[RunningServer], RunningServer],
    tmp_path: Path,
) -> None:
    src = fresh_subdir(vsftpd_tls_server)
    make_tree(src, {"a.txt": b"alpha"})
    env = {"FSMOVE_SRC_PASSWORD": src.password}
    proc = _fsmove("copy", src.url(), str(tmp_path / "d"), "--retries", "0", env=env)
    line = _one_line(proc, ExitCode.AUTH)  # trust configuration, like a host key
    assert "certificate is not trusted" in line
    assert "--ca-file PEM" in line and "--insecure-tls" in line
    # ... and each of them does what the message says.
    assert src.ca_cert is not None
    ok = _fsmove("copy", src.url(), str(tmp_path / "d1"), "--ca-file", str(src.ca_cert),
                 "-q", env=env)
    assert ok.returncode == 0, ok.stderr
    insecure = _fsmove("copy", src.url(), str(tmp_path / "d2"), "--insecure-tls", "-q",
                       env=env)
    assert insecure.returncode == 0, insecure.stderr
    assert (tmp_path / "d2" / "a.txt").read_bytes() == b"alpha"


def test_a_folder_that_cannot_be_made_is_named(
    vsftpd_server: RunningServer, fresh_subdir: Callable[[RunningServer], RunningServer],
    tmp_path: Path,
) -> None:
    """The destination root under a plain file cannot be made: the message names that
    folder, never ``mkdir ''``."""
    dst = fresh_subdir(vsftpd_server)
    make_tree(dst, {"taken": b"a file, not a folder"})
    (tmp_path / "src").mkdir()
    (tmp_path / "src" / "a.txt").write_bytes(b"alpha")
    proc = _fsmove("copy", str(tmp_path / "src"), dst.url("taken/new"), "--retries", "0",
                   env={"FSMOVE_DST_PASSWORD": dst.password})
    assert proc.returncode != 0
    assert "Traceback" not in proc.stderr
    assert "''" not in proc.stderr, proc.stderr
    assert "taken/new" in proc.stderr, proc.stderr


def test_a_file_given_as_a_root_says_how_to_copy_it(
    vsftpd_server: RunningServer, fresh_subdir: Callable[[RunningServer], RunningServer],
    tmp_path: Path,
) -> None:
    """A file where a folder belongs (``fsmove copy report.pdf DST``): one line saying
    so and what to type instead, exit 1, nothing written; on a local disk and on FTP,
    as source and as destination. The hint works: the folder with ``--include '/NAME'``
    copies that file alone."""
    src = fresh_subdir(vsftpd_server)
    make_tree(src, {"report.pdf": b"%PDF", "other.txt": b"o"})
    env = {"FSMOVE_SRC_PASSWORD": src.password, "FSMOVE_DST_PASSWORD": src.password}
    local = tmp_path / "local"
    local.mkdir()
    (local / "report.pdf").write_bytes(b"%PDF")
    for source in (src.url("report.pdf"), str(local / "report.pdf")):
        line = _one_line(_fsmove("copy", source, str(tmp_path / "out"), env=env), 1)
        assert line.endswith("report.pdf is a file, not a folder: give the folder that "
                             "holds it, with --include '/report.pdf' to take that file "
                             "alone"), line
        assert not (tmp_path / "out").exists()
    line = _one_line(_fsmove("copy", str(local), src.url("other.txt"), env=env), 1)
    assert line.endswith("other.txt is a file, not a folder: give a folder (a missing one "
                         "is created)"), line
    # A file further up a local destination that does not exist yet: that file named
    # (it was "cannot create the destination folder …: .: not found").
    (tmp_path / "in-the-way").write_bytes(b"a file")
    line = _one_line(_fsmove("copy", str(local), str(tmp_path / "in-the-way" / "sub" / "x"),
                             env=env), 1)
    assert line.endswith(f"{tmp_path / 'in-the-way'} is a file, not a folder"), line
    assert src.password not in line
    done = _fsmove("copy", src.url(), str(tmp_path / "out"), "--include", "/report.pdf",
                   "-q", env=env)
    assert done.returncode == 0, done.stderr
    assert sorted(p.name for p in (tmp_path / "out").iterdir()) == ["report.pdf"]


def test_a_missing_root_says_where_the_login_lands(
    sshd_server: RunningServer, vsftpd_server: RunningServer, tmp_path: Path,
) -> None:
    """``sftp://u@h/www`` is ``/www`` (a URL's path starts at the server's root), while
    the user often meant the ``www`` of the folder the login lands in: on a server whose
    login lands below its root (OpenSSH: the account's home), the message says where
    and what to write. A chrooted login (vsftpd here: it lands in ``/``) gets no hint."""
    assert sshd_server.known_hosts is not None
    home = "/home/" + sshd_server.user
    sftp = sshd_server.url("/no-such-www/").replace(str(sshd_server.root), "")
    line = _one_line(_fsmove("copy", sftp, str(tmp_path / "out"), "--known-hosts",
                             str(sshd_server.known_hosts),
                             env={"FSMOVE_SRC_PASSWORD": sshd_server.password}), 1)
    assert line.endswith(f"does not exist: check the path (a URL's path starts at the "
                         f"server's root: this login lands in {home}; for a folder "
                         f"there, write {home}/no-such-www)"), line
    line = _one_line(_fsmove("copy", vsftpd_server.url("no-such-www/"),
                             str(tmp_path / "out"),
                             env={"FSMOVE_SRC_PASSWORD": vsftpd_server.password}), 1)
    assert line.endswith("does not exist: check the path"), line


_WARN_THEN_MAIN = (
    "import sys, warnings\n"
    "from fsmove import cli, gc_settings\n"
    "apply = gc_settings.apply\n"
    "def warn_then_apply():\n"
    "    warnings.warn('DSA is deprecated', UserWarning)\n"
    "    warnings.warn('old API', DeprecationWarning)\n"
    "    warnings.warn('coroutine never awaited (test)', RuntimeWarning)\n"
    "    apply()\n"
    "cli.gc_settings.apply = warn_then_apply\n"
    "sys.argv = ['fsmove', *sys.argv[1:]]\n"
    "cli.main()\n"
)


@pytest.mark.parametrize("debug", [False, True], ids=["plain", "debug"])
def test_library_warnings_are_shown_only_with_debug(debug: bool) -> None:
    """A library's notice (cryptography 51 deprecating DSA printed one at each asyncssh
    import: every SFTP error became three lines) never reaches a user's screen unless
    asked for with --debug; a RuntimeWarning, the sign of a bug, always does."""
    args = ["--debug", "--version"] if debug else ["--version"]
    proc = subprocess.run([sys.executable, "-c", _WARN_THEN_MAIN, *args], capture_output=True,
                          text=True, timeout=60, check=False, stdin=subprocess.DEVNULL,
                          env={k: v for k, v in os.environ.items() if k != "PYTHONWARNINGS"})
    assert proc.returncode == 0, proc.stderr
    assert proc.stdout.startswith("fsmove ")
    assert ("DSA is deprecated" in proc.stderr) is debug, proc.stderr
    assert ("old API" in proc.stderr) is debug, proc.stderr
    # A RuntimeWarning (a coroutine never awaited: a bug) is never hidden.
    assert "coroutine never awaited (test)" in proc.stderr, proc.stderr


@pytest.mark.interop
def test_a_destination_root_that_cannot_be_listed_is_named_in_words(
        own_server: Callable[..., RunningServer], tmp_path: Path) -> None:
    """vsftpd ``dirlist_enable=NO`` with ``--delete``: the root's failure read ":
    could not list this folder..." (its path is empty) before session 33."""
    server = own_server(start_vsftpd, extra_config=["dirlist_enable=NO"])
    src = tmp_path / "src"
    src.mkdir()
    (src / "a.txt").write_text("a")
    result = CliRunner().invoke(
        app, ["copy", str(src), server.url(), "--delete", "--journal", str(tmp_path / "j.db")],
        env={"FSMOVE_DST_PASSWORD": server.password})
    assert result.exit_code == 3, result.output
    assert "(the root folder): could not list this folder" in result.output
    assert "\n    : " not in result.output and "failed: :" not in result.output


def test_a_link_loop_above_a_local_root_names_the_root(tmp_path: Path) -> None:
    """Two links pointing at each other above the destination root: the error names the
    root, not "." (session 36's adversarial pass: ".: Too many levels of symbolic
    links")."""
    (tmp_path / "src").mkdir()
    (tmp_path / "src" / "a.txt").write_bytes(b"alpha")
    (tmp_path / "a").symlink_to(tmp_path / "b")
    (tmp_path / "b").symlink_to(tmp_path / "a")
    root = tmp_path / "a" / "x" / "y"
    line = _one_line(_fsmove("copy", str(tmp_path / "src"), str(root),
                             env={"HOME": str(tmp_path)}), 1)
    assert line == f"fsmove: error: {root}: Too many levels of symbolic links", line
