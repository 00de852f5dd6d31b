"""Result values: one per tool run, and the ratios and goals fsmove is judged on."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field

from .cells import (
    BYTE_CORPORA,
    CPU_RATIO_GOAL,
    FIRST_BYTE_GOAL_S,
    MILLION_RATE_TOLERANCE,
    MILLION_RSS_LIMIT_MIB,
    PEERS,
    RSS_LIMIT_MIB,
    ratio_goal,
)


@dataclass(frozen=True)
class ResumeFigures:
    size: int
    #: bytes that reached the destination (counted by a relay in front of it) per run
    sent_first: int
    sent_second: int
    killed_at_fraction: float
    first_run_killed: bool

    @property
    def resent(self) -> int:
        """What crossed the link beyond one copy of the file (protocol overhead included)."""
        return max(0, self.sent_first + self.sent_second - self.size)


@dataclass(frozen=True)
class TreeResumeFigures:
    """A many-file copy killed when half the files had arrived, then run again.

    A file is *re-sent* when it was complete at its final name after the kill and the
    second run wrote it again: it was replaced (another inode: a temporary file renamed
    over it) or rewritten in place (same inode, another ctime or size)."""

    files: int
    #: files at their final name with the corpus's size when the first run was killed
    complete_at_kill: int
    #: any other regular file then (temporary names, partial files)
    partial_at_kill: int
    killed_at_fraction: float
    replaced: int
    rewritten: int
    resent_bytes: int
    #: the most files the tool has in flight at once (the goal: re-sent <= this)
    in_flight_bound: int | None
    first_run_killed: bool

    @property
    def resent_files(self) -> int:
        return self.replaced + self.rewritten

    @property
    def met(self) -> bool | None:
        """Re-sent at most one block per file in flight (these files are under one block)."""
        if self.in_flight_bound is None:
            return None
        return self.resent_files <= self.in_flight_bound


@dataclass(frozen=True)
class RunResult:
    cell: str
    kind: str
    corpus: str
    route: str
    rtt_ms: int
    tool: str
    ok: bool
    files: int
    bytes: int
    wall_s: float | None = None
    cpu_user_s: float | None = None
    cpu_sys_s: float | None = None
    peak_rss_mib: float | None = None
    peak_tree_rss_mib: float | None = None
    first_byte_s: float | None = None
    #: how long the first-byte poll waited between two looks when it saw the byte
    first_byte_poll_s: float | None = None
    exit_code: int | None = None
    killed: str | None = None
    verification: str = ""
    error: str = ""
    summary: dict[str, object] | None = None
    resume: ResumeFigures | None = None
    tree_resume: TreeResumeFigures | None = None
    extra: dict[str, object] = field(default_factory=dict)

    @property
    def files_per_s(self) -> float | None:
        return self.files / self.wall_s if self.ok and self.wall_s else None

    @property
    def mb_per_s(self) -> float | None:
        return self.bytes / 1e6 / self.wall_s if self.ok and self.wall_s else None

    @property
    def cpu_s(self) -> float | None:
        if self.cpu_user_s is None or self.cpu_sys_s is None:
            return None
        return self.cpu_user_s + self.cpu_sys_s

    @property
    def cpu_per_gb(self) -> float | None:
        """Client CPU seconds per 10^9 bytes copied (successful runs only)."""
        cpu = self.cpu_s
        if not self.ok or cpu is None or not self.bytes:
            return None
        return cpu / (self.bytes / 1e9)

    @property
    def cpu_per_kfiles(self) -> float | None:
        """Client CPU seconds per 1,000 files copied (successful runs only)."""
        cpu = self.cpu_s
        if not self.ok or cpu is None or not self.files:
            return None
        return cpu / (self.files / 1000)

    @property
    def cpu_unit(self) -> str:
        """The CPU figure this run is judged on: per GB for big files, per 1,000 files else."""
        return "s/GB" if self.corpus in BYTE_CORPORA else "s/1k files"

    @property
    def cpu_per_unit(self) -> float | None:
        return self.cpu_per_gb if self.cpu_unit == "s/GB" else self.cpu_per_kfiles


@dataclass(frozen=True)
class Ratio:
    cell: str
    corpus: str
    route: str
    rtt_ms: int
    metric: str
    fsmove: float | None
    best_peer: str | None
    best_peer_value: float | None
    target: float | None
    #: client CPU per GB (large files) or per 1,000 files (the other corpora)
    cpu_unit: str = "s/1k files"
    fsmove_cpu: float | None = None
    leanest_peer: str | None = None
    leanest_peer_cpu: float | None = None
    cpu_target: float = CPU_RATIO_GOAL

    @property
    def ratio(self) -> float | None:
        if self.fsmove is None or not self.best_peer_value:
            return None
        return self.fsmove / self.best_peer_value

    @property
    def met(self) -> bool | None:
        if self.target is None:
            return None
        r = self.ratio
        return r is not None and r >= self.target

    @property
    def cpu_ratio(self) -> float | None:
        """fsmove's CPU over the leanest peer's: lower is better."""
        if self.fsmove_cpu is None or not self.leanest_peer_cpu:
            return None
        return self.fsmove_cpu / self.leanest_peer_cpu

    @property
    def cpu_met(self) -> bool | None:
        r = self.cpu_ratio
        return None if r is None else r <= self.cpu_target


def _throughput(run: RunResult, metric: str) -> float | None:
    return run.mb_per_s if metric == "MB/s" else run.files_per_s


def ratios(runs: list[RunResult]) -> list[Ratio]:
    """fsmove against the best peer of the same transfer cell, in the cell's metric, and
    fsmove's CPU against the leanest peer's (both only over successful runs)."""
    out = []
    cells = sorted({r.cell for r in runs if r.kind == "transfer"}, key=_cell_order(runs))
    for cell in cells:
        in_cell = [r for r in runs if r.cell == cell]
        first = in_cell[0]
        metric = "MB/s" if first.corpus in BYTE_CORPORA else "files/s"
        mine = next((r for r in in_cell if r.tool == "fsmove"), None)
        peers = [
            (r.tool, v)
            for r in in_cell
            if r.tool in PEERS and (v := _throughput(r, metric)) is not None
        ]
        best = max(peers, key=lambda p: p[1]) if peers else (None, None)
        peer_cpu = [
            (r.tool, c) for r in in_cell if r.tool in PEERS and (c := r.cpu_per_unit) is not None
        ]
        leanest = min(peer_cpu, key=lambda p: p[1]) if peer_cpu else (None, None)
        out.append(
            Ratio(
                cell=cell,
                corpus=first.corpus,
                route=first.route,
                rtt_ms=first.rtt_ms,
                metric=metric,
                fsmove=_throughput(mine, metric) if mine else None,
                best_peer=best[0],
                best_peer_value=best[1],
                target=ratio_goal(corpus=first.corpus, route=first.route, rtt_ms=first.rtt_ms),
                cpu_unit=first.cpu_unit,
                fsmove_cpu=mine.cpu_per_unit if mine else None,
                leanest_peer=leanest[0],
                leanest_peer_cpu=leanest[1],
            )
        )
    return out


def _cell_order(runs: list[RunResult]) -> Callable[[str], int]:
    order: dict[str, int] = {}
    for r in runs:
        order.setdefault(r.cell, len(order))
    return order.__getitem__


def rss_limit(run: RunResult) -> float:
    return MILLION_RSS_LIMIT_MIB if run.kind.startswith("million") else RSS_LIMIT_MIB


def rss_check(runs: list[RunResult]) -> tuple[float | None, bool | None]:
    """fsmove's worst peak RSS over the ordinary cells, and whether it is within the limit
    (the million-file cells have their own limit: ``million_rows``)."""
    peaks = [
        r.peak_rss_mib
        for r in runs
        if r.tool == "fsmove" and r.peak_rss_mib is not None and not r.kind.startswith("million")
    ]
    if not peaks:
        return None, None
    worst = max(peaks)
    return worst, worst <= RSS_LIMIT_MIB


@dataclass(frozen=True)
class FirstByte:
    """One tool's time to the first destination byte in one cell, against the goal."""

    cell: str
    tool: str
    seconds: float | None
    poll_s: float | None
    goal_s: float = FIRST_BYTE_GOAL_S

    @property
    def met(self) -> bool | None:
        """Judged for fsmove only; the peers' figures are there to compare."""
        if self.tool != "fsmove":
            return None
        return self.seconds is not None and self.seconds <= self.goal_s


def first_bytes(runs: list[RunResult]) -> list[FirstByte]:
    """Every run that polled for its first byte, in run order."""
    return [
        FirstByte(cell=r.cell, tool=r.tool, seconds=r.first_byte_s, poll_s=r.first_byte_poll_s)
        for r in runs
        if r.kind in ("transfer", "scale", "million")
    ]


@dataclass(frozen=True)
class MillionRow:
    """A 1,000,000-file run against issue 18's goals, with its 100,000-file reference."""

    run: RunResult
    #: the same tool's runs of the 100,000-file cell of the same route, in the same
    #: results: the harness runs it before the million-file cell and again after it
    #: (``benchmarks/harness.py``), and the reference is their mean, so that a shared
    #: machine whose speed drifts over the half hour between them moves both sides alike
    references: tuple[RunResult, ...] = ()
    rss_limit_mib: float = MILLION_RSS_LIMIT_MIB
    rate_tolerance: float = MILLION_RATE_TOLERANCE

    @property
    def reference_rate(self) -> float | None:
        """Files/s of the 100,000-file runs, their mean."""
        rates = [r.files_per_s for r in self.references if r.files_per_s]
        return sum(rates) / len(rates) if rates else None

    @property
    def reference_cpu(self) -> float | None:
        cpus = [r.cpu_per_kfiles for r in self.references if r.cpu_per_kfiles]
        return sum(cpus) / len(cpus) if cpus else None

    @property
    def rate_ratio(self) -> float | None:
        mine = self.run.files_per_s
        ref = self.reference_rate
        if mine is None or not ref:
            return None
        return mine / ref

    @property
    def cpu_ratio(self) -> float | None:
        """CPU per 1,000 files against the 100,000-file runs': shown beside the rate,
        not judged (it moves with the machine's load too, less than the rate)."""
        mine = self.run.cpu_per_kfiles
        ref = self.reference_cpu
        if mine is None or not ref:
            return None
        return mine / ref

    @property
    def rate_met(self) -> bool | None:
        r = self.rate_ratio
        return None if r is None else r >= 1.0 - self.rate_tolerance

    @property
    def rss_met(self) -> bool | None:
        if self.run.peak_rss_mib is None:
            return None
        return self.run.peak_rss_mib <= self.rss_limit_mib


def million_rows(runs: list[RunResult]) -> list[MillionRow]:
    """Each plain million-file run, with the 100,000-file runs of its route and tool."""
    rows = []
    for r in runs:
        if r.kind != "million":
            continue
        refs = tuple(
            s for s in runs if s.kind == "scale" and s.route == r.route and s.tool == r.tool
        )
        rows.append(MillionRow(run=r, references=refs))
    return rows
