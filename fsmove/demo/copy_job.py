"""Run the real ``fsmove copy`` (and ``fsmove status``) in a child process, as a user
would, and crash it on purpose.

The child gets the buckets' passwords through ``FSMOVE_SRC_PASSWORD`` /
``FSMOVE_DST_PASSWORD`` in its environment, never on its command line. Its progress bars
and summary go straight to the demo's own terminal.

The interruption is a ``SIGKILL`` (what a crash, an OOM kill or a lost machine does: no
handler runs, nothing is flushed on the way out), sent once the new bucket's tripwire
has seen the chosen share of bytes arrive. The tripwire stalls the new bucket's writes
from that point, so the copy cannot finish first: the crash lands at the same place on
any machine, however fast.
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from dataclasses import dataclass
from pathlib import Path

from fsmove.errors import FsmoveError

from .servers import DemoBuckets, Tripwire

#: Longest a demo copy may take before the demo gives up on it.
COPY_TIMEOUT = 600.0
#: How often the demo checks, while waiting for the tripwire, that the copy still runs.
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
    args: list[str], *, env: dict[str, str], tripwire: Tripwire, threshold: int
) -> ChildRun:
    """Start the child with the tripwire armed at ``threshold`` bytes; SIGKILL it when
    the tripwire fires, then let the stalled server writes go on."""
    started = time.monotonic()
    sys.stdout.flush()
    sys.stderr.flush()
    tripwire.arm(threshold)
    proc = subprocess.Popen(fsmove_argv(*args), env=env, stdin=subprocess.DEVNULL)
    try:
        while not tripwire.tripped.wait(_WATCH_INTERVAL):
            if proc.poll() is not None:
                return ChildRun(returncode=proc.returncode, killed=False,
                                seconds=time.monotonic() - started)
            if time.monotonic() - started > COPY_TIMEOUT:
                raise DemoStepError("the copy never reached the interruption point")
        proc.send_signal(signal.SIGKILL)
        proc.wait(timeout=COPY_TIMEOUT)
        return ChildRun(returncode=proc.returncode, killed=True,
                        seconds=time.monotonic() - started)
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
        tripwire.release()
