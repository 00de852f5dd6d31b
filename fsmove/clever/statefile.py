"""The small JSON journals of the app-side phases (cut-over steps, migration phases).

One file per (app, old add-on, new add-on) as the user spelled them, in
``$XDG_STATE_HOME/fsmove/<kind>/`` (default ``~/.local/state``), replaced atomically
(write, fsync, rename) so that a crash leaves the previous version. Callers keep secrets
out of what they store.
"""

from __future__ import annotations

import hashlib
import json
import os
from pathlib import Path
from typing import Any

from fsmove.errors import FsmoveError


def state_dir(kind: str) -> Path:
    base = os.environ.get("XDG_STATE_HOME") or str(Path.home() / ".local" / "state")
    return Path(base) / "fsmove" / kind


def state_path(kind: str, app: str, old: str, new: str) -> Path:
    key = hashlib.sha256(f"{app}\n{old}\n{new}".encode()).hexdigest()[:16]
    return state_dir(kind) / f"{key}.json"


def read(path: Path, *, version: int, what: str, advice: str) -> dict[str, Any] | None:
    """The document at ``path`` (None when there is none). ``what`` names the journal and
    ``advice`` says what to do when it cannot be read, in the one-line error."""
    if not path.exists():
        return None
    try:
        data = json.loads(path.read_text())
        if not isinstance(data, dict):
            raise ValueError("not a JSON object")
        if data.get("version") != version:
            raise ValueError(f"version {data.get('version')}")
        return data
    except (OSError, ValueError) as exc:
        raise journal_error(path, what, advice, exc) from None


def journal_error(path: Path, what: str, advice: str, exc: BaseException) -> FsmoveError:
    return FsmoveError(
        f"cannot read the {what} {path} ({exc.__class__.__name__}: {exc}); {advice}"
    )


def write(path: Path, data: dict[str, Any], *, version: int) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_suffix(".tmp")
    with tmp.open("w") as f:
        json.dump({**data, "version": version}, f, indent=2)
        f.flush()
        os.fsync(f.fileno())
    os.replace(tmp, path)
