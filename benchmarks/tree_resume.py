"""The million-file resume cells: kill a copy (SIGKILL, whole process group) when half the
files have arrived, run the same command again, and count what the rerun sent again.

"Arrived" is counted on the destination folder (regular files, a throttled scan: see
``measure.Throttled``), so the kill lands within one scan interval of the half (the
fraction reached is reported). After the kill the destination is snapshotted (inode,
ctime, size of every file, taken until two snapshots agree: a server may still be
writing what the killed client sent). A file *complete at the kill* has its final name
and the corpus's size. After the rerun, each such file is looked at again: another inode
means it was replaced (a new copy renamed over it), the same inode with another ctime or
size means it was written in place (or its metadata changed: an upper bound). Those are
the re-sent files; their sizes are the re-sent bytes. Partial files at the kill
(temporary names, short files) were in flight; finishing them is not counted as re-sent.
"""

from __future__ import annotations

import dataclasses
import math
import traceback

from .cells import MILLION_KILL_FRACTION, Cell
from .corpora import Corpus
from .environment import Route
from .execution import DEST_NAME, Settings, _failure_text, _owner, _result, _scratch, _scrub
from .measure import Throttled, run_measured
from .results import RunResult, TreeResumeFigures
from .runners.base import CopyJob, Runner
from .runners.fsmove_runner import summary_event
from .tree_state import count_files, rewrites, settled_snapshot
from .verification import empty_folder, verify_tree

#: the smallest wait between two counts of the destination's files
_COUNT_INTERVAL_S = 0.05


def run_tree_resume(
    *, cell: Cell, runner: Runner, corpus: Corpus, route: Route, settings: Settings
) -> RunResult:
    try:
        scratch = _scratch(settings, cell, runner.name)
        dst = route.dst.sub(DEST_NAME)
        empty_folder(dst.local, owner=_owner(route))
        job = CopyJob(src=route.src.sub(corpus.spec.name), dst=dst, scratch=scratch)
        half = math.ceil(corpus.file_count * MILLION_KILL_FRACTION)
        half_arrived = Throttled(
            lambda: count_files(dst.local) >= half, min_interval=_COUNT_INTERVAL_S
        )
        first = run_measured(
            runner.command(job),
            log_prefix=scratch / "first",
            timeout=settings.timeout_for(cell),
            kill_when=half_arrived,
        )
        if first.killed != "trigger":
            how = _failure_text(first, settings) if first.exit_code != 0 else "it finished"
            error = f"the first run was not killed at half the files ({how})"
            return _result(cell=cell, tool=runner.name, corpus=corpus, m=first, ok=False,
                           error=error)  # fmt: skip
        at_kill = settled_snapshot(dst.local)
        sizes = {e.path: e.size for e in corpus.entries}
        complete = {rel: state for rel, state in at_kill.items() if sizes.get(rel) == state.size}
        resumed = runner.command(CopyJob(src=job.src, dst=dst, scratch=scratch, resume=True))
        second = run_measured(
            resumed, log_prefix=scratch / "second", timeout=settings.timeout_for(cell)
        )
        again = rewrites(complete, dst.local)
        figures = TreeResumeFigures(
            files=corpus.file_count,
            complete_at_kill=len(complete),
            partial_at_kill=len(at_kill) - len(complete),
            killed_at_fraction=round(len(complete) / corpus.file_count, 4),
            replaced=len(again.replaced),
            rewritten=len(again.rewritten),
            resent_bytes=sum(sizes[rel] for rel in (*again.replaced, *again.rewritten)),
            in_flight_bound=runner.files_in_flight(),
            first_run_killed=True,
        )
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
        examples = [f"replaced {p}" for p in again.replaced[:3]]
        examples += [f"rewritten {p}" for p in again.rewritten[:3]]
        return _result(
            cell=cell,
            tool=runner.name,
            corpus=corpus,
            m=both,
            ok=clean and check.ok,
            verification=check.describe(),
            error="" if clean else _failure_text(second, settings),
            summary=summary_event(second.stdout_path) if runner.name == "fsmove" else None,
            tree_resume=figures,
            extra={
                "first_run_wall_s": round(first.wall_s, 3),
                "second_run_wall_s": round(second.wall_s, 3),
                "first_run_exit_code": first.exit_code,
                "resent_examples": examples,
            },
        )
    except Exception as exc:
        settings.log(traceback.format_exc())
        error = _scrub(repr(exc), settings.secrets)
        return _result(cell=cell, tool=runner.name, corpus=corpus, ok=False, error=error)
