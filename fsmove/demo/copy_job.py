"""Run the real ``fsmove copy`` (and ``fsmove status``) in a child process, as a user
would, and crash it on purpose.

The child gets the buckets' passwords through ``FSMOVE_SRC_PASSWORD`` /
``FSMOVE_DST_PASSWORD`` in its environment, never on its command line. Its progress bars
and summary go straight to the demo's own terminal.

The interruption is a ``SIGKILL`` (what a crash, an OOM kill or a lost machine does: no
handler runs, nothing is flushed on the way out), sent once the new bucket's tripwire
has seen the chosen share of bytes arrive. The tripwire freezes the new bucket from that
point (writes and renames wait), so the copy cannot finish first, however fast the
machine. Before killing, the demo lets the child's journal catch up with what the frozen
bucket holds (``settled``): a kill in the instant between a server's rename and the
journal's record is safe too (the rerun copies that file again), but it would blur the
demo's point, which is what the journal saves.
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

from fsmove.errors import FsmoveError

from .servers import DemoBuckets, Tripwire

#: Longest a demo copy may take before the demo gives up on it.
COPY_TIMEOUT = 600.0
#: Longest wait for the journal to catch up with the frozen bucket before the kill.
SETTLE_TIMEOUT = 20.0
#: How often the demo checks, while waiting, that the copy still runs.
_WATCH_INTERVAL = 0.05


class DemoStepError(FsmoveError):
    """A step of the demo did not go as it should (exit 1)."""


@dataclass(frozen=True)
class ChildRun:
    returncode: int
    #: True when the demo killed the child (SIGKILL).
    killed: bool
    seconds: float


def fsmove_argv(*args: str) -> list[str]:
    """How to start this very fsmove as a child: the same interpreter and package."""
    return [sys.executable, "-m", "fsmove.cli", *args]


def copy_args(buckets: DemoBuckets, *, journal: Path) -> list[str]:
    return ["copy", buckets.old.url, buckets.new.url, "--journal", str(journal)]


def child_env(buckets: DemoBuckets) -> dict[str, str]:
    env = dict(os.environ)
    env["FSMOVE_SRC_PASSWORD"] = buckets.old.password.reveal()
    env["FSMOVE_DST_PASSWORD"] = buckets.new.password.reveal()
    env["PYTHONUNBUFFERED"] = "1"
    return env


def run_child(args: list[str], *, env: dict[str, str]) -> ChildRun:
    started = time.monotonic()
    sys.stdout.flush()
    sys.stderr.flush()
    try:
        done = subprocess.run(fsmove_argv(*args), env=env, stdin=subprocess.DEVNULL,
                              timeout=COPY_TIMEOUT, check=False)
    except subprocess.TimeoutExpired:
        raise DemoStepError(
            f"`fsmove {args[0]}` did not end within {COPY_TIMEOUT:.0f}s"
        ) from None
    return ChildRun(returncode=done.returncode, killed=False,
                    seconds=time.monotonic() - started)


def run_child_until_tripped(
    args: list[str],
    *,
    env: dict[str, str],
    tripwire: Tripwire,
    threshold: int,
    ceiling: int,
    settled: Callable[[], bool],
) -> ChildRun:
    """Start the child with the tripwire armed (``Tripwire.arm``); once it fires and
    ``settled()`` is true (or ``SETTLE_TIMEOUT`` passed), SIGKILL the child, then abort
    the server operations it left stalled."""
    started = time.monotonic()
    sys.stdout.flush()
    sys.stderr.flush()
    tripwire.arm(threshold, ceiling=ceiling)
    proc = subprocess.Popen(fsmove_argv(*args), env=env, stdin=subprocess.DEVNULL)
    try:
        while not tripwire.tripped.wait(_WATCH_INTERVAL):
            if proc.poll() is not None:
                return ChildRun(returncode=proc.returncode, killed=False,
                                seconds=time.monotonic() - started)
            if time.monotonic() - started > COPY_TIMEOUT:
                raise DemoStepError("the copy never reached the interruption point")
        deadline = time.monotonic() + SETTLE_TIMEOUT
        while not settled() and time.monotonic() < deadline and proc.poll() is None:
            time.sleep(_WATCH_INTERVAL)
        proc.send_signal(signal.SIGKILL)
        proc.wait(timeout=COPY_TIMEOUT)
        return ChildRun(returncode=proc.returncode, killed=True,
                        seconds=time.monotonic() - started)
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
        tripwire.release()
