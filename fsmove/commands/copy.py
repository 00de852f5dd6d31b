"""`fsmove copy SRC DST`: wire endpoints, pools, journal, engine and progress output."""

from __future__ import annotations

import asyncio
import contextlib
import errno
import os
import sqlite3
from dataclasses import dataclass
from pathlib import Path

from fsmove import taskdump
from fsmove.commands.job_options import JobOptions, describe, from_record, to_record
from fsmove.endpoints import ConnectOptions, endpoint_from_text, open_store
from fsmove.errors import FsmoveError, JobLockedError, UsageError
from fsmove.exitcodes import ExitCode
from fsmove.output import CommandOutput, OutputSettings
from fsmove.progress import human_bytes
from fsmove.transfers.copy import CopyEngine, CopyOptions
from fsmove.transfers.destination_lock import DestinationLock, DestinationLockedError
from fsmove.transfers.endpoint import Endpoint
from fsmove.transfers.events import Summary
from fsmove.transfers.jobs import default_journal_path, read_meta
from fsmove.transfers.journal import Journal, JournalLockedError
from fsmove.transfers.journal_db import JournalPathError
from fsmove.transfers.policy import DEFAULT_SESSIONS
from fsmove.transfers.pool import SessionPool
from fsmove.transfers.tree import TempNames

#: Default sessions per side, by scheme (measured: benchmarks/README.md). An FTP store
#: refines it from the round trip it measures (``FtpStore._with_suggestion``) unless the
#: user chose ``--src-connections`` / ``--dst-connections``.
DEFAULT_CONNECTIONS = DEFAULT_SESSIONS  # the one table of session caps: transfers/policy.py


@dataclass(frozen=True)
class CopyRequest:
    src: str
    dst: str
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


def _server_of(e: Endpoint) -> tuple[str, str, int | None, str | None]:
    """Who serves an endpoint, normalised: ftp and ftps on one host and port are one
    server; host names compare case-insensitively; a missing port is the default one."""
    family = "ftp" if e.scheme in ("ftp", "ftps") else e.scheme
    return family, e.host.lower().rstrip("."), e.effective_port, e.user


def _real_local(path: str) -> str:
    """The path with every symlink resolved (the missing tail of a path that does not
    exist yet kept as written)."""
    return os.path.realpath(path)


def check_distinct(src: Endpoint, dst: Endpoint) -> None:
    """Refuse a destination equal to, or inside, the source (and the reverse), also
    through symlinks (local paths are compared resolved, as written too) and through
    spellings of one server (``ftp://h`` and ``ftps://H:21``)."""
    if src.is_local != dst.is_local:
        return
    if src.is_local:
        pairs = [(src.path, dst.path), (_real_local(src.path), _real_local(dst.path))]
    elif _server_of(src) == _server_of(dst):
        pairs = [(src.path, dst.path)]
    else:
        return
    for a, b in ((x.rstrip("/") + "/", y.rstrip("/") + "/") for x, y in pairs):
        if a == b:
            raise UsageError("source and destination are the same folder: nothing to do")
        if b.startswith(a):
            raise UsageError(
                "the destination is inside the source: the copy would copy itself"
            )
        if a.startswith(b):
            raise UsageError(
                "the source is inside the destination: choose a separate destination"
            )


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
    except DestinationLockedError as exc:
        if exc.job == str(journal):
            raise JobLockedError(
                f"another fsmove is running this job now (journal {journal}); "
                "wait for it or stop it, then rerun"
            ) from None
        raise JobLockedError(str(exc)) from None


def journal_path_for(src: Endpoint, dst: Endpoint, explicit: Path | None) -> Path:
    return explicit if explicit is not None else default_journal_path(src.identity, dst.identity)


async def _run(req: CopyRequest, src: Endpoint, dst: Endpoint, journal: Journal | None,
               output: CommandOutput, temp_names: TempNames | None = None) -> Summary:
    taskdump.install()
    output.start(dry_run=req.options.dry_run)
    src_pool = SessionPool(
        open_store(src, req.connect, writable=False),
        max_sessions=req.src_connections or DEFAULT_CONNECTIONS[src.scheme],
        auto_cap=req.src_connections is None,
    )
    dst_pool = SessionPool(
        # A dry run writes nothing, not even the FTP write probe's scratch files.
        open_store(dst, req.connect, writable=not req.options.dry_run),
        max_sessions=req.dst_connections or DEFAULT_CONNECTIONS[dst.scheme],
        auto_cap=req.dst_connections is None,
    )
    try:
        engine = CopyEngine(
            src=src_pool, dst=dst_pool, journal=journal, options=req.options,
            subscribers=[output], temp_names=temp_names,
        )
        if journal is not None:
            journal.start_run()
        try:
            summary = await engine.run()
        except (KeyboardInterrupt, asyncio.CancelledError):
            if journal is not None:
                _end_run(journal, "interrupted")
            raise
        except BaseException as exc:
            if journal is not None:
                _end_run(journal, "failed", note=failure_note(exc))
            raise
        if journal is not None:
            journal.finish_run(summary.status, note=stopped_line(summary))
        output.copy_finished()
        return summary
    finally:
        await asyncio.gather(src_pool.aclose(), dst_pool.aclose(), return_exceptions=True)


def stopped_line(summary: Summary) -> str | None:
    """The one line for a run that stopped early (None when it tried every file)."""
    if summary.stopped == "destination-full":
        return (f"the destination is full: {summary.files_left} files, "
                f"{human_bytes(summary.bytes_left)} left to copy; free space and rerun")
    return None


def _end_run(journal: Journal, status: str, *, note: str | None = None) -> None:
    """Record how the run ended; the error that ended it matters more than a journal
    that cannot take this last record (a full disk): that one is not raised."""
    with contextlib.suppress(sqlite3.Error):
        journal.finish_run(status, note=note)


def journal_write_problem(exc: BaseException, path: Path) -> FsmoveError | None:
    """The one-line error for a journal that cannot be written (its filesystem full,
    read-only, failing), or None when ``exc`` is not about the journal. Backends turn
    their own OSErrors into BackendErrors, so a bare OSError here is the journal's."""
    full_codes = (errno.ENOSPC, errno.EDQUOT)
    if isinstance(exc, sqlite3.Error):
        name = getattr(exc, "sqlite_errorname", "")
        full = name == "SQLITE_FULL" or "full" in str(exc)
        if not (full or name.startswith(("SQLITE_IOERR", "SQLITE_READONLY", "SQLITE_CANTOPEN"))):
            return None
    elif isinstance(exc, OSError) and exc.errno in full_codes:
        full = True  # the journal's folder, its lock file (other OSErrors are not ours)
    else:
        return None
    folder = path.parent
    if full:
        return FsmoveError(f"the journal's folder {folder} is full: free space there (or "
                           "give --journal on another disk) and rerun to resume")
    return FsmoveError(f"cannot write the journal in {folder} ({exc}): check that folder "
                       "(or give --journal elsewhere) and rerun to resume")


def failure_note(exc: BaseException) -> str:
    """One line saying why a run failed, for `fsmove status` (errors above the engine
    and backend errors never hold a password; other exceptions show their type only)."""
    from fsmove.errors import FsmoveError
    from fsmove.transfers.backend import BackendError

    if isinstance(exc, FsmoveError | BackendError):
        text = " ".join(str(exc).split())
    else:
        text = f"internal error ({type(exc).__name__})"
    return text if len(text) <= 200 else text[:197] + "..."


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
    code = run_copy(req, out)
    if req.verify and not req.options.dry_run:
        from fsmove.commands.verify import VerifyRequest, run_verify
        from fsmove.verify.results import Tier

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


def _copy(req: CopyRequest, out: CommandOutput) -> ExitCode:
    src = endpoint_from_text(req.src, side="src")
    dst = endpoint_from_text(req.dst, side="dst")
    check_distinct(src, dst)
    out.log_only(f"{src.display} -> {dst.display}" + (" (dry run)" if req.options.dry_run
                                                       else ""))
    if req.options.dry_run:
        summary = asyncio.run(_run(req, src, dst, None, out, _job_temp_names(
            journal_path_for(src, dst, req.journal))))
    else:
        path = journal_path_for(src, dst, req.journal)
        try:
            with contextlib.ExitStack() as held:
                _hold_destination(held, dst, path)
                journal = held.enter_context(Journal(path, src=src.identity, dst=dst.identity))
                if journal.recovered_from is not None:
                    out.alert(f"fsmove: warning: the journal {path} could not be read; it was "
                              f"moved to {journal.recovered_from} and a new one started "
                              "(files already copied are still skipped)")
                journal.set_options(to_record(req.job_options()))
                summary = asyncio.run(_run(req, src, dst, journal, out))
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


@dataclass(frozen=True)
class ResumeOverrides:
    """Options given to `fsmove resume` itself (None: as the job was started)."""

    workers: int | None = None
    bwlimit: float | None = None
    timeout: float | None = None
    known_hosts: Path | None = None
    identity: tuple[Path, ...] = ()
    ca_file: Path | None = None
    quiet: bool = False
    json: bool = False
    #: Only ever turned on here (a saved job's trust settings are never loosened by
    #: leaving a flag out).
    accept_new_host_key: bool = False
    insecure_tls: bool = False


def pick_job(job: str | None) -> Path:
    """The journal to resume: the one named, else the only unfinished job.

    "Unfinished" means some run planned the copy and the last such run did not end
    ``ok``; attempts that never got that far (a refused login) are not jobs to resume,
    and with several unfinished jobs the user names one (they are listed)."""
    from fsmove.commands.status import find_journal, readable_jobs

    if job is not None:
        return find_journal(job)
    jobs = readable_jobs()
    unfinished = [st for st in jobs if st.started and st.state != "ok" and not st.running]
    if not unfinished:
        running = [st for st in jobs if st.running]
        if running:
            raise UsageError(f"no unfinished job to resume: job {running[0].path.stem} is "
                             "running now (see `fsmove status`)")
        raise UsageError("no unfinished job to resume (see `fsmove status`)")
    if len(unfinished) > 1:
        listed = "; ".join(f"{st.path.stem} ({st.state}: {st.src} -> {st.dst})"
                           for st in unfinished)
        raise UsageError(f"{len(unfinished)} unfinished jobs: {listed}; "
                         "name one: fsmove resume JOB")
    return unfinished[0].path


def run_resume(job: str | None, overrides: ResumeOverrides,
               output: CommandOutput | None = None) -> ExitCode:
    """Rerun the copy recorded in a journal, with every option it was started with
    (passwords excepted), after printing the job and those options.

    A saved ``--delete`` is replayed, after a line saying so: the user asked for a
    mirror when starting the job, and a resume that silently dropped it would end
    "ok" with files the source no longer has. Deletion still happens only at the end
    of a run in which every file copied (as in `fsmove copy`)."""
    from dataclasses import replace

    from fsmove.commands.status import readable

    path = pick_job(job)
    st = readable(path)
    if st is None:
        raise FsmoveError(f"the journal {path} cannot be read: nothing to resume "
                          "(the next `fsmove copy` of that job sets it aside)")
    saved = from_record(st.options or {})
    copy = replace(saved.copy, workers=overrides.workers or saved.copy.workers,
                   bwlimit=overrides.bwlimit or saved.copy.bwlimit)
    connect = replace(
        saved.connect,
        timeout=overrides.timeout or saved.connect.timeout,
        known_hosts=overrides.known_hosts or saved.connect.known_hosts,
        identity_files=overrides.identity or saved.connect.identity_files,
        ca_file=overrides.ca_file or saved.connect.ca_file,
        accept_new_host_key=overrides.accept_new_host_key or saved.connect.accept_new_host_key,
        insecure_tls=overrides.insecure_tls or saved.connect.insecure_tls,
    )
    request = CopyRequest(
        src=st.src, dst=st.dst, options=copy, connect=connect,
        src_connections=saved.src_connections, dst_connections=saved.dst_connections,
        journal=path, quiet=overrides.quiet, json=overrides.json,
        verify=saved.verify, reports=saved.reports,
    )
    out = output or CommandOutput(OutputSettings(quiet=request.quiet, json=request.json),
                                  command="resume")
    out.alert(f"fsmove: resuming job {path.stem} ({st.state}): {st.src} -> {st.dst}")
    out.alert(f"fsmove: options: {describe(request.job_options())}")
    if copy.delete:
        out.alert("fsmove: note: this job was started with --delete: destination files "
                  "that are not in the source are deleted once every file is copied")
    code = run_copy_and_verify(request, out)
    if output is None:
        out.close(code)
    return code
