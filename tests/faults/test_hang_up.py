"""A real hang-up: `fsmove copy` drawing its live display on a terminal (a pty it leads,
as a login shell's job), then the terminal closed (the window, the ssh session): SIGHUP
and every later write failing with EIO. Before session 35 both runs below ended as
"fsmove: error: Input/output error", exit 1: the one hung up (not 130, its journal
"interrupted"), and the one started with SIGHUP ignored (`trap '' HUP`), which had
copied every file. The terminal is closed once the display is drawn (a state, not a
delay)."""

from __future__ import annotations

import fcntl
import os
import pty
import select
import signal
import subprocess
import sys
import termios
import time
from pathlib import Path

import pytest

from tests.copy_harness import tree_digests
from tests.faults.trees import KiB, random_files, write_local


def _copy_on_a_terminal_then_hang_up(tmp_path: Path, *, ignore_hup: bool) -> int:
    src, dst = tmp_path / "src", tmp_path / "dst"
    write_local(src, random_files(4, 256 * KiB, seed=3))
    code = _run_on_a_terminal_then_hang_up(
        tmp_path, ["copy", str(src), str(dst), "--journal", str(tmp_path / "job.db"),
                   "--bwlimit", "256K", "--workers", "2", "--log-file",
                   str(tmp_path / "run.log")],
        ignore_hup=ignore_hup, until=b"elapsed")
    log = (tmp_path / "run.log").read_text()
    assert "Input/output error" not in log and "Traceback" not in log, log
    if not ignore_hup:
        return code
    assert tree_digests(dst) == tree_digests(src)
    return code


@pytest.mark.parametrize("ignore_hup", [False, True], ids=["hung-up", "hup-ignored"])
def test_a_closed_terminal_interrupts_or_is_outlived(tmp_path: Path,
                                                      ignore_hup: bool) -> None:
    code = _copy_on_a_terminal_then_hang_up(tmp_path, ignore_hup=ignore_hup)
    assert code == (0 if ignore_hup else 130)
    log = (tmp_path / "run.log").read_text()
    assert log.rstrip().endswith(f"fsmove copy: exit {code}"), log


def _run_on_a_terminal_then_hang_up(tmp_path: Path, argv: list[str], *,
                                    ignore_hup: bool = True,
                                    until: bytes | None = None) -> int:
    """``fsmove ARGV`` on a terminal it leads (SIGHUP ignored, as under ``nohup``, or at
    its default), the terminal closed once ``until`` was drawn (else 200 bytes of
    output: a state, not a delay); its exit code."""
    master, slave = pty.openpty()

    def lead_the_terminal() -> None:
        os.setsid()
        fcntl.ioctl(slave, termios.TIOCSCTTY, 0)
        signal.signal(signal.SIGHUP, signal.SIG_IGN if ignore_hup else signal.SIG_DFL)

    def drawn(seen: bytes) -> bool:
        return until in seen if until is not None else len(seen) >= 200

    proc = subprocess.Popen(
        [sys.executable, "-m", "fsmove", *argv], stdin=slave, stdout=slave, stderr=slave,
        preexec_fn=lead_the_terminal,
        env={**os.environ, "HOME": str(tmp_path), "TERM": "xterm"})
    os.close(slave)
    seen = b""
    deadline = time.monotonic() + 60  # a bound only a hang reaches
    try:
        while not drawn(seen) and time.monotonic() < deadline:
            ready, _, _ = select.select([master], [], [], 1.0)
            if ready:
                try:
                    seen += os.read(master, 65536)
                except OSError:
                    break
        assert until is None or drawn(seen), seen[-500:]
    finally:
        os.close(master)  # the hang-up
    try:
        return proc.wait(timeout=120)
    except subprocess.TimeoutExpired:
        proc.kill()
        raise


@pytest.mark.parametrize("command", ["verify", "copy --verify", "copy --json"])
def test_every_command_outlives_a_closed_terminal_under_nohup(tmp_path: Path,
                                                             command: str) -> None:
    """Session 35 silenced the copy's own lines and display on EIO; the writers that did
    not go through them still ended the run "Input/output error", exit 1, after all the
    work: verify's summary (its --report never written), ``copy --json``'s events
    (session 36's adversarial pass; migrate's progress lines were the same). The
    streams themselves now go quiet (``fsmove/hung_up.py``)."""
    src, dst = tmp_path / "src", tmp_path / "dst"
    write_local(src, random_files(3, 1024 * KiB, seed=5))
    log, report = tmp_path / "run.log", tmp_path / "report.json"
    words = command.split()
    if words[0] == "verify":
        done = subprocess.run([sys.executable, "-m", "fsmove", "copy", str(src), str(dst),
                               "-q", "--journal", str(tmp_path / "job.db")],
                              capture_output=True, text=True, timeout=120, check=False,
                              env={**os.environ, "HOME": str(tmp_path)})
        assert done.returncode == 0, done.stderr
        options = ["--no-journal", "--report", str(report)]
    else:
        options = ["--journal", str(tmp_path / "job.db")]
        if "--verify" in words:
            options += ["--report", str(report)]
    code = _run_on_a_terminal_then_hang_up(
        tmp_path, [*words, str(src), str(dst), *options, "--bwlimit", "1M",
                   "--log-file", str(log)])
    text = log.read_text()
    assert code == 0, text
    assert "Input/output error" not in text and "Traceback" not in text, text
    assert tree_digests(dst) == tree_digests(src)
    if "--report" in options:
        assert report.exists()
