"""Where fsmove keeps its state: ``$XDG_STATE_HOME/fsmove`` (default ``~/.local/state``).

The one place that reads XDG_STATE_HOME: copy journals (``jobs/``) and the app-side
journals of fsmove/clever (``cutover/``, ``migrate/``, ``php/``) are folders under it.
"""

from __future__ import annotations

import os
import pwd
from pathlib import Path


class StateDirError(Exception):
    """No folder to keep fsmove's state in (exit 2: a setting to give)."""


def state_dir(kind: str) -> Path:
    """The folder of one kind of state, e.g. ``state_dir("jobs")``; nothing is created."""
    base = os.environ.get("XDG_STATE_HOME") or ""
    if not os.path.isabs(base):
        # The XDG spec: a relative path is invalid and ignored (it was taken from the
        # current folder, a different state for every folder a run starts in).
        base = str(Path(_home()) / ".local" / "state")
    return Path(base) / "fsmove" / kind


def _home() -> str:
    """$HOME, or the account's home folder where $HOME is empty or relative (``HOME=``
    put the state in ``./.local``: another one in every folder a run started in,
    session 35's adversarial pass). A home folder that does not exist is never made:
    system accounts have ``/nonexistent`` on purpose, and fsmove run as root (a cron
    job, a service) created it (session 35's leftover); the account's own home is
    tried, then the run stops with the setting to give."""
    home = os.environ.get("HOME") or ""
    if os.path.isabs(home) and os.path.isdir(home):
        return home
    try:
        account = pwd.getpwuid(os.getuid()).pw_dir
    except KeyError:  # an account the system does not know
        account = ""
    if os.path.isabs(account) and os.path.isdir(account):
        return account
    missing = home if os.path.isabs(home) else account or "(none)"
    raise StateDirError(
        f"the home folder {missing} does not exist, and fsmove keeps its state (copy "
        "journals, locks) in ~/.local/state: set XDG_STATE_HOME to a folder for it")


def _glob_literal(path: str) -> str:
    """``path`` as an fnmatch pattern that matches it alone."""
    return "".join(f"[{c}]" if c in "[]*?" else c for c in path)


def own_state_excludes(root: str, journal: Path) -> tuple[str, ...]:
    """Anchored exclude patterns for fsmove's own state found inside the local store
    root ``root``: the job's journal (with its ``-wal``, ``-shm`` and ``.lock``) and the
    state folder (every job's journals and the destinations' locks). A copy with
    ``--delete`` into a folder holding them (``--journal`` there, or a home folder whose
    ``~/.local/state`` is the state) deleted them at every run, locks and other jobs'
    journals too, and verify called them differences (session 32)."""
    base = Path(os.path.realpath(root))
    j = Path(os.path.realpath(journal))
    owned = [j, Path(f"{j}-wal"), Path(f"{j}-shm"), Path(f"{j}.lock"),
             Path(os.path.realpath(state_dir("jobs").parent))]
    found: list[str] = []
    for path in owned:
        try:
            rel = path.relative_to(base).as_posix()
        except ValueError:
            continue
        if rel != ".":
            found.append("/" + _glob_literal(rel))
    return tuple(found)

