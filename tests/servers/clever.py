"""The real `clever` CLI (npm clever-tools + Node 22), as installed by .ci/install-servers.sh.

``find_clever()`` returns its launcher (``$FSMOVE_SERVERS_DIR/clever/bin/clever``) or raises
``ServerNotInstalled``. ``recording_launcher(dir)`` writes a wrapper script that appends
its own argv to a file and then runs the real CLI: tests read it (``recorded_argv``) to
prove no secret ever reached a child's command line.
"""

from __future__ import annotations

import os
import shlex
import stat
from pathlib import Path

from .base import INSTALL_HINT, ServerNotInstalled

SERVERS_DIR = Path(os.environ.get("FSMOVE_SERVERS_DIR", "/opt/fsmove-servers"))
CLEVER_DIR = SERVERS_DIR / "clever"
LAUNCHER = CLEVER_DIR / "bin" / "clever"
CLEVER_TOOLS_VERSION = "4.11.0"


def find_clever() -> Path:
    """The installed launcher; ServerNotInstalled when the install script was not run."""
    proofs = list(CLEVER_DIR.glob(f"installed-clever-tools-{CLEVER_TOOLS_VERSION}-node-*"))
    if not proofs or not os.access(LAUNCHER, os.X_OK):
        raise ServerNotInstalled(
            f"clever-tools {CLEVER_TOOLS_VERSION} is not installed in {CLEVER_DIR}: "
            f"{INSTALL_HINT}"
        )
    return LAUNCHER


def recording_launcher(folder: Path) -> tuple[Path, Path]:
    """A `clever` that logs its argv to a file, then execs the real one.

    Returns (launcher, argv_log). A POSIX shell script: it costs ~1 ms of CPU per
    `clever` start where a Python one cost ~60 (Node itself, ~900 ms). Each run appends
    one record, the argument count then every argument, each NUL-terminated (no argument
    can hold a NUL), in one ``printf``: one append, so concurrent children never mix
    their records.
    """
    real = find_clever()
    folder.mkdir(parents=True, exist_ok=True)
    log = folder / "clever-argv.log"
    log.touch()
    launcher = folder / "clever"
    script = (
        "#!/bin/sh\n"
        f"printf '%s\\0' \"$#\" \"$@\" >> {shlex.quote(str(log))}\n"
        f"exec {shlex.quote(str(real))} \"$@\"\n"
    )
    launcher.write_text(script)
    launcher.chmod(launcher.stat().st_mode | stat.S_IXUSR | stat.S_IXGRP | stat.S_IXOTH)
    return launcher, log


def recorded_argv(log: Path) -> list[list[str]]:
    """Every command line the recording launcher saw, in order."""
    fields = [os.fsdecode(f) for f in log.read_bytes().split(b"\0")[:-1]]
    runs: list[list[str]] = []
    at = 0
    while at < len(fields):
        count = int(fields[at])
        runs.append(fields[at + 1 : at + 1 + count])
        at += 1 + count
    return runs


def describe(argv: list[str]) -> str:
    return shlex.join(argv)
