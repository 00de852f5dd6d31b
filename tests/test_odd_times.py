"""Modification times a destination cannot take (before 1970, after 2106).

Before: one file dated 1938 or 2200 stopped a whole copy to SFTP ("internal error:
OverflowError": SFTP version 3 carries a time as an unsigned 32-bit count of seconds),
and failed on every run to proftpd (it refuses a time before 1970 with 501). Now the
file is placed, complete, and said ("time not kept": a ``time_not_kept`` event and the
summary's ``times_not_kept``), the run is ok, and a rerun skips it (the journal holds
it copied). vsftpd takes both times.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from tests.servers import RunningServer

TIMES = {"old-1938.txt": -1_000_000_000, "far-2200.txt": 7_258_118_400,
         "plain-2023.txt": 1_700_000_000}
#: What each server cannot keep.
NOT_KEPT = {
    "sshd_server": {"old-1938.txt", "far-2200.txt"},
    "proftpd_server": {"old-1938.txt"},
    "vsftpd_server": set(),
}


def run_copy(src: Path, server: RunningServer, tmp_path: Path
             ) -> tuple[subprocess.CompletedProcess[str], list[dict[str, object]]]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("FSMOVE_")}
    env.update(FSMOVE_DST_PASSWORD=server.password, XDG_STATE_HOME=str(tmp_path / "state"))
    args = [sys.executable, "-m", "fsmove.cli", "copy", str(src), server.url(), "--json",
            "--journal", str(tmp_path / "job.sqlite")]
    if server.known_hosts is not None:
        args += ["--known-hosts", str(server.known_hosts)]
    run = subprocess.run(args, env=env, capture_output=True, text=True, timeout=300,
                         check=False, stdin=subprocess.DEVNULL)
    return run, [json.loads(line) for line in run.stdout.splitlines() if line.startswith("{")]


@pytest.mark.parametrize("server_fixture", sorted(NOT_KEPT))
def test_a_time_the_destination_cannot_take_is_said_not_failed(
        server_fixture: str, request: pytest.FixtureRequest, fresh_subdir: object,
        tmp_path: Path) -> None:
    server = fresh_subdir(request.getfixturevalue(server_fixture))  # type: ignore[operator]
    src = tmp_path / "src"
    src.mkdir()
    for name, when in TIMES.items():
        (src / name).write_text(name)
        os.utime(src / name, (when, when))
    run, events = run_copy(src, server, tmp_path)
    assert run.returncode == 0, run.stderr
    summary = events[-1]
    assert summary["type"] == "summary" and summary["files_copied"] == len(TIMES)
    noted = {e["path"] for e in events if e["type"] == "time_not_kept"}
    assert noted == NOT_KEPT[server_fixture]
    assert {p for p, _why in summary["times_not_kept"]} == noted  # type: ignore[union-attr]
    for name, when in TIMES.items():
        placed = server.root / name
        assert placed.read_text() == name
        if name not in noted:
            assert int(placed.stat().st_mtime) == when
    again, events2 = run_copy(src, server, tmp_path)
    assert again.returncode == 0, again.stderr
    assert events2[-1]["files_copied"] == 0 and events2[-1]["files_skipped"] == len(TIMES)
