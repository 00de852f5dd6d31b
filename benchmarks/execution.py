"""Run one cell: for each tool, an empty destination, a measured copy, a hashed check."""

from __future__ import annotations

import dataclasses
import shutil
import traceback
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

from .cells import Cell
from .corpora import Corpus
from .environment import Route, Sites
from .measure import Command, Measured, run_measured, tail
from .results import ResumeFigures, RunResult, TreeResumeFigures
from .runners.base import CopyJob, Runner
from .runners.fsmove_runner import summary_event
from .verification import empty_folder, verify_tree

DEST_NAME = "run"


@dataclass(frozen=True)
class Settings:
    scratch_dir: Path
    timeout_s: float
    #: every password the servers use: scrubbed from any text a result keeps
    secrets: tuple[str, ...]
    log: Callable[[str], None]
    #: the limit per run of the 100,000-file cells (minutes where others take seconds)
    scale_timeout_s: float = 3600.0
    #: the limit per run of the million-file cells (hours)
    million_timeout_s: float = 6 * 3600.0

    def timeout_for(self, cell: Cell) -> float:
        if cell.kind.startswith("million"):
            return self.million_timeout_s
        return self.scale_timeout_s if cell.kind == "scale" else self.timeout_s


def _scrub(text: str, secrets: tuple[str, ...]) -> str:
    for secret in secrets:
        if secret:
            text = text.replace(secret, "***")
    return text


def _scratch(settings: Settings, cell: Cell, tool: str) -> Path:
    path = settings.scratch_dir / cell.id / tool
    if path.exists():
        shutil.rmtree(path)
    path.mkdir(parents=True)
    return path


def _result(
    *,
    cell: Cell,
    tool: str,
    corpus: Corpus,
    ok: bool,
    m: Measured | None = None,
    verification: str = "",
    error: str = "",
    summary: dict[str, object] | None = None,
    resume: ResumeFigures | None = None,
    tree_resume: TreeResumeFigures | None = None,
    extra: dict[str, object] | None = None,
) -> RunResult:
    def r(x: float | None, nd: int) -> float | None:
        return None if x is None else round(x, nd)

    return RunResult(
        cell=cell.id,
        kind=cell.kind,
        corpus=cell.corpus,
        route=cell.route,
        rtt_ms=cell.rtt_ms,
        tool=tool,
        ok=ok,
        files=corpus.file_count,
        bytes=corpus.total_bytes,
        wall_s=r(m.wall_s, 3) if m else None,
        cpu_user_s=r(m.cpu_user_s, 3) if m else None,
        cpu_sys_s=r(m.cpu_sys_s, 3) if m else None,
        peak_rss_mib=r(m.peak_rss_mib, 1) if m else None,
        peak_tree_rss_mib=r(m.peak_tree_rss_mib, 1) if m else None,
        first_byte_s=r(m.first_byte_s, 3) if m else None,
        first_byte_poll_s=r(m.first_byte_poll_s, 3) if m else None,
        exit_code=m.exit_code if m else None,
        killed=m.killed if m else None,
        verification=verification,
        error=error,
        summary=summary,
        resume=resume,
        tree_resume=tree_resume,
        extra=extra or {},
    )


def _failure_text(m: Measured, settings: Settings) -> str:
    if m.killed == "timeout":
        why = f"timed out after {m.wall_s:.0f} s"
    elif m.exit_code is None:
        why = "killed by a signal"
    else:
        why = f"exit code {m.exit_code}"
    detail = tail(m.stderr_path) or tail(m.stdout_path)
    return _scrub(f"{why}: {detail}" if detail else why, settings.secrets)


def run_transfer(
    *,
    cell: Cell,
    runner: Runner,
    corpus: Corpus,
    route: Route,
    settings: Settings,
    first_byte: bool = False,
) -> RunResult:
    """One tool copies ``corpus`` from the route's source to an empty destination."""
    try:
        scratch = _scratch(settings, cell, runner.name)
        dst = route.dst.sub(DEST_NAME)
        empty_folder(dst.local, owner=_owner(route))
        job = CopyJob(src=route.src.sub(corpus.spec.name), dst=dst, scratch=scratch)
        m = run_measured(
            runner.command(job),
            log_prefix=scratch / "run",
            timeout=settings.timeout_for(cell),
            first_byte_dir=dst.local if first_byte else None,
        )
        summary = summary_event(m.stdout_path) if runner.name == "fsmove" else None
        check = verify_tree(corpus, dst.local)
        ok = m.exit_code == 0 and m.killed is None and check.ok
        error = "" if m.exit_code == 0 and m.killed is None else _failure_text(m, settings)
        return _result(
            cell=cell,
            tool=runner.name,
            corpus=corpus,
            m=m,
            ok=ok,
            verification=check.describe(),
            error=error,
            summary=summary,
        )
    except Exception as exc:  # a broken tool or setup must not end the whole benchmark
        settings.log(traceback.format_exc())
        error = _scrub(repr(exc), settings.secrets)
        return _result(cell=cell, tool=runner.name, corpus=corpus, ok=False, error=error)


def _resume_error(*, clean: bool, first: Measured, second: Measured, settings: Settings) -> str:
    if not clean:
        return _failure_text(second, settings)
    if first.killed != "trigger":
        how = _failure_text(first, settings) if first.exit_code != 0 else "it finished"
        return f"the first run was not killed at half the file ({how})"
    return ""


def _owner(route: Route) -> tuple[int, int]:
    stat = route.dst.local.stat()
    return stat.st_uid, stat.st_gid


def run_resume(
    *,
    cell: Cell,
    runner: Runner,
    corpus: Corpus,
    sites: Sites,
    settings: Settings,
) -> RunResult:
    """Kill the copy (SIGKILL, whole process group) at half the file, then run it again."""
    try:
        route, relay = sites.counted_route()
        scratch = _scratch(settings, cell, runner.name)
        dst = route.dst.sub(DEST_NAME)
        empty_folder(dst.local, owner=_owner(route))
        size = corpus.total_bytes
        job = CopyJob(src=route.src.sub(corpus.spec.name), dst=dst, scratch=scratch)

        start = relay.stats().to_target
        half = start + size // 2
        first = run_measured(
            runner.command(job),
            log_prefix=scratch / "first",
            timeout=settings.timeout_for(cell),
            kill_when=lambda: relay.stats().to_target >= half,
        )
        after_first = relay.stats().to_target
        if first.killed != "trigger":
            error = _resume_error(clean=True, first=first, second=first, settings=settings)
            return _result(cell=cell, tool=runner.name, corpus=corpus, m=first, ok=False,
                           error=error)  # fmt: skip
        resumed: Command = runner.command(
            CopyJob(src=job.src, dst=job.dst, scratch=scratch, resume=True)
        )
        second = run_measured(
            resumed, log_prefix=scratch / "second", timeout=settings.timeout_for(cell)
        )
        after_second = relay.stats().to_target
        figures = ResumeFigures(
            size=size,
            sent_first=after_first - start,
            sent_second=after_second - after_first,
            killed_at_fraction=round((after_first - start) / size, 3),
            first_run_killed=first.killed == "trigger",
        )
        summary = summary_event(second.stdout_path) if runner.name == "fsmove" else None
        check = verify_tree(corpus, dst.local)
        clean = second.exit_code == 0 and second.killed is None
        both = dataclasses.replace(
            second,
            wall_s=first.wall_s + second.wall_s,
            cpu_user_s=first.cpu_user_s + second.cpu_user_s,
            cpu_sys_s=first.cpu_sys_s + second.cpu_sys_s,
            peak_rss_mib=max(first.peak_rss_mib, second.peak_rss_mib),
            peak_tree_rss_mib=max(first.peak_tree_rss_mib, second.peak_tree_rss_mib),
        )
        return _result(
            cell=cell,
            tool=runner.name,
            corpus=corpus,
            m=both,
            ok=clean and check.ok and figures.first_run_killed,
            verification=check.describe(),
            error=_resume_error(clean=clean, first=first, second=second, settings=settings),
            summary=summary,
            resume=figures,
            extra={
                "first_run_wall_s": round(first.wall_s, 3),
                "second_run_wall_s": round(second.wall_s, 3),
                "first_run_exit_code": first.exit_code,
            },
        )
    except Exception as exc:
        settings.log(traceback.format_exc())
        error = _scrub(repr(exc), settings.secrets)
        return _result(cell=cell, tool=runner.name, corpus=corpus, ok=False, error=error)
