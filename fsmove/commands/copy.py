"""`fsmove copy SRC DST`: wire endpoints, pools, journal, engine and progress output."""

from __future__ import annotations

import asyncio
import sys
from dataclasses import dataclass
from pathlib import Path

from fsmove import taskdump
from fsmove.endpoints import ConnectOptions, endpoint_from_text, open_store
from fsmove.errors import JobLockedError, UsageError
from fsmove.exitcodes import ExitCode
from fsmove.progress import DeletionList, JsonEvents, ProgressBars, summary_text
from fsmove.transfers.endpoint import Endpoint
from fsmove.transfers.engine import CopyEngine, CopyOptions
from fsmove.transfers.events import Subscriber, Summary
from fsmove.transfers.journal import Journal, JournalLockedError, default_journal_path
from fsmove.transfers.pool import SessionPool

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


def check_distinct(src: Endpoint, dst: Endpoint) -> None:
    """Refuse a destination equal to, or inside, the source (and the reverse)."""
    same_server = (src.scheme, src.host, src.effective_port, src.user) == (
        dst.scheme,
        dst.host,
        dst.effective_port,
        dst.user,
    ) or (src.is_local and dst.is_local)
    if not same_server:
        return
    a, b = src.path.rstrip("/") + "/", dst.path.rstrip("/") + "/"
    if a == b:
        raise UsageError("source and destination are the same folder: nothing to do")
    if b.startswith(a):
        raise UsageError("the destination is inside the source: the copy would copy itself")
    if a.startswith(b):
        raise UsageError("the source is inside the destination: choose a separate destination")


def journal_path_for(src: Endpoint, dst: Endpoint, explicit: Path | None) -> Path:
    return explicit if explicit is not None else default_journal_path(src.identity, dst.identity)


async def _run(req: CopyRequest, src: Endpoint, dst: Endpoint, journal: Journal | None) -> Summary:
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
            subscribers=subscribers,
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
        summary = asyncio.run(_run(req, src, dst, None))
    else:
        path = journal_path_for(src, dst, req.journal)
        try:
            with Journal(path, src=src.identity, dst=dst.identity) as journal:
                if journal.recovered_from is not None:
                    print(f"fsmove: warning: the journal {path} could not be read; it was "
                          f"moved to {journal.recovered_from} and a new one started "
                          "(files already copied are still skipped)", file=sys.stderr)
                journal.set_options(
                    {
                        "checksum": req.options.checksum,
                        "delete": req.options.delete,
                        "mtime": req.options.preserve_mtime,
                        "perms": req.options.keep_perms,
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
    from fsmove.transfers.plan import Filters

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
            keep_perms=bool(opts.get("perms", True)),
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
