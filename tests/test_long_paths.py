"""A source path longer than a server takes (``copy/name_gate.py``).

A server works on paths of at most 4,096 bytes (Linux's PATH_MAX, its NUL included) and
vsftpd ends a session whose command line passes 4,096 bytes. Before the check, a tree
45 folders of 120 characters deep (a local source reads it through folder handles)
made vsftpd drop the session on MKD (the file retried 5 times, 31 s, then the whole
run stopped on "connection lost"), proftpd took 4 minutes to fail it and sshd answered
"Bad message". Now the folder that crosses the limit is refused with its length, the
rest is copied, and the run ends at once (exit 3).
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from tests.servers import RunningServer

LEVEL = "d" * 120


def deep_tree(root: Path, levels: int) -> str:
    """``root/short.txt`` and a file ``levels`` folders of 121 bytes down (made through
    folder handles: its path is longer than the kernel takes in one piece)."""
    root.mkdir()
    (root / "short.txt").write_bytes(b"an ordinary file")
    fd = os.open(root, os.O_RDONLY)
    try:
        for i in range(levels):
            name = f"{i:03d}{LEVEL[3:]}"
            os.mkdir(name, dir_fd=fd)
            below = os.open(name, os.O_RDONLY, dir_fd=fd)
            os.close(fd)
            fd = below
        leaf = os.open("leaf.txt", os.O_WRONLY | os.O_CREAT, 0o644, dir_fd=fd)
        os.write(leaf, b"deep")
        os.close(leaf)
    finally:
        os.close(fd)
    return "/".join(f"{i:03d}{LEVEL[3:]}" for i in range(levels)) + "/leaf.txt"


@pytest.mark.parametrize("server_fixture", ["vsftpd_server", "sshd_server"])
def test_a_path_longer_than_the_server_takes_is_refused_at_once(
        server_fixture: str, request: pytest.FixtureRequest,
        fresh_subdir: object, tmp_path: Path) -> None:
    server: RunningServer = request.getfixturevalue(server_fixture)
    server = fresh_subdir(server)  # type: ignore[operator]
    src = tmp_path / "src"
    deep = deep_tree(src, 45)
    assert len(deep) > 5000
    env = {k: v for k, v in os.environ.items() if not k.startswith("FSMOVE_")}
    env.update(FSMOVE_DST_PASSWORD=server.password, XDG_STATE_HOME=str(tmp_path / "state"))
    args = [sys.executable, "-m", "fsmove.cli", "copy", str(src), server.url(), "--json"]
    if server.known_hosts is not None:
        args += ["--known-hosts", str(server.known_hosts)]
    run = subprocess.run(args, env=env, capture_output=True, text=True, timeout=300,
                         check=False, stdin=subprocess.DEVNULL)
    assert run.returncode == 3, run.stderr
    summary = next(json.loads(line) for line in run.stdout.splitlines()
                   if '"summary"' in line)
    assert summary["files_copied"] == 1 and summary["files_restarted"] == 0
    [(refused, why)] = summary["refused"]
    # The first folder whose path (below this root) passes the server's room.
    assert deep.startswith(refused + "/") and "bytes at the destination" in why
    assert "nothing in this folder is copied" in why and "shorten it" in why
    assert (server.root / "short.txt").read_bytes() == b"an ordinary file"
    assert "retry" not in run.stderr
