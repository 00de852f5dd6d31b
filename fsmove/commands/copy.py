"""`fsmove copy SRC DST`: wire endpoints, pools, journal, engine and progress output."""

from __future__ import annotations

import asyncio
import contextlib
import os
import sqlite3
import sys
from dataclasses import dataclass
from pathlib import Path

from fsmove import taskdump
from fsmove.endpoints import ConnectOptions, endpoint_from_text, open_store
from fsmove.errors import JobLockedError, UsageError
from fsmove.exitcodes import ExitCode
from fsmove.progress import DeletionList, JsonEvents, ProgressBars, summary_text
from fsmove.transfers.destination_lock import DestinationLock, DestinationLockedError
from fsmove.transfers.endpoint import Endpoint
from fsmove.transfers.engine import CopyEngine, CopyOptions
from fsmove.transfers.events import Subscriber, Summary
from fsmove.transfers.journal import (
    Journal,
    JournalLockedError,
    default_journal_path,
    read_meta,
)
from fsmove.transfers.pool import SessionPool
from fsmove.transfers.tree import TempNames

#: Default sessions per side, by scheme (measured: benchmarks/README.md). An FTP store
#: refines it from the round trip it measures (``FtpStore._with_suggestion``) unless the
#: user chose ``--src-connections`` / ``--dst-connections``.
DEFAULT_CONNECTIONS = {"ftp": 32, "ftps": 32, "sftp": 8, "file": 16}


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
               temp_names: TempNames | None = None) -> Summary:
    taskdump.install()
    subscribers: list[Subscriber] = []
    if req.json:
        subscribers.append(JsonEvents())
    elif not req.quiet:
        subscribers.append(ProgressBars())
        subscribers.append(DeletionList())
    src_pool = SessionPool(
        open_store(src, req.connect, writable=False),
        max_sessions=req.src_connections or DEFAULT_CONNECTIONS[src.scheme],
        auto_cap=req.src_connections is None,
    )
    dst_pool = SessionPool(
        open_store(dst, req.connect),
        max_sessions=req.dst_connections or DEFAULT_CONNECTIONS[dst.scheme],
        auto_cap=req.dst_connections is None,
    )
    try:
        engine = CopyEngine(
            src=src_pool, dst=dst_pool, journal=journal, options=req.options,
            subscribers=subscribers, temp_names=temp_names,
        )
        if journal is not None:
            journal.start_run()
        try:
            summary = await engine.run()
        except BaseException:
            if journal is not None:
                journal.finish_run("interrupted")
            raise
        if journal is not None:
            journal.finish_run(summary.status)
        return summary
    finally:
        await asyncio.gather(src_pool.aclose(), dst_pool.aclose(), return_exceptions=True)


def run_copy(req: CopyRequest) -> ExitCode:
    src = endpoint_from_text(req.src, side="src")
    dst = endpoint_from_text(req.dst, side="dst")
    check_distinct(src, dst)
    if req.options.dry_run:
        summary = asyncio.run(_run(req, src, dst, None, _job_temp_names(
            journal_path_for(src, dst, req.journal))))
    else:
        path = journal_path_for(src, dst, req.journal)
        try:
            with contextlib.ExitStack() as held:
                _hold_destination(held, dst, path)
                journal = held.enter_context(Journal(path, src=src.identity, dst=dst.identity))
                if journal.recovered_from is not None:
                    print(f"fsmove: warning: the journal {path} could not be read; it was "
                          f"moved to {journal.recovered_from} and a new one started "
                          "(files already copied are still skipped)", file=sys.stderr)
                journal.set_options(
                    {
                        "checksum": req.options.checksum,
                        "delete": req.options.delete,
                        "mtime": req.options.preserve_mtime,
                        "include": list(req.options.filters.include),
                        "exclude": list(req.options.filters.exclude),
                        "src_connections": req.src_connections,
                        "dst_connections": req.dst_connections,
                    }
                )
                summary = asyncio.run(_run(req, src, dst, journal))
        except JournalLockedError as exc:
            raise JobLockedError(str(exc)) from None
    if not req.json and not req.quiet:
        print(summary_text(summary), file=sys.stderr)
    elif req.quiet and summary.failed:
        for p, why in summary.failed:
            print(f"failed: {p}: {why}", file=sys.stderr)
    return ExitCode.PARTIAL if summary.status == "partial" else ExitCode.OK


def run_resume(
    job: str | None, *, workers: int, quiet: bool, json: bool, connect: ConnectOptions
) -> ExitCode:
    """Rerun the copy recorded in a journal, with the options it was started with."""
    import json as jsonlib

    from fsmove.commands.status import find_journal
    from fsmove.transfers.journal import list_jobs, read_meta, read_status
    from fsmove.transfers.tree import Filters

    if job is None:
        unfinished = [p for p in list_jobs() if read_status(p).run_status != "ok"]
        if not unfinished:
            raise UsageError("no unfinished job to resume (see `fsmove status`)")
        path = unfinished[0]
    else:
        path = find_journal(job)
    meta = read_meta(path)
    opts = jsonlib.loads(meta.get("options", "{}"))
    request = CopyRequest(
        src=meta["src"],
        dst=meta["dst"],
        options=CopyOptions(
            workers=workers,
            checksum=bool(opts.get("checksum", False)),
            delete=bool(opts.get("delete", False)),
            preserve_mtime=bool(opts.get("mtime", True)),
            filters=Filters(
                include=tuple(opts.get("include", ())), exclude=tuple(opts.get("exclude", ()))
            ),
        ),
        connect=connect,
        src_connections=opts.get("src_connections"),
        dst_connections=opts.get("dst_connections"),
        journal=path,
        quiet=quiet,
        json=json,
    )
    return run_copy(request)
