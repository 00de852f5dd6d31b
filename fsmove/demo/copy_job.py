"""Run the real ``fsmove copy`` (and ``fsmove status``) in a child process, as a user
would, and crash it on purpose.

The child gets the buckets' passwords through ``FSMOVE_SRC_PASSWORD`` /
``FSMOVE_DST_PASSWORD`` in its environment, never on its command line. A copy child
runs with ``--json``: the demo reads its events back (``child_events.py``), shows them
with the same display as ``fsmove copy`` and tells what happened from them.

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

import asyncio
import os
import signal
import subprocess
import sys
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

from fsmove import event_loop
from fsmove.errors import FsmoveError
from fsmove.output import CommandOutput

from .child_events import ChildEvents
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
    #: A copy child's events (empty for other commands).
    events: ChildEvents = field(default_factory=ChildEvents)


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
    """A child whose output goes straight to the demo's terminal (``fsmove status``)."""
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


@dataclass(frozen=True)
class Crash:
    """When to kill the copy: the tripwire's points (``Tripwire.arm``), and a test that
    the child's journal has caught up with what the frozen bucket holds."""

    tripwire: Tripwire
    threshold: int
    ceiling: int
    settled: Callable[[], bool]


async def _read_events(stream: asyncio.StreamReader, events: ChildEvents,
                       output: CommandOutput) -> None:
    while line := await stream.readline():
        event = events.parse(line.decode("utf-8", errors="replace"))
        if event is not None:
            output(event)


async def _watch_until_tripped(proc: asyncio.subprocess.Process, crash: Crash,
                               started: float) -> bool:
    """Wait for the tripwire, then for the journal to settle; True when the child is
    to be killed, False when it ended first."""
    while not crash.tripwire.tripped.is_set():
        if proc.returncode is not None:
            return False
        if time.monotonic() - started > COPY_TIMEOUT:
            raise DemoStepError("the copy never reached the interruption point")
        await asyncio.sleep(_WATCH_INTERVAL)
    deadline = time.monotonic() + SETTLE_TIMEOUT
    while proc.returncode is None and time.monotonic() < deadline:
        if crash.settled():
            break
        await asyncio.sleep(_WATCH_INTERVAL)
    return proc.returncode is None


async def _run_copy(args: list[str], env: dict[str, str], output: CommandOutput,
                    crash: Crash | None) -> ChildRun:
    started = time.monotonic()
    events = ChildEvents()
    if crash is not None:
        crash.tripwire.arm(crash.threshold, ceiling=crash.ceiling)
    proc = await asyncio.create_subprocess_exec(
        *fsmove_argv(*args, "--json"), env=env, stdin=subprocess.DEVNULL,
        stdout=subprocess.PIPE)
    assert proc.stdout is not None
    reader = asyncio.ensure_future(_read_events(proc.stdout, events, output))
    output.start()
    killed = False
    try:
        if crash is not None and await _watch_until_tripped(proc, crash, started):
            proc.send_signal(signal.SIGKILL)
            killed = True
        await asyncio.wait_for(proc.wait(), COPY_TIMEOUT)
        await asyncio.wait_for(reader, COPY_TIMEOUT)
    except TimeoutError:
        raise DemoStepError(f"`fsmove copy` did not end within {COPY_TIMEOUT:.0f}s") from None
    finally:
        if proc.returncode is None:
            proc.kill()
            await proc.wait()
        reader.cancel()
        output.stop_progress()
        if crash is not None:
            crash.tripwire.release()
    return ChildRun(returncode=proc.returncode or 0, killed=killed,
                    seconds=time.monotonic() - started, events=events)


def run_copy_child(args: list[str], *, env: dict[str, str], output: CommandOutput,
                   crash: Crash | None = None) -> ChildRun:
    """Run ``fsmove copy ARGS --json`` and show its events on ``output`` (the live
    display on a terminal). With ``crash``, SIGKILL it once the tripwire fired and the
    journal settled (or ``SETTLE_TIMEOUT`` passed), then abort the server operations it
    left stalled."""
    sys.stdout.flush()
    sys.stderr.flush()
    return event_loop.run(_run_copy(args, env, output, crash))
