"""`fsmove migrate --app APP --from OLD --to NEW`: every phase of a bucket migration, journaled.

Phases, in order; each is the function its own command runs, called in this process:

1. **preflight** (fsmove/clever/migrate.py): `clever` present and logged in, the app
   exists, OLD and NEW are different FS Buckets, and both answer an FTP login (a
   read-only ``stat`` of each root). Nothing is written before it passed.
2. **copy**: ``run_copy`` of ``fsmove copy clever://OLD clever://NEW``: the same engine,
   options and SQLite job journal (so ``fsmove status`` shows it and an interrupted copy
   resumes inside files, whether rerun through ``migrate`` or ``copy``).
3. **verify**: ``run_verify`` of ``fsmove verify clever://OLD clever://NEW`` (full: every
   destination file read; the source's digests come from the copy's journal while its
   size and mtime are unchanged), writing ``--report``. A difference stops here with
   exit 4, before anything touches the app.
4. **delta**: the copy again with ``--delete``: what changed meanwhile, and nothing the
   old bucket no longer has.
5. **cutover**: ``run_cutover`` (fsmove/clever/cutover.py) with its own step journal.
6. **dns**: the records to set; with ``--nameserver``, the TTL check (clever/migrate.py).

Decisions:

- **The journal** (fsmove/clever/migrate_state.py) records each phase once it succeeded;
  a rerun of the same command (same spelling of APP, OLD, NEW) skips the done phases and
  continues at the first one that is not. ``--until PHASE`` stops after PHASE; the rerun
  without it continues at the next phase (the bulk copy and verify overnight, the
  cut-over the next day).
- **A verification mismatch sends the rerun back to the copy**: verifying the same copy
  again would find the same difference. That copy compares contents (``--checksum``),
  since a damaged destination file may keep its size and time; then verify runs again.
- **Buckets are resolved per phase** (``clever addon env``, ~1-2 s per bucket): each
  phase is exactly the command it names (``run_copy`` and ``run_verify`` take the
  ``clever://`` text), and a rerun days later reads the credentials afresh. The
  preflight's resolution serves its own checks and the dry run's plan.
- **Whole buckets**: OLD's root is copied to NEW's root, and the delta deletes from NEW
  what OLD does not have. Sub-folders and other layouts: use ``fsmove copy`` directly.
- **Exit codes** are those of the phase that stopped the run (copy partial 3, verify
  mismatch 4, auth 5, usage 2, error 1; Ctrl-C 130, the journals saved); 0 once every
  requested phase is done. Exceptions propagate to cli.py, which maps them.
- **--dry-run** writes nothing, not even the journal: preflight runs (it only reads);
  the copy runs the copy engine's own dry run (``CopyEngine`` with ``dry_run``, as
  ``fsmove copy --dry-run`` does) and prints its plan: files and bytes it would copy,
  skip and, for the delta, delete. Unlike ``fsmove copy --dry-run`` both buckets are
  opened read-only, so not even the destination's write-semantics probe runs, and the
  plan is read from the engine's ``Planned`` event (that command's summary counts only
  files actually copied: 0 in a dry run). Like that command's dry run, the plan does
  not read the copy's journal (opening it takes the job's lock and writes), so where the
  destination keeps no modification times a file the journal knows as copied counts as
  "would copy" again: the numbers are an upper bound. Verify prints its command; the delta's plan
  runs only once the bulk copy is done (before, it would list the whole copy again, so
  it prints its command); the cut-over prints every changing `clever` command; DNS reads
  as usual.
- Progress: one line per phase start and end on stderr (``fsmove migrate: …``), the
  phases' own output as their commands print it, and a summary on stdout at the end,
  also when a phase failed.
"""

from __future__ import annotations

import asyncio
import sys
import time
from collections.abc import Callable
from dataclasses import dataclass, field, replace
from pathlib import Path

from fsmove.clever import migrate_state
from fsmove.clever.bucket import Bucket
from fsmove.clever.cli import CleverCli
from fsmove.clever.cutover import CutoverRequest, run_cutover
from fsmove.clever.dns import DnsChecker
from fsmove.clever.migrate import Preflight, preflight, run_dns_phase
from fsmove.clever.migrate_state import PHASES, MigrateState, Until
from fsmove.endpoints import ConnectOptions, endpoint_from_text, open_store
from fsmove.errors import ConfigError, FsmoveError, UsageError
from fsmove.exitcodes import ExitCode
from fsmove.progress import human_bytes
from fsmove.transfers.backend import AuthError, BackendError
from fsmove.transfers.endpoint import Endpoint
from fsmove.transfers.engine import CopyEngine, CopyOptions
from fsmove.transfers.events import Event, Planned
from fsmove.transfers.journal import default_journal_path
from fsmove.transfers.pool import SessionPool

from .copy import DEFAULT_CONNECTIONS, CopyRequest, run_copy
from .verify import VerifyRequest, check_report_paths, run_verify

VERDICTS = {ExitCode.OK: "match", ExitCode.MISMATCH: "mismatch", ExitCode.PARTIAL: "unreadable"}
VERDICT_TEXT = {
    "match": "match: the new bucket holds exactly the old one's files",
    "mismatch": "MISMATCH: the new bucket differs from the old one",
    "unreadable": "INCOMPLETE: some files could not be read",
}


@dataclass(frozen=True)
class MigrateRequest:
    app: str
    old: str | None  # None: `--to` is a zone (a PHP app, re-created there)
    new: str
    until: Until | None = None
    dry_run: bool = False
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
    yes: bool = False


def _progress(line: str) -> None:
    print(f"fsmove migrate: {line}", file=sys.stderr, flush=True)


def _say(line: str) -> None:
    print(line, flush=True)


async def _reach(bucket: Bucket, *, flag: str, connect: ConnectOptions) -> None:
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
            f"preflight: bucket {flag} {bucket.addon} refused its FTP login at "
            f"{endpoint.display} ({exc}); check the add-on in the Console, then rerun"
        ) from None
    except (BackendError, OSError) as exc:
        raise FsmoveError(
            f"preflight: cannot reach bucket {flag} {bucket.addon} over FTP at "
            f"{endpoint.display} ({exc}); check the network, then rerun"
        ) from None
    finally:
        await store.aclose()


async def _reach_both(found: Preflight, connect: ConnectOptions) -> None:
    results = await asyncio.gather(
        _reach(found.old, flag="--from", connect=connect),
        _reach(found.new, flag="--to", connect=connect),
        return_exceptions=True,
    )
    for result in results:
        if isinstance(result, BaseException):
            raise result


async def _plan_copy(src: Endpoint, dst: Endpoint, *, options: CopyOptions,
                     connect: ConnectOptions, src_connections: int | None,
                     dst_connections: int | None) -> Planned:
    """The copy engine's own dry run, both sides opened read-only (not even the
    destination's write probe runs): what a copy would move, skip and delete."""
    events: list[Event] = []
    src_pool = SessionPool(open_store(src, connect, writable=False),
                           max_sessions=src_connections or DEFAULT_CONNECTIONS[src.scheme])
    dst_pool = SessionPool(open_store(dst, connect, writable=False),
                           max_sessions=dst_connections or DEFAULT_CONNECTIONS[dst.scheme])
    try:
        engine = CopyEngine(src=src_pool, dst=dst_pool, journal=None, options=options,
                            subscribers=[events.append])
        await engine.run()
    finally:
        await asyncio.gather(src_pool.aclose(), dst_pool.aclose(), return_exceptions=True)
    return next(e for e in events if isinstance(e, Planned))


class _Migration:
    """One invocation: walks the phases, keeps the journal, collects the summary."""

    def __init__(self, req: MigrateRequest, checker: DnsChecker | None) -> None:
        self.req = req
        self.checker = checker
        self.path = migrate_state.state_path(req.app, req.old, req.new)
        self.state: MigrateState = migrate_state.load(self.path, app=req.app, old=req.old,
                                                      new=req.new)
        self.outcome: dict[str, str] = {}
        self.cutover_ran = False
        self.found: Preflight | None = None
        self.src = f"clever://{req.old}"
        self.dst = f"clever://{req.new}"

    # -- the journal -------------------------------------------------------------------
    def _save(self, state: MigrateState) -> None:
        self.state = state
        if not self.req.dry_run:
            migrate_state.save(self.path, state)

    # -- phases ------------------------------------------------------------------------
    def command_of(self, phase: str) -> str:
        """The fsmove command a phase runs (shown at its start)."""
        reports = "".join(f" --report {p}" for p in self.req.reports)
        return {
            "copy": f"fsmove copy {self.src} {self.dst}",
            "verify": f"fsmove verify {self.src} {self.dst}{reports}",
            "delta": f"fsmove copy {self.src} {self.dst} --delete",
            "cutover": f"fsmove cutover --app {self.req.app} --from {self.req.old} "
                       f"--to {self.req.new}",
        }.get(phase, "")

    def _handlers(self) -> dict[str, Callable[[], ExitCode]]:
        return {"preflight": self._preflight, "copy": self._bulk_copy, "verify": self._verify,
                "delta": self._delta, "cutover": self._cutover, "dns": self._dns}

    def _preflight(self) -> ExitCode:
        req = self.req
        found = preflight(CleverCli(dry_run=req.dry_run, echo=_say), app=req.app,
                          old=req.old, new=req.new)
        asyncio.run(_reach_both(found, req.connect))
        self.found = found
        journal = default_journal_path(found.old.endpoint("/").identity,
                                       found.new.endpoint("/").identity)
        self.state = replace(self.state, zone=found.app.zone, copy_journal=str(journal))
        self.outcome["preflight"] = (f"app {found.app.name} ({found.app.zone}), "
                                     f"{found.old.host} -> {found.new.host}")
        return ExitCode.OK

    def _copy_request(self, *, delete: bool, checksum: bool) -> CopyRequest:
        req = self.req
        return CopyRequest(
            src=self.src, dst=self.dst,
            options=CopyOptions(workers=req.workers, checksum=checksum, delete=delete,
                                bwlimit=req.bwlimit, retries=req.retries,
                                retry_delay=req.retry_delay),
            connect=req.connect, src_connections=req.src_connections,
            dst_connections=req.dst_connections, quiet=req.quiet,
        )

    def _dry_run_copy(self, *, delete: bool) -> ExitCode:
        """Say what the copy (or the delta) would do; write nothing."""
        req = self.req
        if self.found is not None:
            src, dst = self.found.old.endpoint("/"), self.found.new.endpoint("/")
        else:
            src = endpoint_from_text(self.src, side="src")
            dst = endpoint_from_text(self.dst, side="dst")
        plan = asyncio.run(_plan_copy(
            src, dst, connect=req.connect, src_connections=req.src_connections,
            dst_connections=req.dst_connections,
            options=CopyOptions(workers=req.workers, dry_run=True, delete=delete,
                                checksum=self.state.recheck and not delete),
        ))
        phase = "delta" if delete else "copy"
        lines = [f"would copy {plan.files_to_copy} of {plan.files_total} files "
                 f"({human_bytes(plan.bytes_to_copy)}); {plan.files_skipped} already "
                 f"identical ({human_bytes(plan.bytes_skipped)})"]
        if delete:
            lines.append(f"would delete {plan.files_to_delete} files only in the new bucket")
        for line in lines:
            _say(f"{phase} (dry run): {line}")
        self.outcome[phase] = "dry run: " + "; ".join(lines)
        return ExitCode.OK

    def _bulk_copy(self) -> ExitCode:
        if self.req.dry_run:
            return self._dry_run_copy(delete=False)
        recheck = self.state.recheck
        if recheck:
            _progress("copy: the last verification found differences: comparing contents "
                      "(--checksum) to copy again what differs")
        code = run_copy(self._copy_request(delete=False, checksum=recheck))
        if code is ExitCode.OK:
            self.state = replace(self.state, recheck=False)
        return code

    def _verify(self) -> ExitCode:
        req = self.req
        if req.dry_run:
            _say(f"would run: {self.command_of('verify')}")
            self.outcome["verify"] = "not run (dry run)"
            return ExitCode.OK
        from fsmove.verify.results import Tier

        code = run_verify(VerifyRequest(
            src=self.src, dst=self.dst, tier=Tier.FULL, connect=req.connect,
            reports=req.reports, src_connections=req.src_connections,
            dst_connections=req.dst_connections, quiet=req.quiet,
        ))
        verdict = VERDICTS.get(code, "mismatch")
        self.state = replace(self.state, verdict=verdict)
        self.outcome["verify"] = VERDICT_TEXT[verdict]
        if code is ExitCode.MISMATCH:
            # Verifying the same copy again would find the same difference.
            self.state = replace(self.state.undo("copy"), recheck=True)
            _progress("verify: the new bucket differs from the old one (exit 4); the app was "
                      "not touched. See the report; rerun the same command to copy again "
                      "(comparing contents) and verify again")
        elif code is not ExitCode.OK:
            _progress(f"verify: some files could not be read (exit {int(code)}); the app was "
                      "not touched. Rerun the same command to verify again")
        return code

    def _delta(self) -> ExitCode:
        if self.req.dry_run and not self.state.is_done("copy"):
            _say(f"would run: {self.command_of('delta')} (after the bulk copy: what changed "
                 "meanwhile, and delete what the old bucket no longer has)")
            self.outcome["delta"] = "not run (dry run)"
            return ExitCode.OK
        if self.req.dry_run:
            return self._dry_run_copy(delete=True)
        return run_copy(self._copy_request(delete=True, checksum=False))

    def _cutover(self) -> ExitCode:
        req = self.req
        code = run_cutover(CutoverRequest(app=req.app, old=req.old, new=req.new,
                                          dry_run=req.dry_run), out=_say)
        self.cutover_ran = True
        return ExitCode(code)

    def _dns(self) -> ExitCode:
        req = self.req
        run_dns_phase(CleverCli(dry_run=req.dry_run, echo=_say), app=req.app,
                      zone=self.state.zone or "?", checker=self.checker,
                      nameservers=req.nameservers, print_records=not self.cutover_ran,
                      say=_say)
        return ExitCode.OK

    # -- the walk ----------------------------------------------------------------------
    def run(self) -> ExitCode:
        last = PHASES.index(self.req.until.value) if self.req.until else len(PHASES) - 1
        wanted = PHASES[: last + 1]
        handlers = self._handlers()
        if self.state.done:
            done = [p for p in PHASES if self.state.is_done(p)]
            _progress(f"continuing from the journal {self.path} (phases done: "
                      f"{', '.join(done)})")
        for index, phase in enumerate(wanted):
            label = f"[{index + 1}/{len(PHASES)}] {phase}"
            if self.state.is_done(phase):
                _progress(f"{label}: done already")
                self.outcome[phase] = "done earlier"
                continue
            command = self.command_of(phase)
            _progress(f"{label}: start" + (f" ({command})" if command else ""))
            started = time.monotonic()
            try:
                code = handlers[phase]()
            except BaseException:
                self._save(self.state.mark_failed(phase, None))
                self.outcome[phase] = "FAILED (see the error below)"
                self._summary(stopped_at=phase)
                raise
            if code is not ExitCode.OK:
                self._save(self.state.mark_failed(phase, int(code)))
                self.outcome[phase] = (f"{self.outcome.get(phase) or 'stopped'} "
                                       f"(exit {int(code)})")
                self._summary(stopped_at=phase)
                return code
            if not self.req.dry_run:
                self._save(self.state.mark_done(phase))
            seconds = time.monotonic() - started
            _progress(f"{label}: {'looked at' if self.req.dry_run else 'done'} "
                      f"in {seconds:.1f} s")
            self.outcome[phase] = self.outcome.get(phase) or (
                "dry run" if self.req.dry_run else "done")
        self._summary(stopped_at=None)
        return ExitCode.OK

    def _summary(self, *, stopped_at: str | None) -> None:
        req = self.req
        head = "dry run of the migration" if req.dry_run else "migration"
        _say(f"\n{head} of {req.app}: {self.src} -> {self.dst}")
        wanted_last = PHASES.index(req.until.value) if req.until else len(PHASES) - 1
        for index, phase in enumerate(PHASES):
            if phase in self.outcome:
                text = self.outcome[phase] or "done"
            elif self.state.is_done(phase):
                text = "done earlier"
            elif stopped_at is not None:
                text = "not run"
            elif index > wanted_last:
                text = f"not run (--until {req.until})"
            else:
                text = "not run"
            _say(f"  {phase:<9}  {text}")
        verdict = self.state.verdict
        _say(f"  verification: {VERDICT_TEXT[verdict] if verdict else 'not run yet'}")
        if self.state.copy_journal:
            _say(f"  copy journal: {self.state.copy_journal} (`fsmove status` shows it)")
        if req.dry_run:
            _say("dry run: nothing was changed")
        elif stopped_at is None:
            rest = PHASES[wanted_last + 1:]
            if rest:
                _say(f"stopped after {req.until} as asked; rerun without --until to continue "
                     f"at {rest[0]} (journal: {self.path})")
            else:
                _say(f"migration of {req.app} to {req.new} done (journal: {self.path})")
        else:
            _say(f"stopped at {stopped_at}; rerun the same command to continue there "
                 f"(journal: {self.path})")


def _run_php_if_php(req: MigrateRequest) -> ExitCode | None:
    """PHP apps are re-created, not moved (fsmove/clever/php.py): the re-creation's exit
    code when APP is one (``--to`` is then the zone), else None."""
    from fsmove.clever.php import migrate_if_php

    move_only = [flag for flag, given in (("--until", req.until is not None),
                                          ("--report", bool(req.reports)),
                                          ("--nameserver", bool(req.nameservers))) if given]
    return migrate_if_php(req.app, req.new, yes=req.yes, dry_run=req.dry_run,
                          quiet=req.quiet, connect=req.connect,
                          other_options=tuple(move_only))


def run_migrate(req: MigrateRequest) -> ExitCode:
    if req.old is None:
        php_code = _run_php_if_php(req)
        if php_code is not None:
            return php_code
        raise UsageError(f"--from is missing: give the app's old FS Bucket add-on as --from "
                         f"and the new one as --to ({req.app} is not a PHP app)")
    if req.old == req.new:
        raise UsageError(f"--from and --to are both {req.old}: give the new bucket as --to")
    check_report_paths(req.reports)
    if req.reports and req.until is Until.COPY:
        raise UsageError("--report is written by the verify phase: drop --until copy, or "
                         "--report")
    # Built first: a malformed --nameserver is a usage error before anything runs.
    checker = DnsChecker(list(req.nameservers)) if req.nameservers else None
    return _Migration(req, checker).run()
