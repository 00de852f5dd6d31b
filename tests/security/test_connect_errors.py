"""A refused port and an unknown host: one-line error, exit 1, no traceback.

The unknown host must fail without asking any DNS server (tests talk to 127.0.0.0/8
only): fsmove runs in its own mount namespace where /etc/nsswitch.conf resolves host
names from /etc/hosts alone, so the lookup fails locally, as it would for a typo."""

from __future__ import annotations

import os
import shutil
import socket
import subprocess
import sys
from pathlib import Path

import pytest

from fsmove.exitcodes import ExitCode


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def run_fsmove(args: list[str], *, wrapper: list[str] | None = None,
               env: dict[str, str] | None = None) -> subprocess.CompletedProcess[str]:
    argv = [*(wrapper or []), sys.executable, "-m", "fsmove.cli", *args]
    return subprocess.run(argv, capture_output=True, text=True, timeout=120, check=False,
                          env={**os.environ, **(env or {})})


def assert_one_line_error(proc: subprocess.CompletedProcess[str], code: int, *words: str) -> None:
    assert proc.returncode == code, proc.stderr
    assert "Traceback" not in proc.stderr
    lines = [line for line in proc.stderr.splitlines() if line.strip()]
    assert len(lines) == 1 and lines[0].startswith("fsmove: error:"), proc.stderr
    for w in words:
        assert w in lines[0], lines[0]


@pytest.mark.parametrize("scheme", ["ftp", "ftps", "sftp"])
def test_refused_port(scheme: str, tmp_path: Path) -> None:
    port = free_port()
    proc = run_fsmove(
        ["copy", f"{scheme}://user@127.0.0.1:{port}/x", str(tmp_path / "dst"),
         "--timeout", "5", "--retries", "0"],
        env={"FSMOVE_SRC_PASSWORD": "pw-never-shown"},
    )
    assert_one_line_error(proc, ExitCode.ERROR, "127.0.0.1")
    assert "pw-never-shown" not in proc.stderr + proc.stdout


@pytest.fixture
def no_dns(tmp_path: Path) -> list[str]:
    """A wrapper command running its argument where host names come from /etc/hosts only."""
    if os.geteuid() != 0 or shutil.which("unshare") is None:
        pytest.fail("this test needs root and unshare(1) (util-linux) to isolate name lookups")
    conf = tmp_path / "nsswitch.conf"
    conf.write_text("passwd: files\ngroup: files\nshadow: files\nhosts: files\n")
    script = f'mount --bind "{conf}" /etc/nsswitch.conf && exec "$@"'
    return ["unshare", "--mount", "--propagation", "private", "sh", "-c", script, "sh"]


@pytest.mark.parametrize("scheme", ["ftp", "sftp"])
def test_unknown_host(scheme: str, tmp_path: Path, no_dns: list[str]) -> None:
    host = "no-such-bucket.fsmove-test.invalid"
    proc = run_fsmove(
        ["copy", f"{scheme}://user@{host}/x", str(tmp_path / "dst"), "--timeout", "5",
         "--retries", "0"],
        wrapper=no_dns,
        env={"FSMOVE_SRC_PASSWORD": "pw-never-shown"},
    )
    assert_one_line_error(proc, ExitCode.ERROR, host)
