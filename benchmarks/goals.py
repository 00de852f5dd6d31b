"""Issue 18's goals, each checked over one run's results: how many cells meet it, which
miss it. Cells that were not run, or whose figure is missing, are "not measured"."""

from __future__ import annotations

from dataclasses import dataclass

from .cells import (
    CPU_RATIO_GOAL,
    FIRST_BYTE_GOAL_S,
    MILLION_RATE_TOLERANCE,
    MILLION_RSS_LIMIT_MIB,
    RSS_LIMIT_MIB,
)
from .results import RunResult, first_bytes, million_rows, ratios, rss_limit


@dataclass(frozen=True)
class GoalCheck:
    goal: str
    met: tuple[str, ...]
    missed: tuple[str, ...]
    #: cells where the goal applies but no figure exists (failed run, peer missing)
    unmeasured: tuple[str, ...]

    @property
    def verdict(self) -> bool | None:
        """True when measured everywhere it applies and met everywhere; None if unmeasured."""
        if self.missed:
            return False
        if not self.met:
            return None
        return not self.unmeasured


def _check(goal: str, items: list[tuple[str, bool | None]]) -> GoalCheck:
    return GoalCheck(
        goal=goal,
        met=tuple(name for name, ok in items if ok is True),
        missed=tuple(name for name, ok in items if ok is False),
        unmeasured=tuple(name for name, ok in items if ok is None),
    )


def _judged(cell: str, verdict: bool | None, failed: set[str]) -> tuple[str, bool | None]:
    """A cell where fsmove's run failed misses the goal; one without a figure otherwise
    (no peer result) is not measured."""
    return cell, False if cell in failed else verdict


def check_goals(runs: list[RunResult]) -> list[GoalCheck]:
    rows = ratios(runs)
    failed = {r.cell for r in runs if r.tool == "fsmove" and not r.ok}
    checks = [
        _check(
            "throughput >= the goal ratio to the best peer (1.0x; small @60 ms 4x; "
            "large FTP @60 ms 1.3x)",
            [_judged(ra.cell, ra.met if ra.ratio is not None else None, failed) for ra in rows],
        ),
        _check(
            f"client CPU per GB / per 1,000 files <= {CPU_RATIO_GOAL}x the leanest peer",
            [_judged(ra.cell, ra.cpu_met, failed) for ra in rows],
        ),
        _check(
            f"first byte <= {FIRST_BYTE_GOAL_S:g} s",
            [
                _judged(fb.cell, fb.met if fb.seconds is not None else None, failed)
                for fb in first_bytes(runs)
                if fb.tool == "fsmove"
            ],
        ),
        _check(
            f"peak RSS <= {RSS_LIMIT_MIB:.0f} MiB (every cell but the million-file ones)",
            [
                (r.cell, None if r.peak_rss_mib is None else r.peak_rss_mib <= rss_limit(r))
                for r in runs
                if r.tool == "fsmove" and not r.kind.startswith("million")
            ],
        ),
    ]
    million = million_rows(runs)
    fsmove_million = [m for m in million if m.run.tool == "fsmove"]
    if fsmove_million:
        checks += [
            _check(
                "million-file cells: complete, every file hashed equal",
                [(m.run.cell, m.run.ok) for m in fsmove_million],
            ),
            _check(
                f"million-file cells: rate within {MILLION_RATE_TOLERANCE:.0%} of the "
                "100,000-file cell",
                [(m.run.cell, m.rate_met) for m in fsmove_million],
            ),
            _check(
                f"million-file cells: peak RSS <= {MILLION_RSS_LIMIT_MIB:.0f} MiB",
                [(m.run.cell, m.rss_met) for m in fsmove_million],
            ),
        ]
    resumes = [r for r in runs if r.kind == "million-resume" and r.tool == "fsmove"]
    if resumes:
        checks.append(
            _check(
                "million-file cells: resume after a kill at 50 % re-sends <= one block per "
                "file in flight",
                [
                    (r.cell, (r.tree_resume.met if r.ok else False) if r.tree_resume else None)
                    for r in resumes
                ],
            )
        )
    return checks
