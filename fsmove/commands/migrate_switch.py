"""`fsmove migrate`'s **switch**: the zone first (the one step the platform may refuse,
so a refusal changes nothing else), the links, the ``CC_FS_BUCKET*`` variables, the
unlinks, then ONE redeploy, only after the deployment list shows none of this migration
already succeeded. The steps are fixed in the journal when the switch starts."""

from __future__ import annotations

import time

from fsmove.clever.clever_tool import CleverError
from fsmove.clever.migrate_state import BucketPair, Step
from fsmove.clever.php_run import FINAL_FAILURES
from fsmove.commands.migration_core import (
    DEPLOY_POLL,
    DEPLOY_WAIT,
    MigrationCore,
    say,
    say_progress,
)
from fsmove.errors import FsmoveError, UsageError
from fsmove.exitcodes import ExitCode


class SwitchPhases(MigrationCore):
    def _plan_steps(self) -> list[Step]:
        sv, req = self.survey, self.req
        unknown = [p.new_name for p in self.state.pairs if not p.new_id or not p.new_host]
        if unknown:
            raise FsmoveError(f"switch: the FTP host of {', '.join(unknown)} is not known; "
                              "rerun the same command (its bucket is read again first)")
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
                if step.kind != "restart" and not self.req.dry_run:
                    # Checked again, never trusted: a zone put back by hand after a
                    # failed redeploy was "done already", and the app redeployed in the
                    # old zone with the new bucket mounted (session 34's adversarial
                    # pass). Each step is a no-op while it still holds.
                    self._run_step(step)
                say_progress(f"{label}: done already")
                continue
            try:
                if step.kind == "restart" and self._waits_for_a_push():
                    return ExitCode.OK if self.req.dry_run else ExitCode.PARTIAL
                self._run_step(step)
            except CleverError as exc:
                raise type(exc)(f"{exc}; the switch stopped at {step.description}: fix the "
                                "cause and rerun the same command to continue there") from None
            if not self.req.dry_run:
                step.done = True
                self.save()
                say_progress(f"{label}: done")
        return ExitCode.OK

    def _run_step(self, step: Step) -> None:
        app_id, dry = self.state.app_id, self.req.dry_run
        linked = set(self.survey.env.addons)
        if step.kind == "zone":
            zone = step.args[0]
            if dry:
                say(f"would request: PUT {self._app_path()} {{\"zone\": \"{zone}\"}} (then "
                     "read the app back)")
                return
            if self.api.application(self.state.owner_id, app_id).get("zone") == zone:
                return  # moved by the run that stopped, or by hand
            self.api.move_application(self.state.owner_id, app_id, zone)
            say(f"switch: {self.state.app_name} is now in {zone}")
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

    def _waits_for_a_push(self) -> bool:
        """Where ``clevercloud/buckets.json`` mounts a moved bucket, that file (in the
        app's repository, which overrides ``CC_FS_BUCKET*``) names the old host: a
        redeploy by fsmove would start the app in the new zone on the old buckets.
        The user's push of the file changed is the redeploy: said here, and the run
        stops (exit 3) until that push deployed (``pushed``; then the rerun goes on
        with the catch-up). Before session 34 fsmove redeployed, said done, and
        printed the change to make only at the end."""
        st = self.state
        hosts = set(st.push_hosts or ()) | {
            b.host for b in self.survey.buckets if b.in_buckets_json}
        moved = [p for p in st.pairs if p.old_host in hosts]
        if not moved:
            return False
        if self.req.dry_run:
            # What the run does here: no restart (a dry run said "would restart" before
            # session 35, on the first run and while the wait went on).
            say("would not restart the app: clevercloud/buckets.json mounts the old "
                "bucket(s), so the switch waits for your push of it changed (that "
                "deployment is the redeploy):")
            for pair in moved:
                say(f"  bucket_host {pair.old_host} -> {pair.new_host}")
            return True
        if st.push_hosts is not None and self.pushed() is not None:
            return False  # the push came: _redeploy records that deployment
        if st.baseline is None or st.push_hosts is None:
            # Kept in the journal: a rerun before the push (the file already changed,
            # or --repo left out) never redeploys by itself (session 34's pass on its
            # own change: it did, on the old buckets, and said done).
            deployed = self._deployments()
            if st.baseline is None:
                st.baseline = [str(d.get("uuid") or d.get("id")) for d in deployed]
            app = self.api.application(st.owner_id, st.app_id)
            st.push_from = sorted({str(c) for c in (app.get("commitId"),
                                                    *(d.get("commit") for d in deployed))
                                   if c})
            st.push_hosts = sorted(p.old_host for p in moved)
            self.save()
        failed = self._failed_push()
        if failed is not None:
            say(f"switch: your push's deployment failed ({failed}): `clever logs --app "
                f"{st.app_id}` says why; fix it and push again")
        say("switch: clevercloud/buckets.json in the app's repository mounts the old "
            "bucket(s): change it, commit and push (the push redeploys the app):")
        for pair in moved:
            say(f"  bucket_host {pair.old_host} -> {pair.new_host}")
        say("then rerun this command: it goes on once that deployment succeeded")
        return True

    def _failed_push(self) -> str | None:
        """The newest deployment since the wait began, of a commit not deployed then,
        when it failed (``deployment_… of commit …``): a rerun said only "push" again
        before session 35, as if nothing had been pushed."""
        st = self.state
        if st.baseline is None:
            return None
        pushes = [d for d in self._deployments()
                  if str(d.get("uuid") or d.get("id")) not in st.baseline
                  and d.get("commit") and str(d.get("commit")) not in st.push_from]
        if any(str(d.get("state")).upper() not in FINAL_FAILURES for d in pushes):
            return None  # one deployed, or one still under way
        if not pushes:
            return None
        d = pushes[0]
        return f"{d.get('uuid') or d.get('id')} of commit {str(d.get('commit'))[:12]}"

    def pushed(self) -> str | None:
        """The user's push that ended the wait for it, or None: a deployment after the
        wait began that succeeded, of a commit not deployed then (a restart deploys the
        same commit, with the old buckets.json), while the file (``--repo``) names
        the new hosts."""
        if self.push_still_awaited():
            return None
        st = self.state
        for d in self._deployments():
            if (str(d.get("uuid") or d.get("id")) not in (st.baseline or ())
                    and d.get("state") == "OK" and d.get("commit")
                    and str(d.get("commit")) not in st.push_from):
                return str(d.get("uuid") or d.get("id"))
        return None

    def push_still_awaited(self) -> bool:
        """Whether the switch still waits for the user's push of ``buckets.json``: the
        file (``--repo``) still names an old host. Any deployment ended the wait before
        (a restart, another push), and the run said done with the app on the old
        bucket (session 34's 4th pass). After the wait began, ``--repo`` is needed to
        tell: refused without it."""
        st = self.state
        if st.push_hosts is None:
            return False
        if self.req.repo is None:
            raise UsageError(
                "this migration waits for your push of clevercloud/buckets.json: rerun with "
                "--repo PATH (fsmove checks that the file names the new hosts)")
        olds = {p.old_host for p in st.pairs}
        return any(b.host in olds for b in self.survey.buckets if b.in_buckets_json)

    def check_switch_holds(self) -> None:
        """Read the app back before saying the migration is done: in ZONE, no
        ``CC_FS_BUCKET*`` (nor ``buckets.json``) naming one of its old buckets, the new
        buckets linked where the old ones were, the old ones no longer. A journal that
        says "done" is not enough: a migration rolled back by hand was reported done
        again (session 34's adversarial pass)."""
        st, sv = self.state, self.survey
        if st.steps is None:
            return
        path = self._app_path()
        problems: list[str] = []
        zone = self.api.application(st.owner_id, st.app_id).get("zone")
        if zone != st.to_zone:
            problems.append(f"it is in {zone}, not {st.to_zone}")
        env = self.api.get(path + "/env")
        own = {str(v.get("name")): str(v.get("value", "")) for v in env
               if isinstance(v, dict)} if isinstance(env, list) else {}
        old_of = {p.old_host: p for p in st.pairs}
        from fsmove.clever.app import mounts_of

        for mount in mounts_of(own):
            if mount.host in old_of:
                problems.append(f"{mount.variable} mounts the old bucket "
                                f"{old_of[mount.host].old_name}")
        # (A bucket of another zone mounted since, on purpose, is the user's business:
        # only this migration's old buckets are looked for.)
        for b in sv.buckets:
            if b.in_buckets_json and b.host in old_of:
                problems.append(f"clevercloud/buckets.json mounts the old bucket "
                                f"{old_of[b.host].old_name}")
        linked = self.api.get(path + "/addons")
        ids = {str(a.get("id")) for a in linked if isinstance(a, dict)} \
            if isinstance(linked, list) else set()
        for pair in st.pairs:
            if pair.linked and pair.old_id in ids:
                problems.append(f"the old bucket {pair.old_name} is linked to it")
            if pair.linked and pair.new_id not in ids:
                problems.append(f"the new bucket {pair.new_name} is not linked to it")
        if problems:
            news = ", ".join(f"{p.new_name} ({p.new_id})" for p in st.pairs) or "none"
            raise FsmoveError(
                f"{st.app_name} is not as this migration left it: {'; '.join(problems)} "
                f"(changed since, by hand or by another tool?); nothing was changed now: "
                f"put back what differs (in {st.to_zone}, its new buckets {news} "
                "mounted and linked, the old ones not), then rerun to check")

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
            say_progress("switch: a deployment is running; waiting for its end")
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
            say(f"switch: the redeploy of the run that stopped succeeded ({done}): not "
                 "redeploying again")
        self.state.redeployed = done
        self.save()
