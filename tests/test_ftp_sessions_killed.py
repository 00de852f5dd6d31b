"""The server's session processes killed in the middle of an upload, its listener up:
the upload stops at once, and the retry logs in afresh instead of spending its attempts
on the dead sessions the pool held.

Before session 32, after vsftpd's session processes were killed (the listener kept
accepting) an upload went on "sending" into the closed data connection to its last
byte (progress past 100 %, a thousand lines of asyncio's "socket.send() raised
exception."), and the retries then failed at once, one after another, on pooled
sessions whose control connections the server had closed ("connection lost"), until
the file was given up.
"""

from __future__ import annotations

import json
import os
import subprocess
import time
from pathlib import Path

import psutil
import pytest

from tests.copy_harness import fsmove_argv, side_for, temp_leftovers, tree_digests
from tests.servers import start_vsftpd
from tests.test_resume import temp_name

MiB = 1024 * 1024


def _session_processes(config: Path) -> list[psutil.Process]:
    for proc in psutil.process_iter(["cmdline"]):
        if str(config) in (proc.info["cmdline"] or []):
            return proc.children(recursive=True)
    raise AssertionError(f"no vsftpd listener runs {config}")


@pytest.mark.interop
def test_an_upload_whose_sessions_are_killed_retries_on_new_logins(own_server: object,
                                                                   tmp_path: Path) -> None:
    server = own_server(start_vsftpd)  # type: ignore[operator]
    dst = side_for("vsftpd", server, server.root, "dst")
    (tmp_path / "src").mkdir()
    src = side_for("local", None, tmp_path / "src", "src")
    files = {"big.bin": os.urandom(24 * MiB)} | {f"s{i:02d}.txt": os.urandom(5000)
                                               for i in range(20)}
    src.put(files, mtime=1_600_000_000)
    journal = tmp_path / "job.db"
    argv = fsmove_argv(src, dst, "--json", "--bwlimit", "6M", "--retries", "3",
                       journal=journal)
    proc = subprocess.Popen(argv, env={**os.environ, **src.env, **dst.env},
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    try:
        deadline = time.monotonic() + 60
        while True:  # a state, not a pause: the big file's first MiBs have arrived
            name = temp_name(journal, "big.bin")
            try:
                if name and (server.root / name).stat().st_size >= 4 * MiB:
                    break
            except FileNotFoundError:
                pass
            assert proc.poll() is None, "the copy ended before the kill"
            assert time.monotonic() < deadline, "no upload within 60 s"
            time.sleep(0.01)
        for child in _session_processes(server.root.parent / "vsftpd.conf"):
            child.kill()
        out, err = proc.communicate(timeout=120)
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.communicate()
    assert proc.returncode == 0, err[-3000:]
    assert "socket.send() raised exception" not in err
    assert tree_digests(dst.root) == tree_digests(src.root)
    summary = json.loads(out.strip().splitlines()[-1])
    assert summary["bytes_sent"] < 2 * sum(map(len, files.values())), summary
    assert not temp_leftovers(dst.root)
