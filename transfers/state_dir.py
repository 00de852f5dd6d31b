"""Where fsmove keeps its state: ``$XDG_STATE_HOME/fsmove`` (default ``~/.local/state``).

The one place that reads XDG_STATE_HOME: copy journals (``jobs/``) and the app-side
journals of fsmove/clever (``cutover/``, ``migrate/``, ``php/``) are folders under it.
"""

from __future__ import annotations

import os
from pathlib import Path


def state_dir(kind: str) -> Path:
    """The folder of one kind of state, e.g. ``state_dir("jobs")``; nothing is created."""
    base = os.environ.get("XDG_STATE_HOME") or str(Path.home() / ".local" / "state")
    return Path(base) / "fsmove" / kind
