"""Files whose server path is long (~1,200 bytes, far below the 4,096 the README allows)
placed on proftpd, plain and over TLS. Before session 35: proftpd cuts an MLST reply
line at ~1,024 bytes, so the check of a placed file read "no file at that name" and
the file was sent again six times and failed (exit 3) though it was there; over TLS
the placing batch of six long commands (one write, ~4.4 KiB) was never answered
(proftpd reads 4 KiB of a TLS record and waits on the socket) and every retry waited
for the timeout."""

from __future__ import annotations

import os
import subprocess
import sys
from collections.abc import Callable
from pathlib import Path

import pytest

from tests.servers import RunningServer, start_proftpd

pytestmark = pytest.mark.interop


@pytest.mark.parametrize("tls", [False, True], ids=["ftp", "ftps"])
def test_a_long_path_is_placed_and_said_copied_at_once(
        own_server: Callable[..., RunningServer], tmp_path: Path, tls: bool) -> None:
    server = own_server(start_proftpd, tls=tls)
    src = tmp_path / "src"
    deep = src
    for i in range(6):
        deep = deep / (f"{i}" + "D" * 199)
    deep.mkdir(parents=True)
    (deep / "deep.txt").write_bytes(b"at the end of a long path\n")
    (src / "short.txt").write_bytes(b"short\n")
    extra = ["--ca-file", str(server.ca_cert)] if tls else []
    env = {**os.environ, "FSMOVE_DST_PASSWORD": server.password}
    done = subprocess.run(
        [sys.executable, "-m", "fsmove.cli", "copy", str(src), server.url("r"), "--json",
         "--retries", "0", "--timeout", "60", "--journal", str(tmp_path / "job.db"),
         *extra], env=env, capture_output=True, text=True, timeout=300, check=False)
    assert done.returncode == 0, done.stdout[-3000:] + done.stderr[-3000:]
    placed = server.root / "r" / deep.relative_to(src) / "deep.txt"
    assert len(str(placed.relative_to(server.root))) > 1200
    assert placed.read_bytes() == b"at the end of a long path\n"
    assert '"files_restarted": 0' in done.stdout and '"files_failed": 0' in done.stdout
