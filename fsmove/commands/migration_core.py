"""What every phase of `fsmove migrate` shares: the request, the one run's state (the
survey, the journal, the buckets read once and carried through the phases as
``access``), and the small helpers the phases use. The phases are in
migrate_buckets.py (preflight, create), migrate_data.py (copy, verify, delta, catch-up)
and migrate_switch.py; fsmove/commands/migrate.py walks them."""

from __future__ import annotations

import sys
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from fsmove.clever import children, migrate_state, statefile
from fsmove.clever.api import CleverApi
from fsmove.clever.app import Mount
from fsmove.clever.bucket import Bucket, read_owned_bucket
from fsmove.clever.clever_tool import CleverCli
from fsmove.clever.dns import DnsChecker
from fsmove.clever.migrate_state import BucketPair, MigrateState, Until
from fsmove.clever.survey import Survey, survey
from fsmove.endpoint_access import ConnectOptions
from fsmove.errors import UsageError
from fsmove.transfers.copy import CopyOptions
from fsmove.transfers.endpoint import Endpoint

#: How long the switch waits for a deployment that is still running (seconds).
DEPLOY_WAIT = 1800.0
DEPLOY_POLL = 5.0


@dataclass(frozen=True)
class MigrateRequest:
    app: str
    zone: str
    buckets: tuple[str, ...] = ()  # "OLD=NEW", as typed
    #: Move the app even when another app links or mounts one of its buckets (that
    #: app keeps the old bucket: fsmove/clever/sharing.py).
    split_shared: bool = False
    until: Until | None = None
    dry_run: bool = False
    yes: bool = False
    repo: Path | None = None
    nameservers: tuple[str, ...] = ()
    reports: tuple[Path, ...] = ()
    #: The copy phases' options, built once from the flags (each phase changes only
    #: ``delete``, ``checksum`` or ``filters``).
    copy: CopyOptions = field(default_factory=CopyOptions)
    src_connections: int | None = None
    dst_connections: int | None = None
    connect: ConnectOptions = field(default_factory=ConnectOptions)
    quiet: bool = False


def say_progress(line: str) -> None:
    print(f"fsmove migrate: {line}", file=sys.stderr, flush=True)


def say(line: str) -> None:
    print(line, flush=True)


class MigrationCore:
    """One invocation: the survey, the journal, the buckets read."""

    def __init__(self, req: MigrateRequest, checker: DnsChecker | None) -> None:
        self.req = req
        self.checker = checker
        self.cli = CleverCli(dry_run=req.dry_run, echo=say)
        self.api = CleverApi.from_cli_environment()
        self.survey: Survey = survey(self.cli, self.api, req.app, repo=req.repo)
        app = self.survey.app
        if app.is_php:
            raise UsageError(f"{app.name} is a PHP app: PHP apps cannot change zone and are "
                             "re-created instead, which this path does not do")
        self.path = migrate_state.state_path(app.id, req.zone)
        self.snap_path = migrate_state.snapshot_path(app.id, req.zone)
        self.lock_path = statefile.app_lock(app.id)
        if not req.dry_run:
            statefile.hold(self.lock_path, f"a migration of {app.name}")
        try:
            loaded = migrate_state.load(self.path)
        except BaseException:
            statefile.release(self.lock_path)
            raise
        self.resumed = loaded is not None
        self.state: MigrateState = loaded or MigrateState(
            app_id=app.id, app_name=app.name, owner_id=app.owner_id, from_zone=app.zone,
            to_zone=req.zone)
        self.access: dict[str, Bucket] = {}
        self.outcome: dict[str, str] = {}

    def save(self) -> None:
        if not self.req.dry_run:
            migrate_state.save(self.path, self.state)

    def _app_path(self) -> str:
        return self.api.application_path(self.state.owner_id, self.state.app_id)

    def _bucket(self, addon_id: str) -> Bucket:
        if addon_id not in self.access:
            self.access[addon_id] = read_owned_bucket(self.api, self.state.owner_id, addon_id)
        return self.access[addon_id]

    def _fill_access(self, ids: list[str]) -> None:
        """Read at once the buckets the survey did not (unlinked since, or new)."""
        missing = [i for i in dict.fromkeys(ids) if i not in self.access]
        owner = self.state.owner_id
        found = children.parallel([lambda i=i: read_owned_bucket(self.api, owner, i)
                                   for i in missing])
        for addon_id, bucket in zip(missing, found, strict=True):
            self.access[addon_id] = bucket

    def _urls(self, pair: BucketPair) -> tuple[str, str]:
        return f"clever://{pair.old_id}", f"clever://{pair.new_id or f'<new {pair.new_name}>'}"

    def _endpoints(self, pair: BucketPair) -> tuple[Endpoint, Endpoint]:
        """Both buckets' roots, as read once in this run (never resolved again)."""
        return (self.access[pair.old_id].endpoint("/"),
                self.access[str(pair.new_id)].endpoint("/"))

    def _label(self, pair: BucketPair) -> str:
        return f"{pair.old_name} -> {pair.new_name}"

    def _deployments(self) -> list[dict[str, Any]]:
        data = self.api.get(self._app_path() + "/deployments")
        return [d for d in data if isinstance(d, dict)] if isinstance(data, list) else []

    def _name_of(self, addon_id: str) -> str:
        for p in self.state.pairs:
            if addon_id == p.old_id:
                return p.old_name
            if addon_id == p.new_id:
                return p.new_name
        return addon_id

    def _mounts_of(self, pair: BucketPair) -> list[Mount]:
        from fsmove.clever.app import mounts_of

        hosts = {pair.old_host} | ({pair.new_host} if pair.new_host else set())
        return [m for m in mounts_of(self.survey.env.own) if m.host in hosts]
