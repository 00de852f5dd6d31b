"""fsmove itself: ``fsmove copy SRC DST --quiet --json``, passwords in the environment."""

from __future__ import annotations

import functools
import json
import os
import shutil
import subprocess
import sys
from pathlib import Path
from urllib.parse import quote

from ..environment import Location
from ..measure import Command, version_of
from .base import CopyJob


def _executable() -> list[str]:
    beside = Path(sys.executable).parent / "fsmove"
    if beside.exists():
        return [str(beside)]
    found = shutil.which("fsmove")
    if found:
        return [found]
    return [sys.executable, "-m", "fsmove"]


def url(loc: Location) -> str:
    if loc.scheme == "file":
        return loc.path
    return f"{loc.scheme}://{quote(loc.user, safe='')}@{loc.host}:{loc.port}{quote(loc.path)}"


@functools.cache
def _copy_help() -> str:
    try:
        out = subprocess.run(
            [*_executable(), "copy", "--help"],
            capture_output=True,
            text=True,
            timeout=60,
            check=False,
            env={**os.environ, "COLUMNS": "200", "NO_COLOR": "1"},
        )
    except (OSError, subprocess.TimeoutExpired):
        return ""
    return out.stdout


class FsmoveRunner:
    name = "fsmove"

    def version(self) -> str:
        return version_of([*_executable(), "--version"])

    def files_in_flight(self) -> int | None:
        """fsmove's default files at once (``--workers``), read from the fsmove installed
        beside this harness; None when that module is not where it was."""
        try:
            from fsmove.transfers.policy import Limits
        except ImportError:
            return None
        return Limits().files_at_once

    def command(self, job: CopyJob) -> Command:
        home = job.scratch / "home"
        (home / ".ssh").mkdir(parents=True, exist_ok=True)
        known = [loc.known_hosts for loc in (job.src, job.dst) if loc.known_hosts]
        known_file = home / ".ssh" / "known_hosts"
        known_file.write_text("".join(p.read_text() for p in known))
        argv = [*_executable(), "copy", url(job.src), url(job.dst), "--quiet", "--json"]
        argv += ["--journal", str(job.scratch / "journal.sqlite")]
        if known and "--known-hosts" in _copy_help():
            argv += ["--known-hosts", str(known_file)]
        env = {
            "PATH": os.environ.get("PATH", "/usr/bin:/bin"),
            "HOME": str(home),
            "XDG_STATE_HOME": str(job.scratch / "state"),
            "XDG_CONFIG_HOME": str(job.scratch / "config"),
            "LANG": "C.UTF-8",
        }
        if os.environ.get("FSMOVE_BENCH_TREE"):
            # Another fsmove tree to measure with this harness (an A/B of two commits):
            # a folder laid out as the installed package (fsmove/ with transfers/ and
            # verify/ inside, as benchmarks/profile_ftp_large.py's variants).
            env["PYTHONPATH"] = os.environ["FSMOVE_BENCH_TREE"]
        if job.src.password:
            env["FSMOVE_SRC_PASSWORD"] = job.src.password
        if job.dst.password:
            env["FSMOVE_DST_PASSWORD"] = job.dst.password
        return Command(argv=tuple(argv), env=env, cwd=job.scratch)


#: the summary is fsmove's last event: only this much of the end of its output is read
#: (with --json fsmove prints an event per file: hundreds of MB for a million files)
_SUMMARY_TAIL = 1 << 20


def summary_event(stdout_path: Path) -> dict[str, object] | None:
    """The last ``{"type": "summary", ...}`` line fsmove printed with ``--json``."""
    try:
        with stdout_path.open("rb") as f:
            size = f.seek(0, os.SEEK_END)
            f.seek(max(0, size - _SUMMARY_TAIL))
            lines = f.read().decode(errors="replace").splitlines()
    except FileNotFoundError:
        return None
    for line in reversed(lines):
        line = line.strip()
        if not line.startswith("{"):
            continue
        try:
            event = json.loads(line)
        except json.JSONDecodeError:
            continue
        if isinstance(event, dict) and event.get("type") == "summary":
            return event
    return None
