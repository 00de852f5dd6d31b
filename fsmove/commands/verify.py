"""`fsmove verify SRC DST` (and `fsmove copy --verify`): compare both trees, report."""

from __future__ import annotations

import asyncio
import dataclasses
import sqlite3
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

from fsmove import event_loop
from fsmove.endpoint_access import (
    ConnectOptions,
    connect_ftp_early,
    open_store,
    resolved_endpoint,
)
from fsmove.errors import UsageError
from fsmove.exitcodes import ExitCode, verification_exit_code
from fsmove.output import CommandOutput, OutputSettings
from fsmove.transfers.backend import Entry
from fsmove.transfers.endpoint import Endpoint
from fsmove.transfers.jobs import default_journal_path, digest_lookup, read_meta
from fsmove.transfers.journal import storable
from fsmove.transfers.not_the_tree import not_the_tree, server_files
from fsmove.transfers.policy import Limits
from fsmove.transfers.pool import SESSIONS_AHEAD, SessionPool
from fsmove.transfers.ratelimit import RateLimiter, rate_limited
from fsmove.transfers.tree import (
    LOCAL_TIME_RESOLUTION,
    Filters,
    TempNames,
    TreeRules,
    is_racy,
    source_time_unchanged,
)
from fsmove.verify.digest import ALGORITHM
from fsmove.verify.html_report import write_html
from fsmove.verify.report import report_temp_path, terminal_summary, to_json, write_json
from fsmove.verify.results import Tier, Verification


@dataclass(frozen=True)
class VerifyRequest:
    #: As typed, or already resolved (see ``CopyRequest``).
    src: str | Endpoint
    dst: str | Endpoint
    tier: Tier
    connect: ConnectOptions
    sample_pct: float | None = None
    seed: int | None = None
    reports: tuple[Path, ...] = ()
    src_connections: int | None = None
    dst_connections: int | None = None
    journal: Path | None = None
    #: Let a copy's journal digests stand in for re-reading the source.
    use_journal: bool = True
    filters: Filters = field(default_factory=Filters)
    quiet: bool = False
    json: bool = False
    #: Reports list every path with its digest, identical ones included.
    list_all: bool = False
    #: ``--bwlimit``: bytes read per second, both sides together (None: no limit).
    bwlimit: float | None = None


def check_report_paths(paths: tuple[Path, ...]) -> None:
    for p in paths:
        if p.suffix.lower() not in (".json", ".html", ".htm"):
            raise UsageError(f"--report {p}: the file name must end in .json or .html")
        if not p.parent.exists():
            raise UsageError(f"--report {p}: folder {p.parent} does not exist")
        if p.is_dir():
            raise UsageError(f"--report {p}: a folder, not a file name")
        # Written once now, before any reading: a report that cannot be written was
        # found only at the end of an hour's verification, whose verdict was then lost
        # (session 33).
        probe = report_temp_path(p)
        try:
            probe.open("w", encoding="utf-8").close()
            probe.unlink()
        except OSError as exc:
            raise UsageError(f"--report {p}: cannot write in {p.parent} "
                             f"({exc.strerror or exc})") from None


def journal_source_digests(
    journal: Path, resolution: float = 1.0
) -> Callable[[Entry], str | None]:
    """A copy's digests, valid only while the source file has the same size and mtime
    (``resolution``: the source's time step; a file on a local disk rewritten 0.3 s
    after it was copied is read again, ``transfers/tree.source_time_unchanged``), and
    not for a file changed within ``tree.RACY_WINDOW`` of its read: a server's whole-second
    time does not change when the file is rewritten in the same second (session 34's
    adversarial pass: a rewrite a few ms after the copy, and one during the read, were
    "Everything matched" from the journal)."""
    known = digest_lookup(journal)

    def lookup(entry: Entry) -> str | None:
        rec = known.get(entry.path)
        if rec is None:
            return None
        size, mtime, digest, algorithm, recorded = rec
        if algorithm != ALGORITHM or size != entry.size:
            return None
        if is_racy(mtime, recorded):
            return None
        if not source_time_unchanged(mtime, entry.mtime, resolution=resolution):
            return None
        return digest

    return lookup


def _journal_of(path: Path, src: Endpoint, dst: Endpoint,
                output: CommandOutput | None) -> dict[str, str] | None:
    """The meta rows of the copy journal at ``path`` when it is this pair's; None when
    there is none, it cannot be read, or it is another job's. A ``--journal`` of
    another pair (``copy A B``, then ``verify A2 B`` with the same journal) vouched
    for A's digests: a file of A2 with A's size and time but other bytes "matched"
    (session 34's adversarial pass). Copy refuses such a journal; verify reads both
    sides instead, and says so."""
    if not path.exists():
        return None
    try:
        meta = read_meta(path)
    except sqlite3.DatabaseError:
        return None
    if "src" in meta and (meta.get("src"), meta.get("dst")) != (
            storable(src.identity), storable(dst.identity)):
        if output is not None:
            output.alert(f"fsmove: warning: journal {path} is another job's "
                         f"({meta.get('src')} -> {meta.get('dst')}): not used, every file "
                         "is read on both sides")
        return None
    return meta


def write_reports(v: Verification, paths: tuple[Path, ...]) -> None:
    for p in paths:
        if p.suffix.lower() == ".json":
            write_json(v, p)
        else:
            write_html(v, p)


async def verify_endpoints(req: VerifyRequest, src: Endpoint, dst: Endpoint,
                           output: CommandOutput | None = None) -> Verification:
    from fsmove.verify.verifier import verify_trees

    limits = Limits(src_sessions=req.src_connections, dst_sessions=req.dst_connections)
    # One limiter for both sides: both reads come in over the user's link.
    limiter = RateLimiter(req.bwlimit) if req.bwlimit is not None else None
    connect_ftp_early((src, dst), timeout=req.connect.timeout)
    src_pool = SessionPool(
        rate_limited(open_store(src, req.connect, writable=False), limiter),
        max_sessions=limits.session_cap("src", src.scheme),
    )
    dst_pool = SessionPool(
        rate_limited(open_store(dst, req.connect, writable=False), limiter),
        max_sessions=limits.session_cap("dst", dst.scheme),
    )
    # Both roots are checked at once, then each file is read on both sides: log in now
    # what that needs (transfers/pool.py), as copy does.
    src_pool.open_ahead(SESSIONS_AHEAD)
    dst_pool.open_ahead(SESSIONS_AHEAD)
    known = None
    temps = None
    path = req.journal or default_journal_path(src.identity, dst.identity)
    meta = _journal_of(path, src, dst, output)
    if meta is not None:
        if req.use_journal and req.tier is not Tier.QUICK:
            # A local disk's times are exact; the remote stores' are whole seconds.
            known = journal_source_digests(path, LOCAL_TIME_RESOLUTION if src.is_local
                                           else 1.0)
        # The copy job's temporary files (a copy still under way, or interrupted) are
        # not the user's: only that job's key recognises them. Without the journal,
        # every file at the destination is compared, whatever its name.
        key = meta.get("temp_key")
        temps = TempNames(key) if key else None
    # fsmove's own state inside a local side, a server's own files in an account's
    # root: not the user's tree (copy leaves them out too, ``not_the_tree.py``).
    extra = not_the_tree(src, dst, path)
    filters = (dataclasses.replace(req.filters, exclude=(*req.filters.exclude, *extra))
               if extra else req.filters)
    rules = TreeRules(filters=filters, temps=temps, server_files=server_files(dst))

    try:
        return await verify_trees(
            src=src_pool,
            dst=dst_pool,
            tier=req.tier,
            sample_pct=req.sample_pct,
            seed=req.seed,
            known_source_digest=known,
            rules=rules,
            src_server_files=server_files(src),
            keep_identical=req.list_all,
            limits=limits,
            on_progress=output.start_verify() if output is not None else None,
        )
    finally:
        if output is not None:
            output.stop_progress()
        await asyncio.gather(src_pool.aclose(), dst_pool.aclose(), return_exceptions=True)


def present(v: Verification, req: VerifyRequest, output: CommandOutput) -> ExitCode:
    """The verdict, then the reports: a report that cannot be written (its disk filled
    meanwhile) is said in one line after the verdict, which is never lost; the exit
    code is the verdict's, or 1 (error) where everything matched."""
    output.verification(to_json(v), terminal_summary(v))
    code = verification_exit_code(v.outcome)
    for p in req.reports:
        try:
            write_reports(v, (p,))
        except OSError as exc:
            output.alert(f"fsmove: error: --report {p} could not be written "
                         f"({exc.strerror or exc}); the verification's result is above")
            code = code if code is not ExitCode.OK else ExitCode.ERROR
            continue
        output.print_info(f"report: {p.resolve()}")
    return code


def run_verify(req: VerifyRequest, output: CommandOutput | None = None) -> ExitCode:
    """Verify, write the reports and show the result on ``output`` (the CLI's; without
    one, a default one from ``req.quiet`` / ``req.json``, closed here)."""
    own = output is None
    out = output or CommandOutput(OutputSettings(quiet=req.quiet, json=req.json),
                                  command="verify")
    check_report_paths(req.reports)
    if req.sample_pct is not None and not 0 < req.sample_pct <= 100:
        raise UsageError("--sample takes a percentage between 0 and 100, like 5")
    src = resolved_endpoint(req.src, side="src")
    dst = resolved_endpoint(req.dst, side="dst")
    v = event_loop.run(verify_endpoints(req, src, dst, out))
    code = present(v, req, out)
    if own:
        out.close(code)
    return code
