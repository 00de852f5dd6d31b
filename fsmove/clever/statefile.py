"""The small JSON journals of the app-side phases (cut-over steps, zone migrations, PHP
re-creations): the one module that reads and writes them.

Each kind of journal is a ``JournalFile``: its folder ``$XDG_STATE_HOME/fsmove/<kind>/``
(transfers/state_dir.py), its format version, and the words of its one-line error when a
file cannot be read. A file is replaced atomically (write, fsync, rename) so that a crash
leaves the previous version. Callers keep secrets out of what they store.
"""

from __future__ import annotations

import fcntl
import hashlib
import json
import os
from collections.abc import Callable
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any, TypeVar

from fsmove.errors import FsmoveError, JobLockedError
from fsmove.transfers.state_dir import state_dir

T = TypeVar("T")


@dataclass(frozen=True)
class JournalFile:
    """One kind of app-side journal."""

    kind: str  # its folder under $XDG_STATE_HOME/fsmove
    version: int
    what: str  # how the error names it: "cut-over journal"
    advice: str  # what to do when a file of it cannot be read

    def path(self, *key: str) -> Path:
        """The file of the journal keyed by ``key`` (ids, zones: never secrets)."""
        digest = hashlib.sha256("\n".join(key).encode()).hexdigest()[:16]
        return state_dir(self.kind) / f"{digest}.json"

    def read(self, path: Path) -> dict[str, Any] | None:
        """The document at ``path`` (None when there is none)."""
        return read(path, version=self.version, what=self.what, advice=self.advice)

    def load(self, path: Path, build: Callable[[dict[str, Any]], T]) -> T | None:
        """The state stored at ``path``, made by ``build`` from the document (None when
        there is none); a document ``build`` cannot take is the one-line error."""
        data = self.read(path)
        if data is None:
            return None
        try:
            return build(data)
        except (ValueError, KeyError, TypeError) as exc:
            raise journal_error(path, self.what, self.advice, exc) from None

    def save(self, path: Path, state: Any) -> None:
        """Store ``state``, a dataclass, at ``path``."""
        write(path, asdict(state), version=self.version)


#: The locks this process holds (kept open until it exits).
_held: dict[Path, int] = {}


def hold(path: Path, what: str) -> None:
    """Hold the journal at ``path`` for this process (``<path>.lock``, flock): a second
    run of the same job meanwhile is refused in one line. Two at once each created a
    bucket of the same name and linked both to the app (session 34's adversarial
    pass). Released by ``release`` (the command's end) or when the process ends,
    however it ends."""
    if path in _held:
        return
    path.parent.mkdir(parents=True, exist_ok=True)
    fd = os.open(f"{path}.lock", os.O_RDWR | os.O_CREAT | os.O_NOFOLLOW, 0o600)
    try:
        fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except BlockingIOError:
        os.close(fd)
        raise JobLockedError(f"another fsmove is running {what} now; wait for it to end "
                             "or stop it, then rerun") from None
    _held[path] = fd


def app_lock(app_id: str) -> Path:
    """The path ``hold`` takes for one app: its migration to any zone, or its PHP
    re-creation (two runs to two zones at once each made and linked a bucket)."""
    digest = hashlib.sha256(app_id.encode()).hexdigest()[:16]
    return state_dir("apps") / digest


def release(path: Path) -> None:
    """Let go of the journal ``hold`` took (nothing when it holds none)."""
    fd = _held.pop(path, None)
    if fd is not None:
        os.close(fd)


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


def switch_step_description(kind: str, args: tuple[str, ...] | list[str]) -> str | None:
    """The words of a switch step both the cut-over and the migration journal (``env``,
    ``link``, ``unlink``); None for a kind of step only one of them has."""
    if kind == "env":
        return f"set {args[0]}={args[1]}"
    if kind in ("link", "unlink"):
        return f"{kind} {args[0]}"
    return None
