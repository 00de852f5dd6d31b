"""Steps 6-8 of a PHP re-creation: the **code** (FTP: the old app's own bucket copied and
verified into the new one's; git: the push asked for), the **deploy** (one successful
deployment, never a second restart after a kill) and then the **domains**, each removed
from the old app and added at once to the new one."""

from __future__ import annotations

import shlex
import time
from dataclasses import replace

from fsmove.clever import php_state
from fsmove.clever.bucket import read_owned_bucket
from fsmove.clever.catchup import reference
from fsmove.clever.clever_tool import CleverCommand, CleverError
from fsmove.clever.php_run import (
    DEPLOY_POLL,
    DEPLOY_WAIT,
    FINAL_FAILURES,
    PhpRun,
    deployment_id,
    deployment_state,
)
from fsmove.clever.php_survey import (
    deployments,
    domains,
    read_app,
)
from fsmove.clever.trees import read_trees
from fsmove.exitcodes import ExitCode


class ReleaseSteps(PhpRun):
    def _code(self) -> ExitCode:
        return self._copy_code() if self.st.ftp else self._wait_for_push()

    def _copy_code(self) -> ExitCode:
        from fsmove.commands.copy import CopyRequest, run_copy
        from fsmove.commands.verify import VerifyRequest, run_verify
        from fsmove.verify.results import Tier

        req = self.req
        src = f"clever://{self.st.old_bucket}"
        dst = f"clever://{self.st.new_bucket or '<new app bucket>'}"
        copy = shlex.join(["fsmove", "copy", src, dst, "--delete"])
        verify = shlex.join(["fsmove", "verify", src, dst])
        if req.dry_run:
            self.say(f"would run: {copy}")
            self.say(f"would run: {verify}")
            return ExitCode.OK
        self.say(f"  {copy}")
        # Both buckets read once, in this process, then carried to the copy and the
        # verification (no `clever addon env` child per bucket and per phase).
        old_root, new_root = (read_owned_bucket(self.api, self.owner, str(bucket)).endpoint("/")
                              for bucket in (self.st.old_bucket, self.st.new_bucket))
        # The catch-up's reference: the old tree listed before the copy, the new one after
        # the verification (fsmove/clever/catchup.py): what the old app writes or deletes
        # from now on, until its domains have left it, is carried over after them.
        taken = time.time()
        old_before = read_trees([old_root], req.connect)[0].files
        # The user's copy options (--workers, --bwlimit, --retries, connections: built
        # once by fsmove/commands/options.py), with --delete: the new bucket ends as the
        # old one.
        code = run_copy(CopyRequest(src=old_root, dst=new_root,
                                    options=replace(req.copy, delete=True, dry_run=False),
                                    connect=req.connect, quiet=req.quiet,
                                    src_connections=req.src_connections,
                                    dst_connections=req.dst_connections))
        if code is not ExitCode.OK:
            self.say(f"  the code copy stopped (exit {int(code)}); rerun the same command "
                     "to resume it: nothing was deployed, no domain moved")
            return code
        self.say(f"  {verify}")
        code = run_verify(VerifyRequest(src=old_root, dst=new_root, tier=Tier.FULL,
                                        connect=req.connect, quiet=req.quiet,
                                        src_connections=req.src_connections,
                                        dst_connections=req.dst_connections,
                                        bwlimit=req.copy.bwlimit))
        if code is not ExitCode.OK:
            self.say(f"  the new app's code differs from the old one's (exit {int(code)}); "
                     "nothing was deployed, no domain moved: rerun to copy and verify again")
            return code
        new_after = read_trees([new_root], req.connect)[0].files
        php_state.save_snapshot(self._snapshot_path(),
                                reference(old_before, new_after, taken=taken))
        return code

    def _wait_for_push(self) -> ExitCode:
        if self.st.new_app is not None:
            done = [d for d in deployments(self.api, self.owner, self.st.new_app)
                    if deployment_state(d) == "OK"]
            if done:
                self._save(replace(self.st, deployment=deployment_id(done[0])))
                self.say(f"  the new app was deployed from your push ({deployment_id(done[0])})")
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
        baseline = tuple(deployment_id(d) for d in deployments(self.api, self.owner,
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
                     if deployment_id(d) not in baseline]
            ok = [d for d in fresh if deployment_state(d) == "OK"]
            if ok:
                return deployment_id(ok[0])
            running = [d for d in fresh if deployment_state(d) not in ("OK", *FINAL_FAILURES)]
            if not running:
                return None
            if time.monotonic() >= deadline:
                raise CleverError(f"a deployment of {self.st.new_app} is still running after "
                                  f"{DEPLOY_WAIT / 60:.0f} min; rerun once it ended")
            time.sleep(DEPLOY_POLL)

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
