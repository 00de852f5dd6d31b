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

import json
import shlex
import sys
import tempfile
import time
from collections.abc import Callable
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any

from fsmove.endpoints import ConnectOptions
from fsmove.errors import FsmoveError, UsageError
from fsmove.exitcodes import ExitCode

from . import php_state
from .api import CleverApi, segment
from .cli import CleverCli, CleverCommand, CleverError
from .php_state import STEPS, PhpState
from .php_survey import (
    CLEVERAPPS,
    FS_BUCKET,
    OPTION_IDS,
    AppView,
    LinkedAddon,
    OldApp,
    dependencies,
    deployments,
    domains,
    linked_addons,
    read_app,
    survey,
)

#: How long a rerun waits for a deployment it finds still running, and how often it looks.
DEPLOY_WAIT = 1800.0
DEPLOY_POLL = 5.0
#: How long the new FTP app's own bucket may take to appear after the creation.
BUCKET_WAIT = 60.0
BUCKET_POLL = 2.0
_SECRET_WORDS = ("PASSWORD", "SECRET", "TOKEN", "KEY", "PASS", "CREDENTIAL")
_FINAL_FAILURES = ("FAIL", "FAILED", "CANCELLED", "CANCELED", "ERROR")


@dataclass(frozen=True)
class PhpMigrationRequest:
    app: str  # as the user spelled it: a name or app_…
    zone: str
    yes: bool = False
    dry_run: bool = False
    #: The owner id when the caller already resolved the app (else looked up).
    owner: str | None = None
    connect: ConnectOptions = field(default_factory=ConnectOptions)
    quiet: bool = False


def is_php_app(api: CleverApi, app: str) -> bool:
    """Whether ``app`` (a name or an id) is a PHP application (one GET /v2/summary and
    one GET of the app)."""
    owner, app_id = api.locate_app(app)
    return read_app(api, owner, app_id).is_php


def migrate_if_php(app: str, zone: str, *, yes: bool, dry_run: bool, quiet: bool,
                   connect: ConnectOptions, other_options: tuple[str, ...] = ()
                   ) -> ExitCode | None:
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
    return run_php_migration(PhpMigrationRequest(app=app, zone=zone, yes=yes,
                                                 dry_run=dry_run, quiet=quiet,
                                                 connect=connect), api=api)


def run_php_migration(req: PhpMigrationRequest, *, api: CleverApi | None = None,
                      cli: CleverCli | None = None,
                      out: Callable[[str], None] | None = None) -> ExitCode:
    """The whole re-creation (module docstring); the exit code to end with."""
    say = out or (lambda line: print(line, flush=True))
    api = api or CleverApi.from_cli_environment()
    cli = cli or CleverCli(dry_run=req.dry_run, echo=say)
    return _PhpMigration(req, api, cli, say).run()


def _is_secret_name(name: str) -> bool:
    return any(word in name.upper() for word in _SECRET_WORDS)


def _deployment_id(d: dict[str, Any]) -> str:
    return str(d.get("uuid") or d.get("id"))


def _state_of(d: dict[str, Any]) -> str:
    return str(d.get("state") or "").upper()


class _PhpMigration:
    def __init__(self, req: PhpMigrationRequest, api: CleverApi, cli: CleverCli,
                 say: Callable[[str], None]) -> None:
        self.req, self.api, self.cli, self.say = req, api, cli, say
        self.zone = req.zone.strip().lower()
        if not self.zone or not self.zone.isalnum():
            raise UsageError(f"--to {req.zone!r}: give a zone name like par, mtl, rbx")
        self.path: Path | None = None
        self.state: PhpState | None = None
        self.old: OldApp | None = None

    # -- journal ---------------------------------------------------------------------
    def _save(self, state: PhpState) -> None:
        self.state = state
        if not self.req.dry_run and self.path is not None:
            php_state.save(self.path, state)

    @property
    def st(self) -> PhpState:
        assert self.state is not None
        return self.state

    @property
    def new_app(self) -> str:
        """The new app's id (a placeholder in a dry run before it exists)."""
        return self.st.new_app or "<new app>"

    @property
    def owner(self) -> str:
        return self.st.owner

    # -- the run ---------------------------------------------------------------------
    def run(self) -> ExitCode:
        req = self.req
        owner, app_id = (req.owner, req.app) if req.owner and req.app.startswith("app_") \
            else self.api.locate_app(req.app)
        old = survey(self.api, owner, app_id)
        self.old = old
        if not old.view.is_php:
            raise UsageError(f"{old.view.name} is a {old.view.instance_type or '?'} app, not "
                             "a PHP app: fsmove migrate moves it to the zone instead")
        for cli_secret in (v for k, v in old.env if _is_secret_name(k)):
            self.cli.remember_secret(cli_secret)
        self.path = php_state.state_path(old.view.id, self.zone)
        state = php_state.load(self.path)
        if state is None:
            if old.view.zone == self.zone:
                raise UsageError(f"{old.view.name} is already in {self.zone}: nothing to move")
            self._refuse_foreign_mounts(old)
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
            "deploy": self._deploy, "domains": self._domains,
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

    # -- 1. create -------------------------------------------------------------------
    def _create(self) -> ExitCode:
        st, old = self.st, self.old
        assert old is not None
        if st.new_app is None:
            found = self._created_earlier() if st.create_started else None
            if found is None:
                before = self._owner_buckets() if st.ftp and not self.req.dry_run else ()
                self._save(replace(st, create_started=True, buckets_before=before))
                found = self._create_app(old)
                if found is None:  # dry run
                    return ExitCode.OK
            else:
                self.say(f"  found {st.new_name} ({found}), created by an earlier run")
            self._save(replace(self.st, new_app=found))
        if self.st.ftp and self.st.new_bucket is None:
            self._save(replace(self.st, new_bucket=self._own_bucket_of_new_app()))
        return ExitCode.OK

    def _created_earlier(self) -> str | None:
        """The app an earlier run created when its id was not journaled (killed, or the
        answer to the creation lost): the one named ``new_name`` in ZONE."""
        st = self.st
        try:
            data = self.api.get(f"/v2/organisations/{segment(st.owner)}/applications")
        except CleverError:
            if not st.owner.startswith("user_"):
                raise
            data = self.api.get("/v2/self/applications")  # the personal space
        named = [a for a in data if isinstance(a, dict) and a.get("name") == st.new_name] \
            if isinstance(data, list) else []
        if not named:
            return None
        if len(named) > 1 or named[0].get("zone") != st.zone:
            raise CleverError(
                f"{len(named)} application(s) named {st.new_name} exist "
                f"({', '.join(str(a.get('id')) for a in named)}), not exactly one in "
                f"{st.zone}: keep the right one, delete or rename the others, then rerun")
        return str(named[0]["id"])

    def _create_app(self, old: OldApp) -> str | None:
        st, v = self.st, old.view
        if st.ftp:
            body = {
                "deploy": "ftp", "name": st.new_name, "description": st.new_name,
                "zone": st.zone, "instanceType": v.instance_type,
                "instanceVersion": v.instance_version, "instanceVariant": v.variant_id,
                "minInstances": v.scaling.min_instances,
                "maxInstances": v.scaling.max_instances,
                "minFlavor": v.scaling.min_flavor, "maxFlavor": v.scaling.max_flavor,
                "instanceLifetime": "REGULAR",
            }
            path = f"/v2/organisations/{segment(st.owner)}/applications"
            if self.req.dry_run:
                self.say(f"would request: POST {path} {json.dumps(body)}")
                return None
            return str(self.api.create_application(st.owner, body)["id"])
        args = ["create", "--type", "php", "--region", st.zone]
        if not st.owner.startswith("user_"):
            args += ["--org", st.owner]
        args += [st.new_name, "-F", "json"]
        with tempfile.TemporaryDirectory(prefix="fsmove-create-") as folder:
            created = self.cli.run(CleverCommand(tuple(args), mutating=True), parse_json=True,
                                   cwd=folder)
        if created is None:  # dry run
            return None
        if not isinstance(created, dict) or not created.get("id"):
            raise CleverError(f"`clever create` printed no application id for {st.new_name}; "
                              "look for it in the Console before rerunning")
        return str(created["id"])

    def _owner_buckets(self) -> tuple[str, ...]:
        """Ids of the owner's FS Bucket add-ons (journaled before the creation; only a
        fallback to tell the new app's own bucket, so an API that cannot list them
        gives none)."""
        try:
            data = self.api.get(f"/v2/organisations/{segment(self.owner)}/addons")
        except CleverError:
            return ()
        return tuple(sorted(
            str(a.get("id")) for a in data if isinstance(a, dict)
            and (a.get("provider") or {}).get("id") == FS_BUCKET)) if isinstance(data,
                                                                             list) else ()

    def _own_bucket_of_new_app(self) -> str:
        """The FS Bucket the platform gave the new FTP app: the only one linked to it
        right after its creation (nothing is linked before this is recorded), else the
        only FS Bucket of the owner that did not exist before the creation."""
        deadline = time.monotonic() + BUCKET_WAIT
        while True:
            buckets = [a for a in linked_addons(self.api, self.owner, self.new_app)
                       if a.provider == FS_BUCKET]
            if not buckets:
                fresh = set(self._owner_buckets()) - set(self.st.buckets_before)
                buckets = [LinkedAddon(id=i, name=i, provider=FS_BUCKET) for i in fresh]
            if len(buckets) == 1:
                self.say(f"  its own FTP bucket: {buckets[0].name} ({buckets[0].id})")
                return buckets[0].id
            if len(buckets) > 1:
                raise CleverError(
                    f"the new app {self.new_app} has {len(buckets)} FS Buckets linked "
                    f"({', '.join(b.id for b in buckets)}); fsmove cannot tell its own FTP "
                    "bucket: check it in the Console")
            if time.monotonic() >= deadline:
                raise CleverError(
                    f"the new FTP app {self.new_app} has no FS Bucket for its code after "
                    f"{BUCKET_WAIT:.0f} s; rerun in a while")
            time.sleep(BUCKET_POLL)

    # -- 2. env ----------------------------------------------------------------------
    def _env(self) -> ExitCode:
        old = self.old
        assert old is not None
        pairs = [{"name": k, "value": v} for k, v in old.env]
        command = CleverCommand(("env", "import", "--json", "--app", self.new_app),
                                mutating=True)
        if self.req.dry_run:
            self.say(f"would run: {command.display} < {len(pairs)} variables of "
                     f"{old.view.name} as JSON on stdin")
            return ExitCode.OK
        self.cli.run(command, parse_json=False, input_text=json.dumps(pairs))
        self.say(f"  {len(pairs)} variables copied")
        return ExitCode.OK

    # -- 3. links --------------------------------------------------------------------
    def _links(self) -> ExitCode:
        old = self.old
        assert old is not None
        have_addons: set[str] = set()
        have_apps: set[str] = set()
        if self.st.new_app is not None:
            have_addons = {a.id for a in linked_addons(self.api, self.owner, self.new_app)}
            have_apps = {i for i, _n in dependencies(self.api, self.owner, self.new_app)}
        linked: list[str] = []
        for addon in old.addons_to_link:
            if addon.id not in have_addons:
                self.cli.run(CleverCommand(("service", "link-addon", addon.id, "--app",
                                            self.new_app), mutating=True), parse_json=False)
                linked.append(addon.name)
        for dep_id, name in old.dependencies:
            if dep_id not in have_apps:
                self.cli.run(CleverCommand(("service", "link-app", dep_id, "--app",
                                            self.new_app), mutating=True), parse_json=False)
                linked.append(name)
        if linked and not self.req.dry_run:
            self.say(f"  linked {', '.join(linked)}")
        return ExitCode.OK

    # -- 4. scale, 5. options ----------------------------------------------------------
    def _new_view(self) -> AppView | None:
        return None if self.st.new_app is None else read_app(self.api, self.owner,
                                                             self.st.new_app)

    def _scale(self) -> ExitCode:
        old = self.old
        assert old is not None
        new = self._new_view()
        wanted = old.view.scaling
        args = wanted.scale_args(new.scaling) if new else wanted.all_args()
        if args:
            self.cli.run(CleverCommand(("scale", "--app", self.new_app, *args),
                                       mutating=True), parse_json=False)
            if not self.req.dry_run:
                self.say(f"  scaled: {' '.join(args)}")
        return ExitCode.OK

    def _options(self) -> ExitCode:
        old = self.old
        assert old is not None
        new = self._new_view()
        for option in OPTION_IDS:
            value = old.view.options[option]
            if new is None and value == "false" and option == "task":
                continue
            if new is None or new.options[option] != value:
                self.cli.run(CleverCommand(("config", "set", option, value, "--app",
                                            self.new_app), mutating=True), parse_json=False)
                if not self.req.dry_run:
                    self.say(f"  set {option} {value}")
        if not self.req.dry_run:
            self._check_settings(old)
        return ExitCode.OK

    def _check_settings(self, old: OldApp) -> None:
        new = self._new_view()
        assert new is not None
        differ = [k for k in OPTION_IDS if new.options[k] != old.view.options[k]]
        if new.scaling != old.view.scaling:
            differ.append("scaling")
        if differ:
            raise CleverError(f"the new app {new.id} still differs from the old one in "
                              f"{', '.join(differ)} after `clever scale`/`config set`")

    # -- 6. code ---------------------------------------------------------------------
    def _code(self) -> ExitCode:
        return self._copy_code() if self.st.ftp else self._wait_for_push()

    def _copy_code(self) -> ExitCode:
        from fsmove.commands.copy import CopyRequest, run_copy
        from fsmove.commands.verify import VerifyRequest, run_verify
        from fsmove.transfers.copy import CopyOptions
        from fsmove.verify.results import Tier

        src = f"clever://{self.st.old_bucket}"
        dst = f"clever://{self.st.new_bucket or '<new app bucket>'}"
        copy = shlex.join(["fsmove", "copy", src, dst, "--delete"])
        verify = shlex.join(["fsmove", "verify", src, dst])
        if self.req.dry_run:
            self.say(f"would run: {copy}")
            self.say(f"would run: {verify}")
            return ExitCode.OK
        self.say(f"  {copy}")
        code = run_copy(CopyRequest(src=src, dst=dst, options=CopyOptions(delete=True),
                                    connect=self.req.connect, quiet=self.req.quiet))
        if code is not ExitCode.OK:
            self.say(f"  the code copy stopped (exit {int(code)}); rerun the same command "
                     "to resume it: nothing was deployed, no domain moved")
            return code
        self.say(f"  {verify}")
        code = run_verify(VerifyRequest(src=src, dst=dst, tier=Tier.FULL,
                                        connect=self.req.connect, quiet=self.req.quiet))
        if code is not ExitCode.OK:
            self.say(f"  the new app's code differs from the old one's (exit {int(code)}); "
                     "nothing was deployed, no domain moved: rerun to copy and verify again")
        return code

    def _wait_for_push(self) -> ExitCode:
        if self.st.new_app is not None:
            done = [d for d in deployments(self.api, self.owner, self.st.new_app)
                    if _state_of(d) == "OK"]
            if done:
                self._save(replace(self.st, deployment=_deployment_id(done[0])))
                self.say(f"  the new app was deployed from your push ({_deployment_id(done[0])})")
                return ExitCode.OK
        url = "<its git remote>"
        if self.st.new_app is not None:
            url = read_app(self.api, self.owner, self.st.new_app).git_url or url
        remote = f"clever-{self.zone}"
        self.say(f"  push the code of {self.old.view.name if self.old else 'the old app'} to "
                 f"the new app, from your repository:")
        self.say(f"    git remote add {remote} {url}")
        self.say(f"    git push {remote} HEAD:master")
        if self.req.dry_run:
            return ExitCode.OK
        self.say("  then rerun this command: it continues once the new app's deployment "
                 "succeeded (domains move only then)")
        return ExitCode.PARTIAL

    # -- 7. deploy -------------------------------------------------------------------
    def _deploy(self) -> ExitCode:
        st = self.st
        if not st.ftp:
            return ExitCode.OK  # the user's push deployed it (step code)
        if self.req.dry_run or st.new_app is None:
            self.cli.restart(self.new_app)
            return ExitCode.OK
        if st.deploy_baseline is not None:
            found = self._deployment_since(st.deploy_baseline)
            if found is not None:
                self.say(f"  the restart of an earlier run succeeded ({found}): not "
                         "restarting again")
                self._save(replace(self.st, deployment=found))
                return ExitCode.OK
        baseline = tuple(_deployment_id(d) for d in deployments(self.api, self.owner,
                                                                st.new_app))
        self._save(replace(self.st, deploy_baseline=baseline))
        try:
            self.cli.restart(st.new_app)
        except CleverError as exc:
            raise CleverError(f"{exc} (the new app's deployment; `clever logs --app "
                              f"{st.new_app}` tells why; no domain moved)") from None
        found = self._deployment_since(baseline)
        if found is None:
            raise CleverError(f"`clever restart` of {st.new_app} returned but its deployment "
                              "list shows no new successful deployment; no domain moved")
        self._save(replace(self.st, deployment=found))
        self.say(f"  deployed and running ({found})")
        return ExitCode.OK

    def _deployment_since(self, baseline: tuple[str, ...]) -> str | None:
        """The id of a successful deployment not in ``baseline``; waits for one still
        running; None when every new one failed (or there is none)."""
        assert self.st.new_app is not None
        deadline = time.monotonic() + DEPLOY_WAIT
        while True:
            fresh = [d for d in deployments(self.api, self.owner, self.st.new_app)
                     if _deployment_id(d) not in baseline]
            ok = [d for d in fresh if _state_of(d) == "OK"]
            if ok:
                return _deployment_id(ok[0])
            running = [d for d in fresh if _state_of(d) not in ("OK", *_FINAL_FAILURES)]
            if not running:
                return None
            if time.monotonic() >= deadline:
                raise CleverError(f"a deployment of {self.st.new_app} is still running after "
                                  f"{DEPLOY_WAIT / 60:.0f} min; rerun once it ended")
            time.sleep(DEPLOY_POLL)

    # -- 8. domains ------------------------------------------------------------------
    def _domains(self) -> ExitCode:
        st = self.st
        todo = [d for d in st.domains if d not in st.moved]
        if not todo:
            return ExitCode.OK
        on_old = {d.lower() for d in domains(self.api, st.owner, st.old_app)}
        on_new = ({d.lower() for d in domains(self.api, st.owner, st.new_app)}
                  if st.new_app else set())
        for domain in todo:
            rm = CleverCommand(("domain", "rm", domain, "--app", st.old_app), mutating=True)
            add = CleverCommand(("domain", "add", domain, "--app", self.new_app),
                                mutating=True)
            if domain.lower() in on_old:
                self.cli.run(rm, parse_json=False)
            if domain.lower() not in on_new:
                self._add_domain(add, domain)
            if not self.req.dry_run:
                self._save(replace(self.st, moved=(*self.st.moved, domain)))
                self.say(f"  {domain}: moved")
        return ExitCode.OK

    def _add_domain(self, add: CleverCommand, domain: str) -> None:
        """``domain add`` right after the rm; once more at once if it fails (the domain is
        then on no app: every second counts), unless the first one did land."""
        try:
            self.cli.run(add, parse_json=False)
            return
        except CleverError as first:
            if self.st.new_app and domain.lower() in {
                    d.lower() for d in domains(self.api, self.owner, self.st.new_app)}:
                return
            try:
                self.cli.run(add, parse_json=False)
            except CleverError:
                raise CleverError(
                    f"{first}; {domain} was removed from the old app and could not be added "
                    f"to the new one: it answers nowhere until you rerun (or run "
                    f"`{add.display}`)") from None

    # -- DNS and summary ---------------------------------------------------------------
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
