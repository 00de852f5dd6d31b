"""Result values: one per tool run, and the ratios fsmove is judged on."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field

from .cells import PEERS, RSS_LIMIT_MIB, TARGETS


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
    exit_code: int | None = None
    killed: str | None = None
    verification: str = ""
    error: str = ""
    summary: dict[str, object] | None = None
    resume: ResumeFigures | None = None
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


def _throughput(run: RunResult, metric: str) -> float | None:
    return run.mb_per_s if metric == "MB/s" else run.files_per_s


def ratios(runs: list[RunResult]) -> list[Ratio]:
    """fsmove against the best peer of the same transfer cell, in the cell's metric."""
    out = []
    cells = sorted({r.cell for r in runs if r.kind == "transfer"}, key=_cell_order(runs))
    for cell in cells:
        in_cell = [r for r in runs if r.cell == cell]
        first = in_cell[0]
        metric = "MB/s" if first.corpus == "large" else "files/s"
        mine = next((r for r in in_cell if r.tool == "fsmove"), None)
        peers = [
            (r.tool, v)
            for r in in_cell
            if r.tool in PEERS and (v := _throughput(r, metric)) is not None
        ]
        best = max(peers, key=lambda p: p[1]) if peers else (None, None)
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
                target=TARGETS.get((first.corpus, first.rtt_ms)),
            )
        )
    return out


def _cell_order(runs: list[RunResult]) -> Callable[[str], int]:
    order: dict[str, int] = {}
    for r in runs:
        order.setdefault(r.cell, len(order))
    return order.__getitem__


def rss_check(runs: list[RunResult]) -> tuple[float | None, bool | None]:
    """fsmove's worst peak RSS over all cells, and whether it is within the limit."""
    peaks = [r.peak_rss_mib for r in runs if r.tool == "fsmove" and r.peak_rss_mib is not None]
    if not peaks:
        return None, None
    worst = max(peaks)
    return worst, worst <= RSS_LIMIT_MIB
