"""``~/.ssh/config`` as ``ssh`` reads it: ``UserKnownHostsFile`` and
``StrictHostKeyChecking`` for the host being reached, against a real sshd; and a
``~/.netrc`` that others can read gets a warning line, like curl's.

fsmove runs as a child process with ``HOME`` set to a scratch folder, so the config,
known_hosts and netrc it reads are the test's own."""

from __future__ import annotations

import os
import subprocess
import sys
from collections.abc import Callable
from pathlib import Path

from fsmove.exitcodes import ExitCode
from tests.servers import RunningServer, make_tree


def _fsmove(*args: str, home: Path, env: dict[str, str] | None = None
            ) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", "fsmove.cli", *args], capture_output=True,
                          text=True, timeout=120, check=False, stdin=subprocess.DEVNULL,
                          env={**os.environ, "HOME": str(home), **(env or {})})


def _home(tmp_path: Path, config: str) -> Path:
    home = tmp_path / "home"
    (home / ".ssh").mkdir(parents=True)
    (home / ".ssh" / "config").write_text(config)
    return home


def _source(sshd_server: RunningServer,
            fresh_subdir: Callable[[RunningServer], RunningServer]) -> RunningServer:
    src = fresh_subdir(sshd_server)
    make_tree(src, {"a.txt": b"alpha"})
    return src


def test_user_known_hosts_file_of_ssh_config_is_used(
    sshd_server: RunningServer, fresh_subdir: Callable[[RunningServer], RunningServer],
    tmp_path: Path,
) -> None:
    src = _source(sshd_server, fresh_subdir)
    assert src.known_hosts is not None and src.client_key is not None
    home = _home(tmp_path, f"Host {src.host}\n  UserKnownHostsFile {src.known_hosts}\n")
    proc = _fsmove("copy", src.url(), str(tmp_path / "dst"), "--identity",
                   str(src.client_key), "-q", home=home)
    assert proc.returncode == 0, proc.stderr
    assert (tmp_path / "dst" / "a.txt").read_bytes() == b"alpha"
    assert not (home / ".ssh" / "known_hosts").exists()  # nothing recorded elsewhere


def test_strict_host_key_checking_accept_new_records_in_that_file(
    sshd_server: RunningServer, fresh_subdir: Callable[[RunningServer], RunningServer],
    tmp_path: Path,
) -> None:
    src = _source(sshd_server, fresh_subdir)
    assert src.client_key is not None
    mine = tmp_path / "my_known_hosts"
    strict = _home(tmp_path / "strict", f"Host {src.host}\n  UserKnownHostsFile {mine}\n")
    refused = _fsmove("copy", src.url(), str(tmp_path / "d0"), "--identity",
                      str(src.client_key), "-q", home=strict)
    assert refused.returncode == ExitCode.AUTH, refused.stderr
    assert "unknown" in refused.stderr and str(mine) in refused.stderr

    home = _home(tmp_path, f"Host {src.host}\n  UserKnownHostsFile {mine}\n"
                           "  StrictHostKeyChecking accept-new\n")
    proc = _fsmove("copy", src.url(), str(tmp_path / "dst"), "--identity",
                   str(src.client_key), "-q", home=home)
    assert proc.returncode == 0, proc.stderr
    assert f"[{src.host}]:{src.port}" in mine.read_text()
    again = _fsmove("copy", src.url(), str(tmp_path / "dst"), "--identity",
                    str(src.client_key), "-q", home=strict)  # now on record: trusted
    assert again.returncode == 0, again.stderr


def test_a_netrc_others_can_read_gets_a_warning(tmp_path: Path) -> None:
    home = tmp_path / "home"
    home.mkdir()
    netrc = home / ".netrc"
    netrc.write_text("machine 127.0.0.1 login user password pw-from-netrc\n")
    src = tmp_path / "src"
    src.mkdir()
    (src / "a.txt").write_bytes(b"alpha")
    # An FTP destination nobody listens on: the netrc is read while resolving it.
    args = ("copy", str(src), "ftp://user@127.0.0.1:9/x", "--retries", "0", "--timeout", "2")
    netrc.chmod(0o644)
    loose = _fsmove(*args, home=home)
    assert (f"fsmove: warning: {netrc} can be read by other users (mode 0644): its "
            f"passwords are not private; run: chmod 600 {netrc}") in loose.stderr
    assert "pw-from-netrc" not in loose.stderr + loose.stdout
    netrc.chmod(0o600)
    tight = _fsmove(*args, home=home)
    assert "warning" not in tight.stderr, tight.stderr
