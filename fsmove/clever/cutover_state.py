"""The cut-over's journal: its steps and which are done, in a small JSON file.

One file per (app, old add-on, new add-on) in ``$XDG_STATE_HOME/fsmove/cutover/`` (default
``~/.local/state``). The step list is fixed on the first run (a rerun must not recompute
it: after a partial run the variables no longer name the old host), each step is marked
done right after `clever` succeeded, and the file is replaced atomically (write, fsync,
rename), so a crash leaves the previous version. It holds ids, variable names and mount
values (folder + bucket host): no password, no token.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, replace
from pathlib import Path

from . import statefile

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


_KIND = "cutover"
_WHAT = "cut-over journal"
_ADVICE = "check the app's state in the Console, then delete the file to start over"


def state_path(app: str, old: str, new: str) -> Path:
    return statefile.state_path(_KIND, app, old, new)


def load(path: Path) -> CutoverState | None:
    data = statefile.read(path, version=VERSION, what=_WHAT, advice=_ADVICE)
    if data is None:
        return None
    try:
        return CutoverState(
            app=data["app"], old=data["old"], new=data["new"], zone=data["zone"],
            steps=tuple(Step(kind=s["kind"], args=tuple(s["args"]), done=bool(s["done"]))
                        for s in data["steps"]),
        )
    except (ValueError, KeyError, TypeError) as exc:
        raise statefile.journal_error(path, _WHAT, _ADVICE, exc) from None


def save(path: Path, state: CutoverState) -> None:
    statefile.write(path, asdict(state), version=VERSION)
