"""The cut-over's journal: its steps and which are done, in a small JSON file.

One file per (app, old add-on, new add-on) in ``$XDG_STATE_HOME/fsmove/cutover/`` (default
``~/.local/state``). The step list is fixed on the first run (a rerun must not recompute
it: after a partial run the variables no longer name the old host), each step is marked
done right after `clever` succeeded, and the file is replaced atomically (write, fsync,
rename), so a crash leaves the previous version. It holds ids, variable names and mount
values (folder + bucket host): no password, no token.
"""

from __future__ import annotations

from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any

from . import statefile


@dataclass(frozen=True)
class Step:
    kind: str  # "link" | "env" | "unlink" | "restart"
    args: tuple[str, ...]  # link/unlink: (addon,); env: (name, value); restart: ()
    done: bool = False

    @property
    def description(self) -> str:
        return statefile.switch_step_description(self.kind, self.args) or self.kind


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


JOURNAL = statefile.JournalFile(
    kind="cutover", version=1, what="cut-over journal",
    advice="check the app's state in the Console, then delete the file to start over")


def state_path(app: str, old: str, new: str) -> Path:
    return JOURNAL.path(app, old, new)


def _from_document(data: dict[str, Any]) -> CutoverState:
    return CutoverState(
        app=data["app"], old=data["old"], new=data["new"], zone=data["zone"],
        steps=tuple(Step(kind=s["kind"], args=tuple(s["args"]), done=bool(s["done"]))
                    for s in data["steps"]),
    )


def load(path: Path) -> CutoverState | None:
    return JOURNAL.load(path, _from_document)


def save(path: Path, state: CutoverState) -> None:
    JOURNAL.save(path, state)
