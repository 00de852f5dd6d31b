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
   (they ran until the new deployment replaced them) is copied to the new ones, and what
   they deleted is deleted from them (never at or below a path fsmove could not look
   into: the ``--delete`` rule); a file the new app changed since is never overwritten
   nor deleted (listed as a conflict, exit 4, reported once); the paths moved are
   verified (fsmove/clever/catchup.py).
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
- **Buckets are read once per run** (the survey; a bucket it did not read, through the
  API in this process), then carried through the copy, verify, delta and catch-up
  phases as endpoints (``Migration.access``): no `clever` child per phase or bucket, and
  no cache shared by the process.
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
from collections.abc import Callable

from fsmove import event_loop
from fsmove.clever import statefile
from fsmove.clever.dns import DnsChecker
from fsmove.clever.dns_advice import print_records
from fsmove.clever.migrate_state import PHASES
from fsmove.clever.plan import ZONES
from fsmove.commands.copy import DEFAULT_CONNECTIONS, journal_path_for
from fsmove.commands.migrate_buckets import BucketPhases, parse_bucket_options
from fsmove.commands.migrate_data import DataPhases
from fsmove.commands.migrate_switch import SwitchPhases
from fsmove.commands.migration_core import MigrateRequest, say, say_progress
from fsmove.commands.verify import check_report_paths
from fsmove.endpoint_access import ConnectOptions, open_store
from fsmove.errors import UsageError
from fsmove.exitcodes import ExitCode
from fsmove.progress import human_bytes
from fsmove.transfers.copy import CopyEngine, CopyOptions
from fsmove.transfers.endpoint import Endpoint
from fsmove.transfers.journal_view import JournalView
from fsmove.transfers.plan import CopyPlan
from fsmove.transfers.pool import SessionPool

#: Test hook: ``FSMOVE_TEST_CRASH_AT=copy`` makes fsmove SIGKILL itself when that phase
#: starts (the copy, verify and delta phases send no API request a test could kill on).
CRASH_ENV = "FSMOVE_TEST_CRASH_AT"


def _crash_point(phase: str) -> None:
    if os.environ.get(CRASH_ENV) == phase:
        os.kill(os.getpid(), signal.SIGKILL)


async def _plan_copy(src: Endpoint, dst: Endpoint, *, options: CopyOptions,
                     connect: ConnectOptions) -> CopyPlan:
    """The copy engine's own plan, both sides opened read-only."""
    src_pool = SessionPool(open_store(src, connect, writable=False),
                           max_sessions=DEFAULT_CONNECTIONS[src.scheme])
    dst_pool = SessionPool(open_store(dst, connect, writable=False),
                           max_sessions=DEFAULT_CONNECTIONS[dst.scheme])
    # The pair's job journal read (a rerun's dry run plans as the copy will).
    view = JournalView.open(journal_path_for(src, dst, None), src=src.identity,
                            dst=dst.identity)
    try:
        engine = CopyEngine(src=src_pool, dst=dst_pool, journal=None, options=options,
                            records=view)
        return await engine.plan()
    finally:
        await asyncio.gather(src_pool.aclose(), dst_pool.aclose(), return_exceptions=True)
        if view is not None:
            view.close()


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


class Migration(BucketPhases, DataPhases, SwitchPhases):
    """One invocation: the phases in order, each journaled."""

    def _dry_copy(self, phase: str, *, delete: bool) -> ExitCode:
        for pair in self.state.pairs:
            src, _dst = self._urls(pair)
            if not pair.new_id:
                say(f"{phase} (dry run): would run: fsmove copy {src} clever://<new "
                     f"{pair.new_name}>{' --delete' if delete else ''} (every file: the "
                     "new bucket does not exist yet)")
                continue
            plan = event_loop.run(_plan_copy(
                self.access[pair.old_id].endpoint("/"), self.access[pair.new_id].endpoint("/"),
                connect=self.req.connect,
                options=CopyOptions(workers=self.req.copy.workers, dry_run=True, delete=delete)))
            line = (f"{self._label(pair)}: would copy {plan.files_to_copy} of "
                    f"{plan.files_total} files ({human_bytes(plan.bytes_to_copy)})")
            if delete:
                line += f", delete {plan.files_to_delete} only in the new bucket"
            say(f"{phase} (dry run): {line}")
        return ExitCode.OK

    def copy(self) -> ExitCode:
        if self.req.dry_run:
            return self._dry_copy("copy", delete=False)
        return self.copy_pairs()

    def delta(self) -> ExitCode:
        if self.req.dry_run:
            return self._dry_copy("delta", delete=True)
        return self.delta_pairs()

    def dns(self) -> ExitCode:
        print_records(self.survey.user_domains, zone=self.req.zone,
                      nameservers=self.req.nameservers, checker=self.checker, say=say)
        return ExitCode.OK

    def _before_walk(self) -> None:
        """A switch that stopped before its redeploy succeeded: the old instances kept
        writing to the old buckets, so the delta (and its snapshot) runs again first."""
        st = self.state
        if st.steps is None or st.is_done("switch") or self.req.dry_run:
            return
        done = self.pushed() if st.push_hosts is not None else self._redeploy_outcome()
        if done is not None:
            st.redeployed = done
            for step in st.steps:
                step.done = True
            st.mark_done("switch")
            say_progress(f"the redeploy of the run that stopped succeeded ({done})")
        elif st.is_done("delta"):
            st.undo("delta")
            say_progress("the switch stopped before the redeploy: the old app kept writing, "
                      "so the delta runs again first")
        self.save()

    def run(self) -> ExitCode:
        try:
            return self._walk()
        finally:
            statefile.release(self.lock_path)

    def _walk(self) -> ExitCode:
        handlers: dict[str, Callable[[], ExitCode]] = {
            "preflight": self.preflight, "create": self.create, "copy": self.copy,
            "verify": self.verify, "delta": self.delta, "switch": self.switch,
            "catchup": self.catchup, "dns": self.dns}
        last = PHASES.index(self.req.until.value) if self.req.until else len(PHASES) - 1
        if self.resumed:
            done = [p for p in PHASES if self.state.is_done(p)]
            say_progress(f"continuing from the journal {self.path} (done: "
                      f"{', '.join(done) or 'nothing'})")
        self._before_walk()
        for index, phase in enumerate(PHASES[: last + 1]):
            label = f"[{index + 1}/{len(PHASES)}] {phase}"
            if self.state.is_done(phase) and phase not in ("preflight", "dns"):
                say_progress(f"{label}: done already")
                continue
            _crash_point(phase)
            say_progress(f"{label}: start")
            try:
                code = handlers[phase]()
            except UsageError:
                if phase == "preflight" and not self.resumed:
                    raise  # refused before anything: no journal, no "rerun to continue"
                self.state.failed_phase, self.state.failed_code = phase, None
                self.save()
                self._summary(stopped_at=phase)
                raise
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
            say_progress(f"{label}: {'looked at' if self.req.dry_run else 'done'}")
        if not self.req.dry_run and PHASES[last] == PHASES[-1]:
            self.check_switch_holds()
        self._summary(stopped_at=None)
        return ExitCode.OK

    def _summary(self, *, stopped_at: str | None) -> None:
        req, st = self.req, self.state
        head = "dry run of the migration" if req.dry_run else "migration"
        say(f"\n{head} of {st.app_name} ({st.app_id}) from {st.from_zone} to {st.to_zone}")
        for pair in st.pairs:
            say(f"  bucket {pair.old_name} ({pair.old_id}) -> {pair.new_name} "
                 f"({pair.new_id or 'not created yet'})")
        for phase in PHASES:
            text = "done" if st.is_done(phase) else "not run"
            if req.dry_run and not st.is_done(phase):
                text = "looked at (above)"
            if phase == stopped_at:
                text = "STOPPED here"
            say(f"  {phase:<9}  {text}")
        if st.shared_with:
            say(f"  other apps keep the old buckets (--split-shared): {st.shared_with}; "
                "keep those buckets while they use them")
        if req.dry_run:
            say("dry run: nothing was changed")
        elif stopped_at is None and req.until and req.until.value != PHASES[-1]:
            nxt = PHASES[PHASES.index(req.until.value) + 1]
            say(f"stopped after {req.until} as asked; rerun without --until to continue at "
                 f"{nxt} (journal: {self.path})")
        elif stopped_at is None:
            say(f"migration of {st.app_name} to {st.to_zone} done (journal: {self.path})")
        else:
            say(f"stopped at {stopped_at}; rerun the same command to continue there "
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
        connect=req.connect, copy=req.copy, src_connections=req.src_connections,
        dst_connections=req.dst_connections,
        other_options=tuple(flag for flag, given in (
            ("--bucket", bool(req.buckets)), ("--until", req.until is not None),
            ("--split-shared", req.split_shared),
            ("--repo", req.repo is not None), ("--report", bool(req.reports))) if given),
    )
    if php_code is not None:
        return php_code
    checker = DnsChecker(list(req.nameservers)) if req.nameservers else None
    _confirm(req)
    return Migration(req, checker).run()
