"""The journal of a PHP app's re-creation (fsmove/clever/php.py), in a small JSON file.

One file per (old application id, target zone) in ``$XDG_STATE_HOME/fsmove/php/``
(statefile.py: written atomically, so a crash leaves the previous version). Each step is
marked done right after it succeeded; the steps that create something (the new app) or
cannot be repeated without harm (the restart) record that they *started* before they run,
so that a rerun after a kill in the middle looks at the platform first (the app by its
recorded name, the deployment list) instead of doing them a second time.

It holds ids, names, domain names, deployment ids and the paths of catch-up conflicts
already reported: no variable value, no password, no token. The catch-up's reference (the
code buckets' file lists around the code copy) is a file of its own next to it.
"""

from __future__ import annotations

from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any

from . import statefile

VERSION = 1
#: The steps, in the order they run.
STEPS = ("create", "env", "links", "scale", "options", "code", "deploy", "domains",
         "catchup")

JOURNAL = statefile.JournalFile(
    kind="php", version=VERSION, what="PHP migration journal",
    advice=("check both applications in the Console, then delete the file to start over "
            "(a new application would then be created again)"))


@dataclass(frozen=True)
class PhpState:
    old_app: str  # app_…
    owner: str  # user_… or orga_…
    zone: str
    new_name: str
    ftp: bool  # the old app is FTP-deployed (the new one then is too)
    #: The old app's own FTP bucket (add-on id), for an FTP-deployed app.
    old_bucket: str | None = None
    #: Set before the creation request: a rerun then looks for an app of that name.
    create_started: bool = False
    #: The owner's FS Bucket add-ons before the creation (to tell the new app's own).
    buckets_before: tuple[str, ...] = ()
    #: The owner's application ids before the creation: a rerun adopts only an app not
    #: among them (None: a journal of an earlier version, which adopted by name alone).
    apps_before: tuple[str, ...] | None = None
    new_app: str | None = None
    #: The new app's own FTP bucket (add-on id), read right after the creation.
    new_bucket: str | None = None
    #: The old app's domains to move, fixed on the first run (they leave it one by one).
    domains: tuple[str, ...] = ()
    moved: tuple[str, ...] = ()
    #: Deployments of the new app that existed before our restart; set = restart started.
    deploy_baseline: tuple[str, ...] | None = None
    deployment: str | None = None  # the successful deployment's id
    done: tuple[str, ...] = field(default_factory=tuple)
    #: Catch-up conflicts already reported ("path"), each reported once.
    conflicts_reported: tuple[str, ...] = ()

    def is_done(self, step: str) -> bool:
        return step in self.done

    def mark_done(self, step: str) -> PhpState:
        return self if step in self.done else replace(self, done=(*self.done, step))


SNAPSHOT = statefile.JournalFile(
    kind="php", version=VERSION, what="catch-up snapshot",
    advice="delete it and rerun: the catch-up then only reports, compare the buckets with "
           "fsmove verify")


def state_path(old_app: str, zone: str) -> Path:
    return JOURNAL.path(old_app, "", zone)


def snapshot_path(old_app: str, zone: str) -> Path:
    """Both code buckets' trees around the code copy (fsmove/clever/trees.py): the
    catch-up's reference."""
    return state_path(old_app, zone).with_suffix(".snapshot.json")


def load_snapshot(path: Path) -> dict[str, Any] | None:
    return SNAPSHOT.read(path)


def save_snapshot(path: Path, data: dict[str, Any]) -> None:
    statefile.write(path, data, version=SNAPSHOT.version)


def _from_document(data: dict[str, Any]) -> PhpState:
    unknown = sorted(set(data["done"]) - set(STEPS))
    if unknown:
        raise ValueError(f"unknown step {unknown[0]!r}")
    baseline: Any = data.get("deploy_baseline")
    return PhpState(
        old_app=str(data["old_app"]), owner=str(data["owner"]), zone=str(data["zone"]),
        new_name=str(data["new_name"]), ftp=bool(data["ftp"]),
        old_bucket=data.get("old_bucket"), create_started=bool(data["create_started"]),
        buckets_before=tuple(map(str, data.get("buckets_before") or ())),
        apps_before=(None if data.get("apps_before") is None
                     else tuple(map(str, data["apps_before"]))),
        new_app=data.get("new_app"), new_bucket=data.get("new_bucket"),
        domains=tuple(map(str, data["domains"])), moved=tuple(map(str, data["moved"])),
        deploy_baseline=None if baseline is None else tuple(map(str, baseline)),
        deployment=data.get("deployment"), done=tuple(map(str, data["done"])),
        conflicts_reported=tuple(map(str, data.get("conflicts_reported") or ())),
    )


def load(path: Path) -> PhpState | None:
    return JOURNAL.load(path, _from_document)


def save(path: Path, state: PhpState) -> None:
    JOURNAL.save(path, state)
