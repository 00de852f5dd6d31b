"""The cut-over's journal: its steps and which are done, in a small JSON file.

One file per (app, old add-on, new add-on) in ``$XDG_STATE_HOME/fsmove/cutover/`` (default
``~/.local/state``). The step list is fixed on the first run (a rerun must not recompute
it: after a partial run the variables no longer name the old host), each step is marked
done right after `clever` succeeded, and the file is replaced atomically (write, fsync,
rename), so a crash leaves the previous version. It holds ids, variable names and mount
values (folder + bucket host): no password, no token.
"""

from __future__ import annotations

import hashlib
import json
import os
from dataclasses import asdict, dataclass, replace
from pathlib import Path

from fsmove.errors import FsmoveError

VERSION = 1


@dataclass(frozen=True)
class Step:
    kind: str  # "link" | "env" | "unlink" | "restart"
    args: tuple[str, ...]  # link/unlink: (addon,); env: (name, value); restart: ()
    done: bool = False

    @property
    def description(self) -> str:
        if self.kind == "env":
            return f"set {self.args[0]}={self.args[1]}"
        if self.kind in ("link", "unlink"):
            return f"{self.kind} {self.args[0]}"
        return self.kind


@dataclass(frozen=True)
class CutoverState:
    app: str
    old: str
    new: str
    zone: str
    steps: tuple[Step, ...]

    @property
    def finished(self) -> bool:
        return all(s.done for s in self.steps)

    def mark_done(self, index: int) -> CutoverState:
        steps = list(self.steps)
        steps[index] = replace(steps[index], done=True)
        return replace(self, steps=tuple(steps))


def state_dir() -> Path:
    base = os.environ.get("XDG_STATE_HOME") or str(Path.home() / ".local" / "state")
    return Path(base) / "fsmove" / "cutover"


def state_path(app: str, old: str, new: str) -> Path:
    key = hashlib.sha256(f"{app}\n{old}\n{new}".encode()).hexdigest()[:16]
    return state_dir() / f"{key}.json"


def load(path: Path) -> CutoverState | None:
    if not path.exists():
        return None
    try:
        data = json.loads(path.read_text())
        if data.get("version") != VERSION:
            raise ValueError(f"version {data.get('version')}")
        return CutoverState(
            app=data["app"], old=data["old"], new=data["new"], zone=data["zone"],
            steps=tuple(Step(kind=s["kind"], args=tuple(s["args"]), done=bool(s["done"]))
                        for s in data["steps"]),
        )
    except (OSError, ValueError, KeyError, TypeError) as exc:
        raise FsmoveError(
            f"cannot read the cut-over journal {path} ({exc.__class__.__name__}: {exc}); "
            "check the app's state in the Console, then delete the file to start over"
        ) from None


def save(path: Path, state: CutoverState) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    data = asdict(state)
    data["version"] = VERSION
    tmp = path.with_suffix(".tmp")
    with tmp.open("w") as f:
        json.dump(data, f, indent=2)
        f.flush()
        os.fsync(f.fileno())
    os.replace(tmp, path)
