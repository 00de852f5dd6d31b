"""A private source file (hidden from group or others) is never readable by others at an
FTP destination, not even while it is uploaded, nor as the partial file a killed run
leaves.

Before session 32 the partial file of a 0600 ``secret.env`` uploaded to vsftpd, pure-ftpd
or proftpd was 0644 (the server's default for new files) until the placing's ``SITE
CHMOD``, and stayed so after a kill -9 until a rerun, though the README said partial
files are private. Now such a file is first made empty and 0600, then written into.
"""

from __future__ import annotations

import os
import signal
import stat
import subprocess
import time
from pathlib import Path

import pytest

from tests.copy_harness import Served, fsmove_argv, run_copy_subprocess, side_for, tree_digests
from tests.test_resume import settled, temp_name

MiB = 1024 * 1024
PRIVATE = {"secret.env": 0o600, "keys/id.bin": 0o640}
PUBLIC = {"public.bin": 0o644}


@pytest.mark.interop
@pytest.mark.parametrize("server_fixture", ["vsftpd_server", "pureftpd_server",
                                            "proftpd_server", "pyftpdlib_server"])
def test_partial_files_of_private_sources_are_private(server_fixture: str,
                                                      served: Served,
                                                      tmp_path: Path) -> None:
    _server, dst = served(server_fixture, "dst")
    (tmp_path / "src").mkdir()
    src = side_for("local", None, tmp_path / "src", "src")
    modes = PRIVATE | PUBLIC
    src.put({path: os.urandom(12 * MiB) for path in modes}, mtime=1_600_000_000)
    for path, mode in modes.items():
        os.chmod(src.root / path, mode)
    journal = tmp_path / "job.db"
    env = {**os.environ, **src.env, **dst.env}
    proc = subprocess.Popen(
        fsmove_argv(src, dst, "--bwlimit", "12M", "--workers", "3", journal=journal),
        env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        # Waits on what the destination holds (bounded), never on a pause.
        deadline = time.monotonic() + 60
        while not all(_partial_size(dst.root, journal, p) for p in modes):
            assert proc.poll() is None, "the copy ended before every file was partial"
            assert time.monotonic() < deadline, "no partial files within 60 s"
            time.sleep(0.01)
    finally:
        proc.send_signal(signal.SIGKILL)
        proc.wait(timeout=30)
    settled(dst, {p: 12 * MiB for p in modes}, journal)
    for path in PRIVATE:
        temp = dst.root / temp_name(journal, path)
        assert stat.S_IMODE(temp.stat().st_mode) == 0o600, (path, oct(temp.stat().st_mode))
    final = run_copy_subprocess(src, dst, journal=journal)
    assert final.exit_code == 0, final.output
    assert tree_digests(dst.root) == tree_digests(src.root)
    for path, mode in modes.items():
        assert stat.S_IMODE((dst.root / path).stat().st_mode) == mode, path


def _partial_size(root: Path, journal: Path, path: str) -> int:
    name = temp_name(journal, path)
    try:
        return (root / name).stat().st_size if name else 0
    except FileNotFoundError:
        return 0


def test_which_files_are_made_private_before_their_first_byte() -> None:
    """Private at the source and 1 MiB or more (a small file leaves with its STOR: the
    extra empty upload would cost a tree made under umask 077 a third of its time)."""
    from fsmove.transfers.backend import PRIVATE_BEFORE_BYTES, hides_from_others

    big = PRIVATE_BEFORE_BYTES
    assert hides_from_others(0o600, big) and hides_from_others(0o640, big)
    assert hides_from_others(0o604, big)  # group may not read
    assert not hides_from_others(0o600, big - 1)
    assert not hides_from_others(0o644, big) and not hides_from_others(0o755, big)
    assert not hides_from_others(None, big)  # unknown: taken as 0644
