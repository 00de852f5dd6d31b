"""The journal of ``fsmove migrate --app APP --to ZONE``: one small JSON file per (app id,
zone) in ``$XDG_STATE_HOME/fsmove/migrate/`` (default ``~/.local/state``).

Keyed by the app's **id** and the zone, never by how the user spelled them: ``--app shop``
and ``--app app_…`` continue the same migration. It holds, with no password and no token:

- the bucket pairs, fixed on the first run (a rerun after a partial switch must not read
  them from the app again: its variables then name the new hosts): old add-on id, name,
  plan, host, whether it was linked; the new add-on's name, and its id and host **the
  moment it exists** — ``creating`` is set before ``clever addon create`` runs, so a run
  killed between the API creating the add-on and fsmove learning its id adopts that
  add-on (found by its unique name) instead of creating a second;
- each phase once done, the verification verdict, the last failure (phase, exit code);
- the switch's steps, fixed when it starts, each marked done right after it succeeded;
  the deployments that existed before the redeploy (so a rerun tells a restart of this
  run that succeeded from older ones) and the one that succeeded;
- catch-up conflicts already reported (reported once, the new app's version kept).

The file is replaced atomically (statefile.py), so a crash leaves the previous version.
"""

from __future__ import annotations

import enum
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from . import statefile

VERSION = 2
#: Every phase, in the order they run.
PHASES = ("preflight", "create", "copy", "verify", "delta", "switch", "catchup", "dns")


class Until(enum.StrEnum):
    """The phases ``--until`` may stop after."""

    CREATE = "create"
    COPY = "copy"
    VERIFY = "verify"
    DELTA = "delta"
    SWITCH = "switch"
    CATCHUP = "catchup"


@dataclass
class BucketPair:
    old_id: str
    old_name: str
    plan: str
    old_host: str
    linked: bool
    new_name: str
    new_id: str | None = None
    new_host: str | None = None
    creating: bool = False
    reused: bool = False  # --bucket OLD=NEW: the user made it


@dataclass
class Step:
    kind: str  # "zone" | "link" | "env" | "unlink" | "restart"
    args: list[str]
    done: bool = False

    @property
    def description(self) -> str:
        if self.kind == "zone":
            return f"move the app to {self.args[0]}"
        return (statefile.switch_step_description(self.kind, self.args)
                or "redeploy (clever restart)")


@dataclass
class MigrateState:
    app_id: str
    app_name: str
    owner_id: str
    from_zone: str
    to_zone: str
    pairs: list[BucketPair] = field(default_factory=list)
    done: dict[str, float] = field(default_factory=dict)
    verdict: str | None = None
    failed_phase: str | None = None
    failed_code: int | None = None
    steps: list[Step] | None = None
    #: Deployment ids seen before the first redeploy of this migration.
    baseline: list[str] | None = None
    #: The redeploy of this migration that succeeded.
    redeployed: str | None = None
    conflicts_reported: list[str] = field(default_factory=list)
    #: The old hosts ``clevercloud/buckets.json`` mounted when the switch stopped for the
    #: user's push (None: it did not): from then on only a deployment after the
    #: baseline (the push) ends the switch, whatever the file or ``--repo`` say now.
    push_hosts: list[str] | None = None
    #: The commits deployed when that wait began: the push is a deployment of another.
    push_from: list[str] = field(default_factory=list)
    #: ``--split-shared`` was given: other apps using a moved bucket keep the old one
    #: (fsmove/clever/sharing.py); ``shared_with`` names them for the summary.
    split_shared: bool = False
    shared_with: str = ""

    def is_done(self, phase: str) -> bool:
        return phase in self.done

    def mark_done(self, phase: str) -> None:
        self.done[phase] = time.time()
        if self.failed_phase == phase:
            self.failed_phase = self.failed_code = None

    def undo(self, *phases: str) -> None:
        for phase in phases:
            self.done.pop(phase, None)


JOURNAL = statefile.JournalFile(
    kind="migrate", version=VERSION, what="migration journal",
    advice=("check the app in the Console; delete the file only to start over (buckets it "
            "created are then not known to fsmove: pass them with --bucket OLD=NEW)"))
SNAPSHOT = statefile.JournalFile(
    kind="migrate", version=VERSION, what="catch-up snapshot",
    advice=("delete it and rerun: before the switch the final delta runs again; after "
            "it, the catch-up lists every file that differs as a conflict and deletes "
            "nothing"))


def state_path(app_id: str, zone: str) -> Path:
    return JOURNAL.path(app_id, zone, "")


def snapshot_path(app_id: str, zone: str) -> Path:
    return state_path(app_id, zone).with_suffix(".snapshot.json")


def _from_document(data: dict[str, Any]) -> MigrateState:
    unknown = sorted(set(data["done"]) - set(PHASES))
    if unknown:
        raise ValueError(f"unknown phase {unknown[0]!r}")
    steps = data.get("steps")
    return MigrateState(
        app_id=str(data["app_id"]), app_name=str(data["app_name"]),
        owner_id=str(data["owner_id"]), from_zone=str(data["from_zone"]),
        to_zone=str(data["to_zone"]),
        pairs=[BucketPair(**p) for p in data["pairs"]],
        done={str(k): float(v) for k, v in dict(data["done"]).items()},
        verdict=data.get("verdict"), failed_phase=data.get("failed_phase"),
        failed_code=data.get("failed_code"),
        steps=None if steps is None else [Step(**s) for s in steps],
        baseline=data.get("baseline"), redeployed=data.get("redeployed"),
        conflicts_reported=list(data.get("conflicts_reported") or []),
        push_hosts=(None if data.get("push_hosts") is None
                    else [str(h) for h in data["push_hosts"]]),
        push_from=[str(c) for c in data.get("push_from") or []],
        split_shared=bool(data.get("split_shared", False)),
        shared_with=str(data.get("shared_with") or ""),
    )


def load(path: Path) -> MigrateState | None:
    return JOURNAL.load(path, _from_document)


def save(path: Path, state: MigrateState) -> None:
    JOURNAL.save(path, state)


def load_snapshot(path: Path) -> dict[str, Any]:
    return SNAPSHOT.read(path) or {}


def save_snapshot(path: Path, data: dict[str, Any]) -> None:
    statefile.write(path, data, version=SNAPSHOT.version)
