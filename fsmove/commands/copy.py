"""`fsmove copy SRC DST`: its command line, and the wiring of endpoints, pools, journal,
engine and progress output (`fsmove resume` and `fsmove migrate` run copies through it)."""

from __future__ import annotations

import asyncio
import contextlib
import dataclasses
import errno
import sqlite3
from dataclasses import dataclass
from pathlib import Path

from fsmove import event_loop, taskdump
from fsmove.commands.copy_endings import (
    end_run,
    failure_note,
    journal_write_problem,
    stopped_line,
    verification_recorded,
)
from fsmove.commands.distinct_sides import check_distinct, same_server
from fsmove.commands.job_options import JobOptions, to_record
from fsmove.endpoint_access import (
    ConnectOptions,
    connect_ftp_early,
    open_store,
    resolved_endpoint,
)
from fsmove.errors import ConfigError, JobLockedError, UsageError
from fsmove.exitcodes import ExitCode
from fsmove.output import CommandOutput, OutputSettings
from fsmove.transfers.copy import CopyEngine, CopyOptions
from fsmove.transfers.destination_lock import (
    DestinationLock,
    DestinationLockedError,
    default_lock_dir,
)
from fsmove.transfers.endpoint import Endpoint
from fsmove.transfers.events import Summary
from fsmove.transfers.jobs import default_journal_path, read_meta
from fsmove.transfers.journal import Journal, JournalLockedError
from fsmove.transfers.journal_db import JournalPathError
from fsmove.transfers.journal_view import JournalView
from fsmove.transfers.not_the_tree import not_the_tree, server_files
from fsmove.transfers.policy import DEFAULT_SESSIONS
from fsmove.transfers.pool import SESSIONS_AHEAD, SessionPool
from fsmove.transfers.ratelimit import RateLimiter, rate_limited
from fsmove.transfers.tree import TempNames

#: Default sessions per side, by scheme (measured: benchmarks/README.md). The pool sizes a
#: side from the round trip its store measures (transfers/session_count.py) unless the
#: user chose ``--src-connections`` / ``--dst-connections``.
DEFAULT_CONNECTIONS = DEFAULT_SESSIONS  # the one table of session caps: transfers/policy.py


@dataclass(frozen=True)
class CopyRequest:
    #: What the user typed (resolved when the copy starts), or an endpoint a caller
    #: already resolved (`fsmove migrate` reads each bucket once and carries it).
    src: str | Endpoint
    dst: str | Endpoint
    options: CopyOptions
    connect: ConnectOptions
    src_connections: int | None = None
    dst_connections: int | None = None
    journal: Path | None = None
    quiet: bool = False
    json: bool = False
    #: `--verify` / `--report`: verify both trees after the copy (journaled with the job).
    verify: bool = False
    reports: tuple[Path, ...] = ()
    #: `--list-all`: the verification's reports list every file (with --verify).
    list_all: bool = False

    def job_options(self) -> JobOptions:
        return JobOptions(copy=self.options, connect=self.connect,
                          src_connections=self.src_connections,
                          dst_connections=self.dst_connections,
                          verify=self.verify, reports=self.reports)


def _job_temp_names(journal: Path) -> TempNames | None:
    """The temporary names of the job journaled at ``journal``, for a dry run (which
    opens no journal): its partial files are shown as such, not as the user's."""
    if not journal.is_file():
        return None
    try:
        key = read_meta(journal).get("temp_key")
    except sqlite3.DatabaseError:
        return None
    return TempNames(key) if key else None


def _hold_destination(held: contextlib.ExitStack, dst: Endpoint, journal: Path) -> None:
    """Take the destination's lock (transfers/destination_lock.py) for the run, before
    the journal is opened (a refused run leaves no journal behind)."""
    try:
        held.enter_context(DestinationLock(dst, job=str(journal)))
    except OSError as exc:
        # Its folder is under fsmove's state folder (a HOME that cannot be written, a
        # read-only or missing XDG_STATE_HOME): say which, and what to set.
        where = exc.filename or default_lock_dir()
        raise ConfigError(
            f"cannot write fsmove's state folder ({where}: {exc.strerror or exc}); set "
            "XDG_STATE_HOME to a folder you can write (its locks live there, and its "
            "journals unless --journal says otherwise)") from None
    except DestinationLockedError as exc:
        if exc.job == str(journal):
            raise JobLockedError(
                f"another fsmove is running this job now (journal {journal}); "
                "wait for it or stop it, then rerun"
            ) from None
        raise JobLockedError(str(exc)) from None


def _open_journal(held: contextlib.ExitStack, path: Path, src: Endpoint,
                  dst: Endpoint) -> Journal:
    """The job's journal, opened (closed with ``held``); a folder it cannot be made in
    is said in one line (a full disk keeps its own wording: ``journal_write_problem``)."""
    try:
        return held.enter_context(Journal(path, src=src.identity, dst=dst.identity))
    except OSError as exc:
        if exc.errno in (errno.ENOSPC, errno.EDQUOT):
            raise
        raise ConfigError(
            f"cannot make the journal {path} ({exc.filename or path.parent}: "
            f"{exc.strerror or exc}); give --journal a path you can write, or set "
            "XDG_STATE_HOME") from None


def moved_journal_line(journal: Journal, path: Path) -> str | None:
    """The warning for a journal removed or replaced under the run
    (``Journal.keep_in_place``), or None."""
    if journal.moved_under_us == "put back":
        return (f"fsmove: warning: the journal {path} was removed during the run; it was "
                "written back from the open copy, nothing was lost")
    if journal.moved_under_us == "replaced":
        return (f"fsmove: warning: another file was put at the journal's path {path} "
                f"during the run and was left alone; this job went on in "
                f"{journal.set_aside} (to go on with it: fsmove resume {journal.set_aside})")
    if journal.moved_under_us == "lost":
        return (f"fsmove: warning: the journal {path} was removed or replaced during the "
                "run and could not be written back: this run's progress is not in it (a "
                "rerun compares both trees again; files in place are skipped)")
    return None


def journal_path_for(src: Endpoint, dst: Endpoint, explicit: Path | None) -> Path:
    return explicit if explicit is not None else default_journal_path(src.identity, dst.identity)


async def _run(req: CopyRequest, src: Endpoint, dst: Endpoint, journal: Journal | None,
               output: CommandOutput, temp_names: TempNames | None = None,
               records: JournalView | None = None) -> Summary:
    taskdump.install()
    output.start(dry_run=req.options.dry_run)
    # --bwlimit paces what is read from the source, as a store decorator (the same
    # RateLimitedStore verify uses): every source read of the job, plan's --checksum
    # reads and the re-read before a rename included, goes through it.
    limiter = RateLimiter(req.options.bwlimit) if req.options.bwlimit else None
    connect_ftp_early((src, dst), timeout=req.connect.timeout)
    src_pool = SessionPool(
        rate_limited(open_store(src, req.connect, writable=False), limiter),
        max_sessions=req.src_connections or DEFAULT_CONNECTIONS[src.scheme],
        auto_cap=req.src_connections is None,
    )
    dst_pool = SessionPool(
        # A dry run writes nothing, not even the FTP write probe's scratch files.
        open_store(dst, req.connect, writable=not req.options.dry_run),
        max_sessions=req.dst_connections or DEFAULT_CONNECTIONS[dst.scheme],
        auto_cap=req.dst_connections is None,
    )
    # Log in now, both sides at once, what the first steps need (transfers/pool.py):
    # the source's root check and listing and a second file, the destination's listing
    # (and its write probe, whose sessions the FTP store adds) and a second file.
    src_pool.open_ahead(SESSIONS_AHEAD)
    dst_pool.open_ahead(SESSIONS_AHEAD)
    try:
        engine = CopyEngine(
            src=src_pool, dst=dst_pool, journal=journal, options=req.options,
            subscribers=[output], temp_names=temp_names, records=records,
        )
        if journal is not None:
            journal.start_run()
        try:
            summary = await engine.run()
        except (KeyboardInterrupt, asyncio.CancelledError):
            if journal is not None:
                end_run(journal, "interrupted")
            raise
        except BaseException as exc:
            if journal is not None:
                end_run(journal, "failed", note=failure_note(exc))
            raise
        if journal is not None:
            journal.finish_run(summary.status, note=stopped_line(summary))
        output.copy_finished()
        return summary
    finally:
        await asyncio.gather(src_pool.aclose(), dst_pool.aclose(), return_exceptions=True)


def run_copy_and_verify(req: CopyRequest, output: CommandOutput | None = None) -> ExitCode:
    """`fsmove copy` (and `fsmove resume`): the copy, then `--verify` if asked, on one
    output (the CLI's; without one, a default one from ``req.quiet`` / ``req.json``)."""
    own = output is None
    out = output or CommandOutput(OutputSettings(quiet=req.quiet, json=req.json),
                                  command="copy")
    if (req.reports or req.list_all) and not req.verify:
        raise UsageError("--report and --list-all go with --verify")
    if req.verify:
        from fsmove.commands.verify import check_report_paths

        check_report_paths(req.reports)
    if req.verify and not req.options.dry_run:
        # Resolved once for both phases (a password asked once, a clever:// bucket
        # looked up once, the journal found where the copy kept it).
        req = dataclasses.replace(req, src=resolved_endpoint(req.src, side="src"),
                                  dst=resolved_endpoint(req.dst, side="dst"))
    code = run_copy(req, out)
    if req.verify and not req.options.dry_run:
        from fsmove.commands.verify import VerifyRequest, run_verify
        from fsmove.verify.results import Tier

        src, dst = resolved_endpoint(req.src, side="src"), resolved_endpoint(req.dst,
                                                                               side="dst")
        with verification_recorded(journal_path_for(src, dst, req.journal),
                                   src.identity, dst.identity) as codes:
            checked = run_verify(
                VerifyRequest(
                    src=req.src, dst=req.dst, tier=Tier.FULL, connect=req.connect,
                    reports=req.reports, src_connections=req.src_connections,
                    dst_connections=req.dst_connections, journal=req.journal,
                    filters=req.options.filters, quiet=req.quiet, json=req.json,
                    list_all=req.list_all, bwlimit=req.options.bwlimit,
                ),
                out,
            )
            codes.append(int(checked))
        code = max(code, checked)
    if own:
        out.close(code)
    return code


def run_copy(req: CopyRequest, output: CommandOutput | None = None) -> ExitCode:
    """Run the copy. ``output`` is the command's output (the CLI makes it from -q, -v,
    --json, --stats, --log-file and closes it); without one, a default one is made from
    ``req.quiet`` / ``req.json`` and closed here."""
    own = output is None
    out = output or CommandOutput(OutputSettings(quiet=req.quiet, json=req.json),
                                  command="copy")
    try:
        code = _copy(req, out)
    except BaseException:
        out.stop_progress()
        raise
    if own:
        out.close(code)
    return code


def without_own_state(options: CopyOptions, src: Endpoint, dst: Endpoint,
                      journal: Path) -> CopyOptions:
    """``options`` whose filters also leave out what is not the user's tree: fsmove's
    own state where a local side holds it, a server's own files in an account's root
    (``not_the_tree.py``): never copied, deleted or compared."""
    extra = not_the_tree(src, dst, journal)
    filters = dataclasses.replace(options.filters,
                                  exclude=(*options.filters.exclude, *extra))
    return dataclasses.replace(options, filters=filters,
                               same_server=not src.is_local and same_server(src, dst),
                               src_server_files=server_files(src),
                               dst_server_files=server_files(dst))


def _copy(req: CopyRequest, out: CommandOutput) -> ExitCode:
    src = resolved_endpoint(req.src, side="src")
    dst = resolved_endpoint(req.dst, side="dst")
    check_distinct(src, dst)
    recorded = req.job_options()  # the user's options, replayed by `fsmove resume`
    req = dataclasses.replace(req, options=without_own_state(
        req.options, src, dst, journal_path_for(src, dst, req.journal)))
    out.log_only(f"{src.display} -> {dst.display}" + (" (dry run)" if req.options.dry_run
                                                       else ""))
    if req.options.dry_run:
        # The job's journal read, not opened: the dry run plans with its records (racy
        # files read again, a destination's recorded times) as the real run will.
        path = journal_path_for(src, dst, req.journal)
        view = JournalView.open(path, src=src.identity, dst=dst.identity)
        try:
            summary = event_loop.run(_run(req, src, dst, None, out, _job_temp_names(path),
                                          records=view))
        finally:
            if view is not None:
                view.close()
    else:
        path = journal_path_for(src, dst, req.journal)
        try:
            with contextlib.ExitStack() as held:
                _hold_destination(held, dst, path)
                journal = _open_journal(held, path, src, dst)
                if journal.recovered_from is not None:
                    out.alert(f"fsmove: warning: the journal {path} could not be read; it was "
                              f"moved to {journal.recovered_from} and a new one started "
                              "(files already copied are still skipped)")
                journal.set_options(to_record(recorded))
                try:
                    summary = event_loop.run(_run(req, src, dst, journal, out))
                finally:
                    if (moved := moved_journal_line(journal, path)) is not None:
                        out.alert(moved)
        except JournalLockedError as exc:
            raise JobLockedError(str(exc)) from None
        except JournalPathError as exc:
            raise UsageError(str(exc)) from None
        except (sqlite3.Error, OSError) as exc:
            problem = journal_write_problem(exc, path)
            if problem is None:
                raise
            raise problem from None
    if (line := stopped_line(summary)) is not None:
        out.alert(f"fsmove: {line}")
    return ExitCode.PARTIAL if summary.status == "partial" else ExitCode.OK
