"""The benchmark's cells: what is copied, over which route, at which RTT, by whom, and the
goals fsmove is judged on (issue 18; the RSS limit of the ordinary cells is issue 6's)."""

from __future__ import annotations

import fnmatch
from dataclasses import dataclass, replace

TOOLS = ("fsmove", "rclone", "lftp")
PEERS = ("rclone", "lftp")
TRANSFER_CORPORA = ("small", "large", "real", "medium", "deep", "flat")
#: transfer corpora run only when ``--cells`` names them (the peers take minutes on them)
NAMED_ONLY_CORPORA = ("deep", "flat")
#: corpora judged in MB/s and CPU per GB (the others in files/s and CPU per 1,000 files)
BYTE_CORPORA = ("large", "medium", "resume")
ROUTES = ("ftp", "sftp")
RTTS_MS = (0, 60)
#: the routes of the many-file cells: 100,000 files (``scale-*``) and 1,000,000 (``million-*``)
MANY_FILE_ROUTES = ("local-sftp", "sftp-ftp")

#: fsmove's throughput over the best peer's: at least this in every transfer cell ...
RATIO_GOAL = 1.0
#: ... and more where a WAN lets parallelism show (keys: (corpus, route or "*", rtt_ms))
_RATIO_GOALS: dict[tuple[str, str, int], float] = {
    ("small", "*", 60): 4.0,
    ("large", "ftp", 60): 1.3,
}
#: fsmove's client CPU (per GB or per 1,000 files) over the leanest peer's: at most this
CPU_RATIO_GOAL = 1.3
#: seconds from the start of a client to the first destination file holding data
FIRST_BYTE_GOAL_S = 1.0
#: fsmove's peak RSS in every cell but the million-file ones (issue 6) ...
RSS_LIMIT_MIB = 200.0
#: ... and in the 1,000,000-file cells (issue 18)
MILLION_RSS_LIMIT_MIB = 300.0
#: the million-file rate may be at most this much below the 100,000-file rate (same route)
MILLION_RATE_TOLERANCE = 0.10
#: the million resume cells kill the first run when this share of the files has arrived
MILLION_KILL_FRACTION = 0.5


def ratio_goal(*, corpus: str, route: str, rtt_ms: int) -> float:
    """The lowest ratio to the best peer that meets issue 18's goal for this cell."""
    for key in ((corpus, route, rtt_ms), (corpus, "*", rtt_ms)):
        if key in _RATIO_GOALS:
            return _RATIO_GOALS[key]
    return RATIO_GOAL


@dataclass(frozen=True)
class Cell:
    id: str
    kind: str  # "transfer" | "scale" | "resume" | "million" | "million-resume"
    corpus: str
    route: str
    rtt_ms: int
    tools: tuple[str, ...]
    #: run by a plain ``python -m benchmarks.run``; the others only when ``--cells`` names them
    default: bool = True

    @property
    def metric(self) -> str:
        """What the cell is judged on: files/s for many files, MB/s for big ones."""
        return "MB/s" if self.corpus in BYTE_CORPORA else "files/s"

    @property
    def polls_first_byte(self) -> bool:
        """Whether the time to the first destination byte is measured in this cell."""
        return self.kind in ("transfer", "scale", "million")


def all_cells(*, scale_peers: bool = False) -> list[Cell]:
    cells = [
        Cell(f"{corpus}-{route}-{rtt}ms", "transfer", corpus, route, rtt, TOOLS,
             default=corpus not in NAMED_ONLY_CORPORA)
        for rtt in RTTS_MS
        for route in ROUTES
        for corpus in TRANSFER_CORPORA
    ]
    many_tools = TOOLS if scale_peers else ("fsmove",)
    cells.append(Cell("scale-local-sftp-0ms", "scale", "scale", "local-sftp", 0, many_tools))
    cells.append(Cell("resume-ftp-sftp-0ms", "resume", "resume", "ftp-sftp", 0, TOOLS))
    # The 1,000,000-file cells (and the 100,000-file SFTP -> FTP cell their rate is compared
    # with) take an hour or more: only when selected, e.g. --cells 'scale-*,million-*'.
    cells.append(
        Cell("scale-sftp-ftp-0ms", "scale", "scale", "sftp-ftp", 0, many_tools, default=False)
    )
    for route in MANY_FILE_ROUTES:
        cells.append(
            Cell(f"million-{route}-0ms", "million", "million", route, 0, many_tools, False)
        )
    for route in MANY_FILE_ROUTES:
        cells.append(
            Cell(
                f"million-resume-{route}-0ms",
                "million-resume",
                "million",
                route,
                0,
                many_tools,
                False,
            )
        )
    return cells


def select(cells: list[Cell], *, patterns: str | None, tools: str | None) -> list[Cell]:
    """Cells whose id matches one of the comma-separated globs, with only the named tools.

    Without globs, the default cells (not the million-file ones)."""
    chosen = cells
    if patterns:
        globs = [p.strip() for p in patterns.split(",") if p.strip()]
        chosen = [c for c in chosen if any(fnmatch.fnmatchcase(c.id, g) for g in globs)]
    else:
        chosen = [c for c in chosen if c.default]
    if tools:
        wanted = {t.strip() for t in tools.split(",") if t.strip()}
        unknown = wanted - set(TOOLS)
        if unknown:
            raise ValueError(f"unknown tool(s) {sorted(unknown)}: choose among {TOOLS}")
        chosen = [replace(c, tools=tuple(t for t in c.tools if t in wanted)) for c in chosen]
        chosen = [c for c in chosen if c.tools]
    return chosen


def reference_after(cell: Cell, cells: list[Cell]) -> Cell | None:
    """The 100,000-file cell to run again after million-file ``cell``: the one of its
    route, when it is selected and ran before it (``harness.main`` runs it again;
    ``results.MillionRow`` takes the mean of both runs as the rate's reference)."""
    if cell.kind != "million":
        return None
    before = cells[: cells.index(cell)]
    return next((c for c in before if c.kind == "scale" and c.route == cell.route), None)
