"""Run one client process and measure it: wall time, CPU, peak RSS, time to first byte.

The client is started by ``launcher.py`` (see there why), which reports the client's own
resource usage from ``os.wait4``: user and system CPU and ``ru_maxrss`` (descendants the
client waited for are folded in by the kernel, e.g. lftp's ssh). Meanwhile this process
samples the RSS of the whole client tree with psutil, polls an optional destination
folder for the first byte written, and fires an optional kill trigger (SIGKILL to the
client's process group) or the timeout.

Looking at a destination folder costs this process CPU that the client and the servers
would otherwise get (2 cores, shared). Each look is therefore throttled (``Throttled``):
after a look that took ``d`` seconds the next one waits at least ``9 d``, so looking takes
at most ~10 % of one core whatever the tree's size; the wait in force when the byte was
seen is reported with the figure (its resolution).
"""

from __future__ import annotations

import contextlib
import json
import os
import signal
import subprocess
import sys
import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path

import psutil

from fsmove.transfers.tree import PROBE_PREFIX

LAUNCHER = Path(__file__).resolve().parent / "launcher.py"
_POLL = 0.01
_RSS_SAMPLE = 0.1
#: a throttled look waits this many times its own duration before the next one
_LOOK_DUTY_FACTOR = 9.0


@dataclass(frozen=True)
class Command:
    argv: tuple[str, ...]
    env: Mapping[str, str]
    #: a file fed to the child's stdin (lftp reads its script, with the password, there)
    stdin_path: Path | None = None
    cwd: Path | None = None


@dataclass(frozen=True)
class Measured:
    wall_s: float
    cpu_user_s: float
    cpu_sys_s: float
    peak_rss_mib: float  # ru_maxrss of the child (largest single process)
    peak_tree_rss_mib: float  # sampled sum over the child and its descendants
    exit_code: int | None  # None when killed by a signal
    killed: str | None  # "timeout" | "trigger" | None
    first_byte_s: float | None
    #: the throttled poll's wait between two looks when it saw the first byte
    first_byte_poll_s: float | None
    stdout_path: Path
    stderr_path: Path

    @property
    def cpu_s(self) -> float:
        return self.cpu_user_s + self.cpu_sys_s


def first_file_with_data(root: Path) -> bool:
    """True once any regular file below ``root`` holds at least one byte of a copied
    file. fsmove's FTP write probe writes a few bytes of its own into the destination
    root (``.fsmove-probe-*``, removed before the copy starts): those are not the first
    byte of the copy, and counting them put fsmove's FTP first byte ~1 s early at 60 ms
    (before 2026-12-04 20:50 UTC). A copied file's bytes under its temporary name do
    count: they are the copy's."""
    stack = [root]
    while stack:
        try:
            with os.scandir(stack.pop()) as it:
                for entry in it:
                    if entry.is_dir(follow_symlinks=False):
                        stack.append(Path(entry.path))
                    elif (entry.is_file(follow_symlinks=False)
                          and not entry.name.startswith(PROBE_PREFIX)
                          and entry.stat().st_size > 0):
                        return True
        except FileNotFoundError:
            continue
    return False


class Throttled:
    """A check run at most every ``min_interval`` seconds, and never more than ~10 % of
    the time: after a check that took ``d`` seconds, the next waits ``9 d`` at least."""

    def __init__(self, check: Callable[[], bool], *, min_interval: float = _POLL) -> None:
        self._check = check
        self._min_interval = min_interval
        self._next = 0.0
        #: the wait chosen after the last look (the resolution of a detection)
        self.interval = min_interval

    def __call__(self) -> bool:
        now = time.monotonic()
        if now < self._next:
            return False
        result = self._check()
        took = time.monotonic() - now
        self.interval = max(self._min_interval, _LOOK_DUTY_FACTOR * took)
        self._next = now + took + self.interval
        return result


def _tree_rss(launcher: psutil.Process) -> int:
    """RSS summed over the client and its descendants (not the launcher itself)."""
    total = 0
    try:
        procs = launcher.children(recursive=True)
    except psutil.Error:
        return 0
    for p in procs:
        try:
            total += p.memory_info().rss
        except psutil.Error:
            continue
    return total


def run_measured(
    command: Command,
    *,
    log_prefix: Path,
    timeout: float,
    first_byte_dir: Path | None = None,
    kill_when: Callable[[], bool] | None = None,
) -> Measured:
    """Run ``command`` to its end (or to the timeout / the kill trigger) and measure it."""
    stdout_path = log_prefix.with_name(log_prefix.name + ".out")
    stderr_path = log_prefix.with_name(log_prefix.name + ".err")
    report_path = log_prefix.with_name(log_prefix.name + ".rusage.json")
    report_path.unlink(missing_ok=True)
    argv = [sys.executable, "-S", str(LAUNCHER), str(report_path), *command.argv]
    with contextlib.ExitStack() as stack:
        stdin = (
            stack.enter_context(command.stdin_path.open("rb"))
            if command.stdin_path
            else subprocess.DEVNULL
        )
        out = stack.enter_context(stdout_path.open("wb"))
        err = stack.enter_context(stderr_path.open("wb"))
        proc = subprocess.Popen(
            argv,
            stdin=stdin,
            stdout=out,
            stderr=err,
            env=dict(command.env),
            cwd=command.cwd,
            start_new_session=True,
        )
    launcher = psutil.Process(proc.pid)
    start = time.monotonic()
    peak_tree = 0
    killed: str | None = None
    hard_deadline: float | None = None
    first_byte_at: float | None = None
    first_byte_poll: float | None = None
    look_for_byte = None
    if first_byte_dir is not None:
        folder = first_byte_dir
        look_for_byte = Throttled(lambda: first_file_with_data(folder))
    next_sample = 0.0
    while proc.poll() is None:
        now = time.monotonic()
        if now >= next_sample:
            peak_tree = max(peak_tree, _tree_rss(launcher))
            next_sample = now + _RSS_SAMPLE
        if first_byte_at is None and look_for_byte is not None and look_for_byte():
            first_byte_at = now
            first_byte_poll = look_for_byte.interval
        if killed is None and kill_when is not None and kill_when():
            killed = "trigger"
        if killed is None and now - start > timeout:
            killed = "timeout"
        if killed is not None and hard_deadline is None:
            proc.send_signal(signal.SIGUSR1)  # the launcher SIGKILLs the client's group
            hard_deadline = now + 10
        if hard_deadline is not None and now > hard_deadline:
            _kill_group(proc.pid)
        time.sleep(_POLL)
    _kill_group(proc.pid)
    try:
        report = json.loads(report_path.read_text())
    except (OSError, ValueError):
        raise RuntimeError(
            f"the launcher did not report (exit {proc.returncode}): {tail(stderr_path)}"
        ) from None
    status = int(report["status"])
    started = float(report["started"])
    return Measured(
        wall_s=float(report["ended"]) - started,
        cpu_user_s=float(report["user"]),
        cpu_sys_s=float(report["sys"]),
        peak_rss_mib=int(report["maxrss_kib"]) / 1024,
        peak_tree_rss_mib=peak_tree / (1 << 20),
        exit_code=os.waitstatus_to_exitcode(status) if os.WIFEXITED(status) else None,
        killed=killed,
        first_byte_s=None if first_byte_at is None else max(0.0, first_byte_at - started),
        first_byte_poll_s=first_byte_poll,
        stdout_path=stdout_path,
        stderr_path=stderr_path,
    )


def _kill_group(pid: int) -> None:
    try:
        os.killpg(pid, signal.SIGKILL)
    except (ProcessLookupError, PermissionError):
        pass


def tail(path: Path, limit: int = 600) -> str:
    try:
        text = path.read_text(errors="replace")
    except FileNotFoundError:
        return ""
    return text[-limit:].strip()


def version_of(argv: Sequence[str]) -> str:
    """First line a tool prints for its version, or why it could not be read."""
    try:
        out = subprocess.run(list(argv), capture_output=True, text=True, timeout=30, check=False)
    except (OSError, subprocess.TimeoutExpired) as exc:
        return f"unavailable ({exc.__class__.__name__})"
    lines = (out.stdout or out.stderr).strip().splitlines()
    return lines[0].strip() if lines else f"unknown (exit {out.returncode})"
