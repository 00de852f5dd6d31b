"""Re-create a PHP application in another zone: ``fsmove migrate --app APP --to ZONE``
when APP is a PHP app (the zone-migration guide, "PHP Applications": a PHP app cannot
change zone).

Steps, in order, each journaled (fsmove/clever/php_state.py) so that a rerun after a
kill, a 500 or a failed deployment continues where it stopped without a second app,
bucket, link or successful deployment:

1. **create** the new PHP app in ZONE, named ``<old name>-<zone>``, same PHP instance
   (type, version, variant) and instances/flavors as the old one. FTP-deployed when the
   old one is: through the API (``POST …/applications`` with ``"deploy": "ftp"``,
   fsmove/clever/api.py; the CLI cannot), the platform then giving it its own FS Bucket
   for the code, recorded at once. Git-deployed: ``clever create --type php --region
   ZONE [--org OWNER] NAME`` in a temporary folder (it writes .clever.json in its cwd).
   The journal records that the creation started before it is asked for; a rerun that
   finds no recorded id looks for the app by its name before creating one.
2. **env**: the old app's own variables, ``clever env import --json`` reading the
   ``[{name, value}]`` array on stdin (values never in an argv).
3. **links**: every add-on linked to the old app but its own FTP bucket (``clever service
   link-addon``), every app dependency (``clever service link-app``); only those the new
   app does not have yet, read just before.
4. **scale**: min/max instances and flavors, build flavor and separate build, in one
   ``clever scale`` with only what differs.
5. **options**: ``clever config set ID true|false``, one call per option that differs
   (``config update --enable-…`` does nothing in clever-tools 4.11); then the new app is
   read back and must match the old one's scaling and options.
6. **code**: FTP: the old app's own bucket copied into the new one's with fsmove's copy
   engine (``--delete``: the new bucket ends as the old one, byte for byte), then a full
   verification; a difference stops here (exit 4) before anything is deployed. Git: the
   new app's git remote and the push command are printed and the run stops (exit 3); a
   rerun continues once a deployment of the new app succeeded.
7. **deploy** (FTP): ``clever restart``, then the deployment list must show a new
   successful deployment. The ids of the deployments that existed before are journaled
   first: a rerun finds a deployment that succeeded meanwhile (no second restart), waits
   for one still running, and restarts again only when it failed.
8. **domains**, only after that: for each domain of the old app (but its own
   ``app-….cleverapps.io``), ``clever domain rm D --app OLD`` then at once ``clever
   domain add D --app NEW`` (a domain held by another app is refused, so rm comes
   first; the add is retried once at once if it fails, the domain being on no app).
   Each domain is marked moved in the journal; a rerun reads both apps' domains first.
9. **catchup** (FTP): what the old app wrote to or deleted from its own bucket after the
   code copy (it served its domains until they moved) is carried over into the new app's
   bucket, never over what the new app changed (a conflict: exit 4, listed once); the
   paths moved are verified (fsmove/clever/php_catchup.py, the decision of ``fsmove
   migrate``'s catch-up).

Then the DNS records for ZONE are printed, for the user's own domains only (never
``*.cleverapps.io``). The old application and its own FTP bucket are never unlinked,
deleted, stopped or changed, except for losing their domains. ``--dry-run`` makes only
GET requests and prints every command that would change something. Acting needs
``--yes`` or a confirmation at a terminal.

Reads go through the API in-process (fsmove/clever/php_survey.py: milliseconds) rather
than through `clever` children (~1-2 s each); changes go through the `clever` command made
for each of them, as the guide does by hand.
"""

from __future__ import annotations

import sys
from collections.abc import Callable

from fsmove.clever import php_state, statefile
from fsmove.clever.api import CleverApi
from fsmove.clever.clever_tool import CleverCli, CleverError
from fsmove.clever.php_catchup import CatchUpStep
from fsmove.clever.php_create import CreateStep
from fsmove.clever.php_release import ReleaseSteps
from fsmove.clever.php_run import PhpMigrationRequest, is_secret_name
from fsmove.clever.php_settings import SettingsSteps
from fsmove.clever.php_state import STEPS, PhpState
from fsmove.clever.php_survey import (
    CLEVERAPPS,
    OPTION_IDS,
    OldApp,
    read_app,
    survey,
)
from fsmove.clever.sharing import MovedBucket, describe, other_uses
from fsmove.endpoint_access import ConnectOptions
from fsmove.errors import FsmoveError, UsageError
from fsmove.exitcodes import ExitCode
from fsmove.transfers.copy import CopyOptions


def is_php_app(api: CleverApi, app: str) -> bool:
    """Whether ``app`` (a name or an id) is a PHP application (one GET /v2/summary and
    one GET of the app)."""
    owner, app_id = api.locate_app(app)
    return read_app(api, owner, app_id).is_php


def migrate_if_php(app: str, zone: str, *, yes: bool, dry_run: bool, quiet: bool,
                   connect: ConnectOptions, copy: CopyOptions | None = None,
                   src_connections: int | None = None, dst_connections: int | None = None,
                   other_options: tuple[str, ...] = ()) -> ExitCode | None:
    """``fsmove migrate``'s dispatch: the re-creation's exit code when ``app`` is a PHP
    app, None when it is not (the caller then moves it). ``other_options`` names the
    options given that only apply to a move (``--until``, ``--bucket``, ...): refused."""
    api = CleverApi.from_cli_environment()
    if not is_php_app(api, app):
        return None
    if other_options:
        raise UsageError(f"{', '.join(other_options)}: not for a PHP app, which is "
                         f"re-created rather than moved; run `fsmove migrate --app {app} "
                         f"--to {zone}` without {'it' if len(other_options) == 1 else 'them'}")
    return run_php_migration(PhpMigrationRequest(
        app=app, zone=zone, yes=yes, dry_run=dry_run, quiet=quiet, connect=connect,
        copy=copy or CopyOptions(), src_connections=src_connections,
        dst_connections=dst_connections), api=api)


def run_php_migration(req: PhpMigrationRequest, *, api: CleverApi | None = None,
                      cli: CleverCli | None = None,
                      out: Callable[[str], None] | None = None) -> ExitCode:
    """The whole re-creation (module docstring); the exit code to end with."""
    say = out or (lambda line: print(line, flush=True))
    api = api or CleverApi.from_cli_environment()
    cli = cli or CleverCli(dry_run=req.dry_run, echo=say)
    migration = _PhpMigration(req, api, cli, say)
    try:
        return migration.run()
    finally:
        if migration.lock_path is not None:
            statefile.release(migration.lock_path)


class _PhpMigration(CreateStep, SettingsSteps, ReleaseSteps, CatchUpStep):
    """The walk over the steps (module docstring)."""

    def run(self) -> ExitCode:
        req = self.req
        owner, app_id = (req.owner, req.app) if req.owner and req.app.startswith("app_") \
            else self.api.locate_app(req.app)
        old = survey(self.api, owner, app_id)
        self.old = old
        if not old.view.is_php:
            raise UsageError(f"{old.view.name} is a {old.view.instance_type or '?'} app, not "
                             "a PHP app: fsmove migrate moves it to the zone instead")
        for cli_secret in (v for k, v in old.env if is_secret_name(k)):
            self.cli.remember_secret(cli_secret)
        self.path = php_state.state_path(old.view.id, self.zone)
        if not req.dry_run:
            self.lock_path = statefile.app_lock(old.view.id)
            statefile.hold(self.lock_path, f"a migration of {old.view.name}")
        state = php_state.load(self.path)
        if state is None:
            if old.view.zone == self.zone:
                raise UsageError(f"{old.view.name} is already in {self.zone}: nothing to move")
            self._refuse_foreign_mounts(old)
            self._say_who_keeps_the_code_bucket(old, owner)
            state = PhpState(
                old_app=old.view.id, owner=owner, zone=self.zone,
                new_name=f"{old.view.name}-{self.zone}", ftp=old.ftp,
                old_bucket=old.own_bucket.id if old.own_bucket else None,
                domains=tuple(old.domains_to_move))
        else:
            self.say(f"continuing the re-creation of {old.view.name} from its journal "
                     f"{self.path}: {', '.join(state.done) or 'nothing'} done")
        self.state = state
        self._print_plan(old)
        if not req.dry_run and not all(state.is_done(s) for s in STEPS):
            self._confirm(old)
        handlers: dict[str, Callable[[], ExitCode]] = {
            "create": self._create, "env": self._env, "links": self._links,
            "scale": self._scale, "options": self._options, "code": self._code,
            "deploy": self._deploy, "domains": self._domains, "catchup": self._catch_up,
        }
        for index, step in enumerate(STEPS):
            label = f"[{index + 1}/{len(STEPS)}] {step}"
            if self.st.is_done(step):
                self.say(f"{label}: done already")
                continue
            try:
                code = handlers[step]()
            except CleverError as exc:
                raise type(exc)(f"{exc}; the re-creation stopped at {step}: fix the cause "
                                "and rerun the same command to continue there") from None
            if code is not ExitCode.OK:
                return code
            if not req.dry_run:
                self._save(self.st.mark_done(step))
                self.say(f"{label}: done")
        self._print_dns()
        self._summary()
        return ExitCode.OK

    def _say_who_keeps_the_code_bucket(self, old: OldApp, owner: str) -> None:
        """Other apps that link or mount the old app's own FTP bucket keep it: the new
        app gets a bucket of its own, the old one is never changed, so nothing is lost;
        said once, on the first run (fsmove/clever/sharing.py)."""
        own = old.own_bucket
        if own is None:
            return
        bucket = MovedBucket(addon_id=own.id, name=own.name, host=old.own_bucket_host)
        uses, unread = other_uses(self.api, owner, old.view.id, [bucket])
        for line in unread:
            self.say(f"warning: {line}: fsmove cannot tell whether another app shares "
                     f"{own.name}")
        if uses:
            self.say(f"note: other apps use {old.view.name}'s code bucket and keep it "
                     f"(the new app gets its own copy): {describe(uses)}")

    def _refuse_foreign_mounts(self, old: OldApp) -> None:
        """A CC_FS_BUCKET* mount of a bucket outside ZONE cannot follow the app: an FS
        Bucket is mounted only by apps of its own zone."""
        foreign = {v: h for v, (h, region) in old.mounts.items() if region != self.zone}
        if foreign:
            names = ", ".join(f"{v} ({h})" for v, h in sorted(foreign.items()))
            raise UsageError(
                f"{old.view.name} mounts FS Buckets outside {self.zone} ({names}); a bucket "
                f"is mounted only by apps of its own zone: copy each to a bucket in "
                f"{self.zone} (fsmove copy) and point the variable of the new app at it; "
                "fsmove does not re-create a PHP app with its data buckets yet")

    def _print_plan(self, old: OldApp) -> None:
        v, st = old.view, self.st
        where = "personal space" if st.owner.startswith("user_") else "organisation"
        self.say(f"{v.name} ({v.id}, {where} {st.owner}) is a PHP app in {v.zone}: PHP apps "
                 f"cannot change zone, so it is re-created in {self.zone} as {st.new_name}; "
                 "the old app keeps running and is never deleted")
        if old.ftp and old.own_bucket:
            why = "" if old.ftp_reason == "deployed by FTP" else f" ({old.ftp_reason})"
            self.say(f"  deployed by FTP{why}: its code is in its FS Bucket "
                     f"{old.own_bucket.name} ({old.own_bucket.id}), copied into the new "
                     "app's own bucket")
        else:
            self.say("  deployed by git: you push the code to the new app when asked")
        self.say(f"  env: {len(old.env)} variables; add-ons to link: "
                 f"{', '.join(a.name for a in old.addons_to_link) or 'none'}; app "
                 f"dependencies: {', '.join(n for _i, n in old.dependencies) or 'none'}")
        s = v.scaling
        build = f"separate build {s.build_flavor}" if s.separate_build else "no separate build"
        self.say(f"  scaling: {s.min_instances}-{s.max_instances} instances, flavors "
                 f"{s.min_flavor}-{s.max_flavor}, {build}; options: "
                 + ", ".join(f"{k} {v.options[k]}" for k in OPTION_IDS))
        self.say(f"  domains to move once the new app runs: "
                 f"{', '.join(st.domains) or 'none'}")

    def _confirm(self, old: OldApp) -> None:
        if self.req.yes:
            return
        if not sys.stdin.isatty():
            raise UsageError(f"re-creating {old.view.name} in {self.zone} changes your "
                             "applications: add --yes (no terminal to confirm at)")
        answer = input(f"Re-create {old.view.name} in {self.zone} and move its domains? "
                       "[y/N] ")
        if answer.strip().lower() not in ("y", "yes"):
            raise UsageError("not confirmed: nothing was changed")

    def _print_dns(self) -> None:
        st = self.st
        own = [d for d in st.domains if not d.split("/", 1)[0].lower().endswith(CLEVERAPPS)]
        if not own:
            self.say("DNS: no domain of your own to point at the new zone")
            return
        target = f"domain.{st.zone}.clever-cloud.com."
        apex: set[str] = set()
        if st.new_app is not None or self.req.dry_run:
            try:
                listed = self.cli.domains(st.new_app or st.old_app)
                apex = {d.hostname.rstrip(".").lower() for d in listed if d.is_apex}
            except FsmoveError:
                apex = set()
        self.say(f"DNS: set these records for {st.zone} at your DNS provider (lower their "
                 "TTL to 60 s first and wait the old TTL):")
        for host in sorted({d.split("/", 1)[0].rstrip(".").lower() for d in own}):
            if host in apex:
                self.say(f"  {host}. A/AAAA: the {st.zone} zone's addresses (an apex cannot "
                         f"hold a CNAME; `clever domain diag --app {self.new_app}` lists "
                         f"them; or CNAME-flatten to {target})")
            else:
                self.say(f"  {host}. CNAME {target}")

    def _summary(self) -> None:
        st = self.st
        if self.req.dry_run:
            self.say("dry run: nothing was changed")
            return
        old_name = self.old.view.name if self.old else st.old_app
        self.say(f"re-creation of {old_name} in {st.zone} done: {st.new_name} ({st.new_app}) "
                 f"runs deployment {st.deployment}; the old app {st.old_app} is untouched "
                 f"but for its domains (delete it in the Console once you are satisfied) "
                 f"(journal: {self.path})")
