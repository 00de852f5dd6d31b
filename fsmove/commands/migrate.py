"""`fsmove migrate --app APP --to ZONE`: the whole zone migration of one (non-PHP) app.

Phases, in order, each journaled (fsmove/clever/migrate_state.py) so that a rerun of the
same command continues where the last one stopped:

1. **preflight**: the app (personal space or any organisation, by name or id), every FS
   Bucket it mounts (fsmove/clever/survey.py), each reachable over FTP; the pairs (old
   bucket -> new one in ZONE, same plan; ``--bucket OLD=NEW`` reuses one the user made)
   are fixed in the journal. Nothing is written before it passed. The DNS TTL advice.
2. **create**: ``clever addon create fs-bucket OLD-ZONE --region ZONE --plan PLAN --org
   OWNER --yes -F json`` for each pair without a new bucket, journaled the moment it
   exists (and adopted by name when a run died between the API creating it and fsmove
   journaling its id): no rerun ever creates a second one.
3. **copy**: ``fsmove copy clever://OLD clever://NEW`` for every pair; the app keeps
   running. Same engine and job journals as ``fsmove copy`` (resume inside files).
4. **verify**: ``fsmove verify`` (full) of every pair. A difference is usually a file the
   running app changed or removed meanwhile: the delta (copy ``--delete --checksum``)
   runs at once and the pair is verified again; only a difference that survives that is
   exit 4 (the app untouched). It converges; it never loops.
5. **delta**: the copy again with ``--delete`` for every pair, then a listing of both
   trees is saved (the catch-up's reference).
6. **switch**: move the app to ZONE (``PUT /v2/organisations/OWNER/applications/APP``
   ``{"zone": ZONE}``, signed in-process, fsmove/clever/api.py; read back and checked; if
   refused, nothing else has changed: one line naming the console step); link each new
   bucket whose old one was linked; rewrite every ``CC_FS_BUCKET*`` naming an old host
   (folder and ``:async`` kept, every other variable untouched); unlink the old linked
   buckets (never deleted); then ONE redeploy (``clever restart``), only after the
   deployment list shows no redeploy of this migration already succeeded.
7. **catchup**: what the old instances wrote to the old buckets after the final delta
   (they ran until the new deployment replaced them) is copied to the new ones; a file
   the new app changed since is never overwritten (listed as a conflict, exit 4, reported
   once); the files moved are verified.
8. **dns**: the records to set for ZONE (the user's own domains; never *.cleverapps.io)
   and the watch command.

Decisions:

- **The zone moves first in the switch**: it is the one step the platform may refuse;
  doing it first means a refusal leaves the app exactly as it was. Nothing takes effect
  before the redeploy: the running instances keep the old zone and the old buckets.
- **A failure anywhere in the switch before the redeploy succeeded sends the rerun back
  to the delta**: the old instances kept writing to the old buckets meanwhile. Once the
  redeploy succeeded the new app writes to the new buckets: no more ``--delete``, only
  the catch-up, which never overwrites.
- **A new bucket is linked only where the old one was**: linking adds the BUCKET_*
  variables of the bucket; a bucket only mounted through CC_FS_BUCKET* stays unlinked.
- **Buckets are read once per run** (the survey), then ``clever://ID`` resolves from
  memory in the copy, verify and delta phases: no `clever` call per phase.
- ``--dry-run`` changes nothing, sends only GET requests, writes no journal: it prints
  each phase, the copy engine's own plan where the new bucket exists, and every
  changing `clever` command and API request. Acting needs ``--yes``, or a "yes" typed at a
  terminal; with neither, a one-line refusal (exit 2) before any request.
- The old form ``--from OLD --to NEW`` (add-ons) is gone: ``--to`` is now a zone, and
  ``--bucket OLD=NEW`` names a new bucket the user made. ``fsmove cutover`` still
  switches one bucket by hand.
"""

from __future__ import annotations

import asyncio
import os
import signal
import sys
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from fsmove.clever import children, migrate_state
from fsmove.clever.api import CleverApi
from fsmove.clever.app import Mount
from fsmove.clever.bucket import Bucket, read_bucket, remember_bucket
from fsmove.clever.cli import CleverCli, CleverError
from fsmove.clever.dns import DnsChecker
from fsmove.clever.dns_advice import print_records, print_ttl_advice
from fsmove.clever.migrate_state import PHASES, BucketPair, MigrateState, Step, Until
from fsmove.clever.plan import ZONES
from fsmove.clever.survey import Survey, survey
from fsmove.clever.trees import changed, fnmatch_exact, list_trees
from fsmove.endpoints import ConnectOptions, open_store
from fsmove.errors import ConfigError, FsmoveError, UsageError
from fsmove.exitcodes import ExitCode
from fsmove.progress import human_bytes
from fsmove.transfers.backend import AuthError, BackendError
from fsmove.transfers.copy import CopyEngine, CopyOptions
from fsmove.transfers.endpoint import Endpoint, Secret
from fsmove.transfers.plan import CopyPlan
from fsmove.transfers.pool import SessionPool
from fsmove.transfers.tree import Filters

from .copy import DEFAULT_CONNECTIONS, CopyRequest, run_copy
from .verify import VerifyRequest, check_report_paths, run_verify

#: Test hook: ``FSMOVE_TEST_CRASH_AT=copy`` makes fsmove SIGKILL itself when that phase
#: starts (the copy, verify and delta phases send no API request a test could kill on).
CRASH_ENV = "FSMOVE_TEST_CRASH_AT"
#: How long the switch waits for a deployment that is still running (seconds).
DEPLOY_WAIT = 1800.0
DEPLOY_POLL = 5.0


@dataclass(frozen=True)
class MigrateRequest:
    app: str
    zone: str
    buckets: tuple[str, ...] = ()  # "OLD=NEW", as typed
    until: Until | None = None
    dry_run: bool = False
    yes: bool = False
    repo: Path | None = None
    nameservers: tuple[str, ...] = ()
    reports: tuple[Path, ...] = ()
    workers: int = 128
    src_connections: int | None = None
    dst_connections: int | None = None
    bwlimit: float | None = None
    retries: int = 5
    retry_delay: float = 1.0
    connect: ConnectOptions = field(default_factory=ConnectOptions)
    quiet: bool = False


def _progress(line: str) -> None:
    print(f"fsmove migrate: {line}", file=sys.stderr, flush=True)


def _say(line: str) -> None:
    print(line, flush=True)


def _crash_point(phase: str) -> None:
    if os.environ.get(CRASH_ENV) == phase:
        os.kill(os.getpid(), signal.SIGKILL)


def parse_bucket_options(items: tuple[str, ...]) -> dict[str, str]:
    pairs: dict[str, str] = {}
    for item in items:
        old, sep, new = item.partition("=")
        if not sep or not old.strip() or not new.strip():
            raise UsageError(f"--bucket {item!r}: write it as OLD=NEW (add-on ids or names)")
        pairs[old.strip()] = new.strip()
    return pairs


async def _reach(bucket: Bucket, *, name: str, connect: ConnectOptions) -> None:
    """Log in to the bucket over FTP and stat its root; writes nothing."""
    endpoint = bucket.endpoint("/")
    store = open_store(endpoint, connect, writable=False)
    try:
        session = await store.connect()
        try:
            await session.stat("")
        finally:
            await session.close()
    except AuthError as exc:
        raise ConfigError(
            f"preflight: bucket {name} refused its FTP login at {endpoint.display} ({exc}); "
            "check the add-on in the Console, then rerun") from None
    except (BackendError, OSError) as exc:
        raise FsmoveError(
            f"preflight: cannot reach bucket {name} over FTP at {endpoint.display} ({exc}); "
            "check the network, then rerun") from None
    finally:
        await store.aclose()


async def _reach_all(buckets: list[tuple[str, Bucket]], connect: ConnectOptions) -> None:
    results = await asyncio.gather(*(_reach(b, name=n, connect=connect) for n, b in buckets),
                                   return_exceptions=True)
    for result in results:
        if isinstance(result, BaseException):
            raise result


async def _plan_copy(src: Endpoint, dst: Endpoint, *, options: CopyOptions,
                     connect: ConnectOptions) -> CopyPlan:
    """The copy engine's own plan, both sides opened read-only."""
    src_pool = SessionPool(open_store(src, connect, writable=False),
                           max_sessions=DEFAULT_CONNECTIONS[src.scheme])
    dst_pool = SessionPool(open_store(dst, connect, writable=False),
                           max_sessions=DEFAULT_CONNECTIONS[dst.scheme])
    try:
        engine = CopyEngine(src=src_pool, dst=dst_pool, journal=None, options=options)
        return await engine.plan()
    finally:
        await asyncio.gather(src_pool.aclose(), dst_pool.aclose(), return_exceptions=True)


def _confirm(req: MigrateRequest) -> None:
    """Acting needs --yes or a "yes" at a terminal; refused in one line otherwise."""
    if req.dry_run or req.yes:
        return
    if not sys.stdin.isatty():
        raise UsageError(f"fsmove migrate changes {req.app} and creates buckets: pass --yes "
                         "to go ahead (or --dry-run to see every step), no terminal to ask")
    print(f"fsmove migrate creates a new bucket in {req.zone} for each bucket {req.app} "
          f"mounts, copies them, then moves {req.app} to {req.zone}, points its "
          "CC_FS_BUCKET* at the new buckets and redeploys it once (`fsmove plan` and "
          "--dry-run show every step).", file=sys.stderr)
    try:
        answer = input("Type yes to go ahead: ")
    except EOFError:
        answer = ""
    if answer.strip().lower() not in ("y", "yes"):
        raise UsageError("not confirmed: nothing was changed")


class Migration:
    """One invocation: the survey, the journal, the phases."""

    def __init__(self, req: MigrateRequest, checker: DnsChecker | None) -> None:
        self.req = req
        self.checker = checker
        self.cli = CleverCli(dry_run=req.dry_run, echo=_say)
        self.api = CleverApi.from_cli_environment()
        self.survey: Survey = survey(self.cli, self.api, req.app, repo=req.repo)
        app = self.survey.app
        if app.is_php:
            raise UsageError(f"{app.name} is a PHP app: PHP apps cannot change zone and are "
                             "re-created instead, which this path does not do")
        self.path = migrate_state.state_path(app.id, req.zone)
        self.snap_path = migrate_state.snapshot_path(app.id, req.zone)
        loaded = migrate_state.load(self.path)
        self.resumed = loaded is not None
        self.state: MigrateState = loaded or MigrateState(
            app_id=app.id, app_name=app.name, owner_id=app.owner_id, from_zone=app.zone,
            to_zone=req.zone)
        self.access: dict[str, Bucket] = {}
        self.outcome: dict[str, str] = {}

    # -- journal -----------------------------------------------------------------------
    def save(self) -> None:
        if not self.req.dry_run:
            migrate_state.save(self.path, self.state)

    # -- helpers -----------------------------------------------------------------------
    def _app_path(self) -> str:
        return self.api.application_path(self.state.owner_id, self.state.app_id)

    def _bucket(self, addon_id: str) -> Bucket:
        if addon_id not in self.access:
            self.access[addon_id] = read_bucket(self.cli, addon_id)
        return self.access[addon_id]

    def _fill_access(self, ids: list[str]) -> None:
        """Read at once the buckets the survey did not (unlinked since, or new)."""
        missing = [i for i in dict.fromkeys(ids) if i not in self.access]
        found = children.parallel([lambda i=i: read_bucket(self.cli, i) for i in missing])
        for addon_id, bucket in zip(missing, found, strict=True):
            self.access[addon_id] = bucket

    def _urls(self, pair: BucketPair) -> tuple[str, str]:
        return f"clever://{pair.old_id}", f"clever://{pair.new_id or f'<new {pair.new_name}>'}"

    def _label(self, pair: BucketPair) -> str:
        return f"{pair.old_name} -> {pair.new_name}"

    def _deployments(self) -> list[dict[str, Any]]:
        data = self.api.get(self._app_path() + "/deployments")
        return [d for d in data if isinstance(d, dict)] if isinstance(data, list) else []

    # -- preflight ---------------------------------------------------------------------
    def _new_name(self, old_name: str, taken: set[str]) -> str:
        base = f"{old_name}-{self.req.zone}"
        name, n = base, 2
        while name in taken:
            name, n = f"{base}-{n}", n + 1
        taken.add(name)
        return name

    def _fix_pairs(self) -> None:
        sv, req = self.survey, self.req
        wanted = parse_bucket_options(req.buckets)
        reuse: dict[str, dict[str, Any]] = {}
        for old_text, new_text in wanted.items():
            old, new = sv.find_addon(old_text), sv.find_addon(new_text)
            if new.get("providerId") != "fs-bucket":
                raise UsageError(f"--bucket {old_text}={new_text}: {new_text} is not an FS "
                                 "Bucket")
            if str(new.get("region")) != req.zone:
                raise UsageError(f"--bucket {old_text}={new_text}: {new_text} is in "
                                 f"{new.get('region')}, not {req.zone} (a bucket is mounted "
                                 "only by apps in its own zone)")
            reuse[str(old["addonId"])] = new
        ours = {b.addon_id for b in sv.buckets}
        for old_id in reuse:
            if old_id not in ours:
                raise UsageError(f"--bucket: {old_id} is not a bucket {sv.app.name} mounts "
                                 f"({', '.join(b.name for b in sv.buckets) or 'none'})")
        taken = {str(a.get("name")) for a in sv.catalogue.values()}
        pairs: list[BucketPair] = []
        for b in sv.buckets:
            if b.region == req.zone:
                raise UsageError(f"bucket {b.name} is already in {req.zone}")
            new = reuse.get(b.addon_id)
            if new is not None:
                new_bucket = self._bucket(str(new["addonId"]))
                pairs.append(BucketPair(
                    old_id=b.addon_id, old_name=b.name, plan=b.plan, old_host=b.host,
                    linked=b.linked, new_name=str(new.get("name")), new_id=str(new["addonId"]),
                    new_host=new_bucket.host, reused=True))
                if str(new.get("planSlug")) != b.plan:
                    _say(f"warning: --bucket {new.get('name')} has plan {new.get('planSlug')}, "
                         f"{b.name} has {b.plan}")
            else:
                pairs.append(BucketPair(
                    old_id=b.addon_id, old_name=b.name, plan=b.plan, old_host=b.host,
                    linked=b.linked, new_name=self._new_name(b.name, taken)))
        self.state.pairs = pairs

    def preflight(self) -> ExitCode:
        sv, req = self.survey, self.req
        if req.zone == sv.app.zone and not self.resumed:
            raise UsageError(f"{sv.app.name} is already in {req.zone}")
        for addon_id, bucket in self._survey_access().items():
            self.access[addon_id] = bucket
        if not self.state.pairs:
            self._fix_pairs()
        ids = [p.old_id for p in self.state.pairs] + [p.new_id for p in self.state.pairs
                                                      if p.new_id]
        self._fill_access(ids)
        asyncio.run(_reach_all([(self._name_of(i), self.access[i]) for i in ids],
                               req.connect))
        _say(f"{sv.app.name} ({sv.app.id}) in {sv.app.owner_text}, zone "
             f"{self.state.from_zone} -> {req.zone}, {sv.app.instance_type}")
        for pair in self.state.pairs:
            mounts = ", ".join(m.variable for m in self._mounts_of(pair)) or "no variable"
            how = "linked" if pair.linked else "not linked"
            target = (f"{pair.new_name} ({pair.new_id}, given)" if pair.reused
                      else pair.new_id or f"new {pair.new_name} (plan {pair.plan})")
            _say(f"  bucket {pair.old_name} ({pair.old_id}, plan {pair.plan}, {how}; mounted "
                 f"by {mounts}) -> {target}")
        for warning in sv.warnings:
            _say(f"  ! {warning}")
        if not self.state.is_done("switch"):
            print_ttl_advice(sv.user_domains, checker=self.checker, say=_say)
        self.outcome["preflight"] = f"{len(self.state.pairs)} bucket(s)"
        return ExitCode.OK

    def _survey_access(self) -> dict[str, Bucket]:
        from fsmove.clever.bucket import _known

        return {i: b for i, b in _known.items() if i.startswith("addon_")}

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

    # -- create ------------------------------------------------------------------------
    def create(self) -> ExitCode:
        sv, req = self.survey, self.req
        for pair in self.state.pairs:
            if pair.new_id:
                continue
            if pair.creating:
                same = [a for a in sv.catalogue.values()
                        if a.get("name") == pair.new_name and a.get("region") == req.zone
                        and a.get("providerId") == "fs-bucket"]
                if len(same) > 1:
                    raise FsmoveError(
                        f"{len(same)} add-ons named {pair.new_name} exist in {req.zone}: keep "
                        "one, delete the others in the Console, then rerun")
                if same:
                    self._adopt(pair, str(same[0]["addonId"]), same[0])
                    _say(f"create: {pair.new_name} ({pair.new_id}) exists already (made by "
                         "the run that stopped): kept")
                    continue
            pair.creating = True
            self.save()
            made = self.cli.addon_create_fs_bucket(pair.new_name, zone=req.zone,
                                                   plan=pair.plan, owner=sv.app.owner_id)
            if made is None:  # dry run
                continue
            env = {str(p.get("name")): str(p.get("value", "")) for p in made.get("env") or []
                   if isinstance(p, dict)}
            if env.get("BUCKET_HOST") and env.get("BUCKET_FTP_PASSWORD"):
                bucket = Bucket(addon=str(made["id"]), host=env["BUCKET_HOST"],
                                user=env.get("BUCKET_FTP_USERNAME", ""),
                                password=Secret(env["BUCKET_FTP_PASSWORD"]))
                remember_bucket(bucket, str(made["id"]), {"realId": made.get("realId")})
                self.access[str(made["id"])] = bucket
            self._adopt(pair, str(made["id"]), made)
            _say(f"create: {pair.new_name} ({pair.new_id}) in {req.zone}, plan {pair.plan}")
        if not req.dry_run:
            ids = [p.new_id for p in self.state.pairs if p.new_id]
            self._fill_access(ids)
            asyncio.run(_reach_all([(self._name_of(i), self.access[i]) for i in ids],
                                   req.connect))
        return ExitCode.OK

    def _adopt(self, pair: BucketPair, addon_id: str, entry: dict[str, Any]) -> None:
        pair.new_id = addon_id
        pair.creating = False
        bucket = self.access.get(addon_id) or self._bucket(addon_id)
        remember_bucket(bucket, addon_id, entry)
        pair.new_host = bucket.host
        self.save()

    # -- copy, verify, delta -----------------------------------------------------------
    def _copy(self, pair: BucketPair, *, delete: bool, checksum: bool) -> ExitCode:
        req = self.req
        src, dst = self._urls(pair)
        return run_copy(CopyRequest(
            src=src, dst=dst,
            options=CopyOptions(workers=req.workers, checksum=checksum, delete=delete,
                                bwlimit=req.bwlimit, retries=req.retries,
                                retry_delay=req.retry_delay),
            connect=req.connect, src_connections=req.src_connections,
            dst_connections=req.dst_connections, quiet=req.quiet))

    def _dry_copy(self, phase: str, *, delete: bool) -> ExitCode:
        for pair in self.state.pairs:
            src, _dst = self._urls(pair)
            if not pair.new_id:
                _say(f"{phase} (dry run): would run: fsmove copy {src} clever://<new "
                     f"{pair.new_name}>{' --delete' if delete else ''} (every file: the "
                     "new bucket does not exist yet)")
                continue
            plan = asyncio.run(_plan_copy(
                self.access[pair.old_id].endpoint("/"), self.access[pair.new_id].endpoint("/"),
                connect=self.req.connect,
                options=CopyOptions(workers=self.req.workers, dry_run=True, delete=delete)))
            line = (f"{self._label(pair)}: would copy {plan.files_to_copy} of "
                    f"{plan.files_total} files ({human_bytes(plan.bytes_to_copy)})")
            if delete:
                line += f", delete {plan.files_to_delete} only in the new bucket"
            _say(f"{phase} (dry run): {line}")
        return ExitCode.OK

    def copy(self) -> ExitCode:
        if self.req.dry_run:
            return self._dry_copy("copy", delete=False)
        for pair in self.state.pairs:
            _progress(f"copy: {self._label(pair)}")
            code = self._copy(pair, delete=False, checksum=False)
            if code is not ExitCode.OK:
                return code
        return ExitCode.OK

    def _verify_pair(self, pair: BucketPair, *, filters: Filters | None = None,
                     report: bool = True) -> ExitCode:
        from fsmove.verify.results import Tier

        req = self.req
        src, dst = self._urls(pair)
        reports: tuple[Path, ...] = ()
        if report and req.reports:
            many = len(self.state.pairs) > 1
            reports = tuple(p.with_name(f"{p.stem}-{pair.old_name}{p.suffix}") if many else p
                            for p in req.reports)
        return run_verify(VerifyRequest(
            src=src, dst=dst, tier=Tier.FULL, connect=req.connect, reports=reports,
            src_connections=req.src_connections, dst_connections=req.dst_connections,
            quiet=req.quiet, filters=filters or Filters(), use_journal=filters is None))

    def verify(self) -> ExitCode:
        if self.req.dry_run:
            for pair in self.state.pairs:
                src, dst = self._urls(pair)
                _say(f"verify (dry run): would run: fsmove verify {src} {dst}")
            return ExitCode.OK
        for pair in self.state.pairs:
            code = self._verify_pair(pair)
            if code is ExitCode.MISMATCH:
                # Files the running app changed or removed since the copy: the delta
                # brings them in line, then one more verification. No loop.
                _progress(f"verify: {self._label(pair)} differs; the app keeps writing to "
                          "the old bucket: running the delta (--delete, comparing contents), "
                          "then verifying again")
                code = self._copy(pair, delete=True, checksum=True)
                if code is ExitCode.OK:
                    code = self._verify_pair(pair)
            if code is not ExitCode.OK:
                self.state.verdict = "mismatch" if code is ExitCode.MISMATCH else "unreadable"
                _progress(f"verify: {self._label(pair)} still differs after the delta (exit "
                          f"{int(code)}); the app was not touched. See the report, then rerun")
                return code
        self.state.verdict = "match"
        self.outcome["verify"] = "match: the new buckets hold exactly the old ones' files"
        return ExitCode.OK

    def delta(self) -> ExitCode:
        if self.req.dry_run:
            return self._dry_copy("delta", delete=True)
        for pair in self.state.pairs:
            _progress(f"delta: {self._label(pair)}")
            code = self._copy(pair, delete=True, checksum=False)
            if code is not ExitCode.OK:
                return code
        snapshot: dict[str, Any] = {}
        for pair in self.state.pairs:
            old, new = list_trees([self.access[pair.old_id].endpoint("/"),
                                   self.access[str(pair.new_id)].endpoint("/")],
                                  self.req.connect)
            snapshot[pair.old_id] = {"old": old, "new": new}
        migrate_state.save_snapshot(self.snap_path, snapshot)
        return ExitCode.OK

    # -- switch ------------------------------------------------------------------------
    def _plan_steps(self) -> list[Step]:
        sv, req = self.survey, self.req
        steps: list[Step] = []
        if sv.app.zone != req.zone:
            steps.append(Step("zone", [req.zone]))
        new_of = {p.old_host: p for p in self.state.pairs}
        for pair in self.state.pairs:
            if pair.linked:
                steps.append(Step("link", [str(pair.new_id)]))
        from fsmove.clever.app import mounts_of

        for mount in mounts_of(sv.env.own):
            pair = new_of.get(mount.host)
            if pair is not None:
                steps.append(Step("env", [mount.variable,
                                          mount.moved_to(str(pair.new_host)).value]))
        for pair in self.state.pairs:
            if pair.linked:
                steps.append(Step("unlink", [pair.old_id]))
        steps.append(Step("restart", []))
        return steps

    def _dry_new_id(self, pair: BucketPair) -> str:
        return pair.new_id or f"<new {pair.new_name}>"

    def switch(self) -> ExitCode:
        if self.state.steps is None:
            if self.req.dry_run and any(not p.new_id for p in self.state.pairs):
                for pair in self.state.pairs:
                    pair.new_id, pair.new_host = (self._dry_new_id(pair),
                                                  pair.new_host or f"<host of {pair.new_name}>")
            self.state.steps = self._plan_steps()
            self.save()
        total = len(self.state.steps)
        for index, step in enumerate(self.state.steps):
            label = f"switch [{index + 1}/{total}] {step.description}"
            if step.done:
                _progress(f"{label}: done already")
                continue
            try:
                self._run_step(step)
            except CleverError as exc:
                raise type(exc)(f"{exc}; the switch stopped at {step.description}: fix the "
                                "cause and rerun the same command to continue there") from None
            if not self.req.dry_run:
                step.done = True
                self.save()
                _progress(f"{label}: done")
        return ExitCode.OK

    def _run_step(self, step: Step) -> None:
        app_id, dry = self.state.app_id, self.req.dry_run
        linked = set(self.survey.env.addons)
        if step.kind == "zone":
            zone = step.args[0]
            if dry:
                _say(f"would request: PUT {self._app_path()} {{\"zone\": \"{zone}\"}} (then "
                     "read the app back)")
                return
            if self.api.application(self.state.owner_id, app_id).get("zone") == zone:
                return  # moved by the run that stopped, or by hand
            self.api.move_application(self.state.owner_id, app_id, zone)
            _say(f"switch: {self.state.app_name} is now in {zone}")
        elif step.kind == "link":
            if step.args[0] not in linked:
                self.cli.link_addon(app_id, step.args[0])
        elif step.kind == "unlink":
            if step.args[0] in linked or dry:
                self.cli.unlink_addon(app_id, step.args[0])
        elif step.kind == "env":
            if self.survey.env.own.get(step.args[0]) != step.args[1]:
                self.cli.env_set(app_id, step.args[0], step.args[1])
        elif step.kind == "restart":
            self._redeploy()
        else:
            raise CleverError(f"unknown switch step {step.kind!r} in the journal")

    def _redeploy_outcome(self) -> str | None:
        """The id of a redeploy of this migration that succeeded, waiting for one still
        running; None when none did. Only deployments after the baseline count."""
        if self.state.baseline is None:
            return None
        deadline = time.monotonic() + DEPLOY_WAIT
        while True:
            fresh = [d for d in self._deployments()
                     if str(d.get("uuid") or d.get("id")) not in self.state.baseline]
            ok = [d for d in fresh if d.get("state") == "OK"]
            if ok:
                return str(ok[0].get("uuid") or ok[0].get("id"))
            if not any(d.get("state") == "WIP" for d in fresh):
                return None
            if time.monotonic() > deadline:
                raise CleverError(f"a deployment of {self.state.app_name} is still running "
                                  f"after {DEPLOY_WAIT:.0f} s; rerun once it ended")
            _progress("switch: a deployment is running; waiting for its end")
            time.sleep(DEPLOY_POLL)

    def _redeploy(self) -> None:
        if self.req.dry_run:
            self.cli.restart(self.state.app_id)
            return
        done = self._redeploy_outcome()
        if done is None:
            if self.state.baseline is None:
                self.state.baseline = [str(d.get("uuid") or d.get("id"))
                                       for d in self._deployments()]
                self.save()
            try:
                self.cli.restart(self.state.app_id)
            except CleverError as exc:
                # `clever restart` fails when the deployment fails, but also when only its
                # polling did: the deployment list tells.
                done = self._redeploy_outcome()
                if done is None:
                    raise CleverError(f"the redeploy of {self.state.app_name} did not succeed "
                                      f"({exc}); the old instances keep running") from None
            else:
                done = self._redeploy_outcome()
                if done is None:
                    raise CleverError(f"the redeploy of {self.state.app_name} did not succeed "
                                      "(`clever activity` shows why); the old instances keep "
                                      "running")
        else:
            _say(f"switch: the redeploy of the run that stopped succeeded ({done}): not "
                 "redeploying again")
        self.state.redeployed = done
        self.save()

    # -- catch-up ----------------------------------------------------------------------
    def catchup(self) -> ExitCode:
        if self.req.dry_run:
            _say("catchup (dry run): would copy what the old instances wrote to the old "
                 "buckets after the final delta (never over a file the new app changed)")
            return ExitCode.OK
        snapshot = migrate_state.load_snapshot(self.snap_path)
        conflicts: list[str] = []
        for pair in self.state.pairs:
            before = snapshot.get(pair.old_id) or {"old": {}, "new": {}}
            old_now, new_now = list_trees([self.access[pair.old_id].endpoint("/"),
                                           self.access[str(pair.new_id)].endpoint("/")],
                                          self.req.connect)
            written_old = changed(old_now, before["old"])
            written_new = changed(new_now, before["new"])
            both = sorted(written_old & written_new)
            clash = [p for p in both if old_now.get(p) != new_now.get(p)]
            fresh = sorted(p for p in written_old - written_new)
            key = f"{pair.old_name}:"
            conflicts += [p for p in clash if key + p not in self.state.conflicts_reported]
            self.state.conflicts_reported += [key + p for p in clash
                                              if key + p not in self.state.conflicts_reported]
            if clash:
                for p in clash:
                    _say(f"catchup: CONFLICT {pair.old_name}:/{p}: the old app and the new "
                         "one both wrote it after the final delta; the new app's version is "
                         "kept")
            if not fresh:
                _say(f"catchup: {self._label(pair)}: nothing new in the old bucket")
            else:
                filters = Filters(include=tuple(fnmatch_exact(p) for p in fresh))
                _say(f"catchup: {self._label(pair)}: {len(fresh)} file(s) the old instances "
                     "wrote after the final delta")
                code = self._copy_filtered(pair, filters)
                if code is ExitCode.OK:
                    code = self._verify_pair(pair, filters=filters, report=False)
                if code is not ExitCode.OK:
                    return code
                new_now = list_trees([self.access[str(pair.new_id)].endpoint("/")],
                                     self.req.connect)[0]
            # The reference moves on: a rerun compares with the trees as this catch-up
            # left them (a file it copied is not "written by the new app", whatever
            # modification time the new bucket gave it).
            snapshot[pair.old_id] = {"old": old_now, "new": new_now}
            migrate_state.save_snapshot(self.snap_path, snapshot)
        self.save()
        if conflicts:
            _progress(f"catchup: {len(conflicts)} conflict(s) listed above (exit 4): compare "
                      "each and keep the right version by hand; a rerun goes on (a conflict "
                      "is reported once)")
            return ExitCode.MISMATCH
        return ExitCode.OK

    def _copy_filtered(self, pair: BucketPair, filters: Filters) -> ExitCode:
        req = self.req
        src, dst = self._urls(pair)
        return run_copy(CopyRequest(
            src=src, dst=dst,
            options=CopyOptions(workers=req.workers, filters=filters, retries=req.retries,
                                retry_delay=req.retry_delay, bwlimit=req.bwlimit),
            connect=req.connect, quiet=req.quiet))

    # -- dns ---------------------------------------------------------------------------
    def dns(self) -> ExitCode:
        print_records(self.survey.user_domains, zone=self.req.zone,
                      nameservers=self.req.nameservers, checker=self.checker, say=_say)
        if self.survey.buckets_json:
            for pair in self.state.pairs:
                _say(f"clevercloud/buckets.json: change bucket_host {pair.old_host} to "
                     f"{pair.new_host} in the repository, then push")
        return ExitCode.OK

    # -- the walk ----------------------------------------------------------------------
    def _before_walk(self) -> None:
        """A switch that stopped before its redeploy succeeded: the old instances kept
        writing to the old buckets, so the delta (and its snapshot) runs again first."""
        st = self.state
        if st.steps is None or st.is_done("switch") or self.req.dry_run:
            return
        done = self._redeploy_outcome()
        if done is not None:
            st.redeployed = done
            for step in st.steps:
                step.done = True
            st.mark_done("switch")
            _progress(f"the redeploy of the run that stopped succeeded ({done})")
        elif st.is_done("delta"):
            st.undo("delta")
            _progress("the switch stopped before the redeploy: the old app kept writing, "
                      "so the delta runs again first")
        self.save()

    def run(self) -> ExitCode:
        handlers: dict[str, Callable[[], ExitCode]] = {
            "preflight": self.preflight, "create": self.create, "copy": self.copy,
            "verify": self.verify, "delta": self.delta, "switch": self.switch,
            "catchup": self.catchup, "dns": self.dns}
        last = PHASES.index(self.req.until.value) if self.req.until else len(PHASES) - 1
        if self.resumed:
            done = [p for p in PHASES if self.state.is_done(p)]
            _progress(f"continuing from the journal {self.path} (done: "
                      f"{', '.join(done) or 'nothing'})")
        self._before_walk()
        for index, phase in enumerate(PHASES[: last + 1]):
            label = f"[{index + 1}/{len(PHASES)}] {phase}"
            if self.state.is_done(phase) and phase not in ("preflight", "dns"):
                _progress(f"{label}: done already")
                continue
            _crash_point(phase)
            _progress(f"{label}: start")
            try:
                code = handlers[phase]()
            except BaseException:
                self.state.failed_phase, self.state.failed_code = phase, None
                self.save()
                self._summary(stopped_at=phase)
                raise
            if code is not ExitCode.OK:
                self.state.failed_phase, self.state.failed_code = phase, int(code)
                self.save()
                self._summary(stopped_at=phase)
                return code
            if not self.req.dry_run:
                self.state.mark_done(phase)
                self.save()
            _progress(f"{label}: {'looked at' if self.req.dry_run else 'done'}")
        self._summary(stopped_at=None)
        return ExitCode.OK

    def _summary(self, *, stopped_at: str | None) -> None:
        req, st = self.req, self.state
        head = "dry run of the migration" if req.dry_run else "migration"
        _say(f"\n{head} of {st.app_name} ({st.app_id}) from {st.from_zone} to {st.to_zone}")
        for pair in st.pairs:
            _say(f"  bucket {pair.old_name} ({pair.old_id}) -> {pair.new_name} "
                 f"({pair.new_id or 'not created yet'})")
        for phase in PHASES:
            text = "done" if st.is_done(phase) else "not run"
            if req.dry_run and not st.is_done(phase):
                text = "looked at (above)"
            if phase == stopped_at:
                text = "STOPPED here"
            _say(f"  {phase:<9}  {text}")
        if req.dry_run:
            _say("dry run: nothing was changed")
        elif stopped_at is None and req.until and req.until.value != PHASES[-1]:
            nxt = PHASES[PHASES.index(req.until.value) + 1]
            _say(f"stopped after {req.until} as asked; rerun without --until to continue at "
                 f"{nxt} (journal: {self.path})")
        elif stopped_at is None:
            _say(f"migration of {st.app_name} to {st.to_zone} done (journal: {self.path})")
        else:
            _say(f"stopped at {stopped_at}; rerun the same command to continue there "
                 f"(journal: {self.path})")


def run_migrate(req: MigrateRequest) -> ExitCode:
    if req.zone not in ZONES:
        raise UsageError(f"--to {req.zone!r}: not a zone with FS Buckets; use one of "
                         + ", ".join(ZONES) + " (a new bucket of your own: --bucket OLD=NEW)")
    parse_bucket_options(req.buckets)
    check_report_paths(req.reports)
    # A PHP app cannot change zone: it is re-created (fsmove/clever/php.py), with its own
    # confirmation and journal; the options that only apply to a move are refused there.
    from fsmove.clever.php import migrate_if_php

    php_code = migrate_if_php(
        req.app, req.zone, yes=req.yes, dry_run=req.dry_run, quiet=req.quiet,
        connect=req.connect,
        other_options=tuple(flag for flag, given in (
            ("--bucket", bool(req.buckets)), ("--until", req.until is not None),
            ("--repo", req.repo is not None), ("--report", bool(req.reports))) if given),
    )
    if php_code is not None:
        return php_code
    checker = DnsChecker(list(req.nameservers)) if req.nameservers else None
    _confirm(req)
    return Migration(req, checker).run()



