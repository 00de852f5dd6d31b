"""The real `clever` CLI (npm clever-tools + Node 22), as installed by .ci/install-servers.sh.

``find_clever()`` returns its launcher (``$FSMOVE_SERVERS_DIR/clever/bin/clever``) or raises
``ServerNotInstalled``. ``recording_launcher(dir)`` writes a wrapper script that appends
its own argv (one JSON list per line) to a file and then runs the real CLI: tests read it
to prove no secret ever reached a child's command line.
"""

from __future__ import annotations

import json
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

    Returns (launcher, argv_log). The log holds one JSON array per run.
    """
    real = find_clever()
    folder.mkdir(parents=True, exist_ok=True)
    log = folder / "clever-argv.jsonl"
    log.touch()
    launcher = folder / "clever"
    script = (
        "#!/usr/bin/env python3\n"
        "import json, os, sys\n"
        f"with open({str(log)!r}, 'a') as f:\n"
        "    f.write(json.dumps(sys.argv[1:]) + '\\n')\n"
        f"os.execv({str(real)!r}, [{str(real)!r}, *sys.argv[1:]])\n"
    )
    launcher.write_text(script)
    launcher.chmod(launcher.stat().st_mode | stat.S_IXUSR | stat.S_IXGRP | stat.S_IXOTH)
    return launcher, log


def recorded_argv(log: Path) -> list[list[str]]:
    """Every command line the recording launcher saw, in order."""
    return [json.loads(line) for line in log.read_text().splitlines() if line.strip()]


def describe(argv: list[str]) -> str:
    return shlex.join(argv)
