"""The benchmark's cells: what is copied, over which route, at which RTT, by whom."""

from __future__ import annotations

import fnmatch
from dataclasses import dataclass, replace

TOOLS = ("fsmove", "rclone", "lftp")
PEERS = ("rclone", "lftp")
TRANSFER_CORPORA = ("small", "large", "real")
ROUTES = ("ftp", "sftp")
RTTS_MS = (0, 60)

#: fsmove's throughput over the best peer's, per (corpus, rtt_ms); no target: reported only
TARGETS: dict[tuple[str, int], float] = {
    ("small", 60): 5.0,
    ("large", 60): 2.0,
    ("small", 0): 1.5,
    ("large", 0): 0.9,
}
RSS_LIMIT_MIB = 200.0


@dataclass(frozen=True)
class Cell:
    id: str
    kind: str  # "transfer" | "scale" | "resume"
    corpus: str
    route: str
    rtt_ms: int
    tools: tuple[str, ...]

    @property
    def metric(self) -> str:
        """What the cell is judged on: files/s for many files, MB/s for big ones."""
        return "MB/s" if self.corpus in ("large", "resume") else "files/s"


def all_cells(*, scale_peers: bool = False) -> list[Cell]:
    cells = [
        Cell(f"{corpus}-{route}-{rtt}ms", "transfer", corpus, route, rtt, TOOLS)
        for rtt in RTTS_MS
        for route in ROUTES
        for corpus in TRANSFER_CORPORA
    ]
    scale_tools = TOOLS if scale_peers else ("fsmove",)
    cells.append(Cell("scale-local-sftp-0ms", "scale", "scale", "local-sftp", 0, scale_tools))
    cells.append(Cell("resume-ftp-sftp-0ms", "resume", "resume", "ftp-sftp", 0, TOOLS))
    return cells


def select(cells: list[Cell], *, patterns: str | None, tools: str | None) -> list[Cell]:
    """Cells whose id matches one of the comma-separated globs, with only the named tools."""
    chosen = cells
    if patterns:
        globs = [p.strip() for p in patterns.split(",") if p.strip()]
        chosen = [c for c in chosen if any(fnmatch.fnmatchcase(c.id, g) for g in globs)]
    if tools:
        wanted = {t.strip() for t in tools.split(",") if t.strip()}
        unknown = wanted - set(TOOLS)
        if unknown:
            raise ValueError(f"unknown tool(s) {sorted(unknown)}: choose among {TOOLS}")
        chosen = [replace(c, tools=tuple(t for t in c.tools if t in wanted)) for c in chosen]
        chosen = [c for c in chosen if c.tools]
    return chosen
