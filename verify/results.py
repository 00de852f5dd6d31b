"""The values a verification produces: categories, per-path results, totals, the verdict.

Plain frozen values with no I/O, shared by the verifier (``verifier.py``) that builds
them and the renderings (``report.py``, ``html_report.py``) that print them. A
verification ends in an ``Outcome``; the exit code each outcome gets is the CLI's to
say, in ``fsmove.exitcodes`` (the one list of exit codes).
"""

from __future__ import annotations

import enum
from dataclasses import dataclass
from datetime import datetime

from fsmove.transfers.backend import EntryKind


class Category(enum.Enum):
    IDENTICAL = "="
    ONLY_SRC = "+"
    ONLY_DST = "-"
    DIFFERS = "*"
    UNREADABLE = "!"

    @property
    def label(self) -> str:
        return _LABELS[self]


_LABELS = {
    Category.IDENTICAL: "identical",
    Category.ONLY_SRC: "only in source",
    Category.ONLY_DST: "only in destination",
    Category.DIFFERS: "differs",
    Category.UNREADABLE: "could not be read",
}

#: Problems first: corruption, then missing data, unreadable, extras, then matches.
SEVERITY_ORDER = (
    Category.DIFFERS,
    Category.ONLY_SRC,
    Category.UNREADABLE,
    Category.ONLY_DST,
    Category.IDENTICAL,
)
_RANK = {c: i for i, c in enumerate(SEVERITY_ORDER)}


def severity_rank(category: Category) -> int:
    """Position of ``category`` in ``SEVERITY_ORDER`` (problems first)."""
    return _RANK[category]


class Outcome(enum.Enum):
    """How a verification ended; the value is the verdict's word in the reports."""

    #: Everything compared was identical.
    MATCH = "match"
    #: Some path differs, or is on one side only.
    MISMATCH = "mismatch"
    #: Nothing differs, but some paths could not be read (so not everything is known).
    UNREADABLE = "unreadable"


class Tier(enum.Enum):
    QUICK = "quick"  # listings and sizes
    FULL = "full"  # every file's content
    SAMPLE = "sample"  # a seeded random subset of the files' content


class How(enum.Enum):
    """Where one side's evidence about a path came from."""

    LISTING = "listing"  # name, kind and size from the directory listing
    READ = "read"  # the content was read and digested now
    JOURNAL = "journal"  # the digest came from the copy's journal (still valid)


class Side(enum.Enum):
    SOURCE = "source"
    DESTINATION = "destination"


@dataclass(frozen=True, slots=True)
class PathResult:
    path: str
    #: The source's kind, or the destination's when the path is only there.
    kind: EntryKind
    category: Category
    src_size: int | None = None
    dst_size: int | None = None
    src_digest: str | None = None
    dst_digest: str | None = None
    #: One line; empty for identical paths.
    reason: str = ""
    #: ``None`` when the path is absent on that side.
    how_src: How | None = None
    how_dst: How | None = None


@dataclass(frozen=True, slots=True)
class SkippedPath:
    """A symlink or special file: listed, never compared (fsmove never copies them)."""

    side: Side
    path: str
    reason: str


@dataclass(frozen=True, slots=True)
class Totals:
    identical: int = 0
    only_src: int = 0
    only_dst: int = 0
    differs: int = 0
    unreadable: int = 0
    #: Distinct paths compared, by kind (a path counts once, whatever its category).
    files: int = 0
    dirs: int = 0
    #: Files whose digests were compared (both sides known by READ or JOURNAL).
    content_compared: int = 0
    #: Files with equal sizes that were not read (QUICK tier, or outside the sample).
    size_only: int = 0
    files_read_src: int = 0
    files_read_dst: int = 0
    bytes_read_src: int = 0
    bytes_read_dst: int = 0
    #: Source digests taken from the journal instead of reading the source.
    src_from_journal: int = 0
    skipped: int = 0

    def count(self, category: Category) -> int:
        return {
            Category.IDENTICAL: self.identical,
            Category.ONLY_SRC: self.only_src,
            Category.ONLY_DST: self.only_dst,
            Category.DIFFERS: self.differs,
            Category.UNREADABLE: self.unreadable,
        }[category]

    @property
    def mismatched(self) -> int:
        return self.only_src + self.only_dst + self.differs


@dataclass(frozen=True)
class Verification:
    src_display: str
    dst_display: str
    tier: Tier
    sample_pct: float | None
    seed: int | None
    algorithm: str
    started: datetime
    finished: datetime
    #: Wall time until both listings ended.
    listing_seconds: float
    #: Every non-identical path (and the identical ones too with ``keep_identical``),
    #: problems first (``SEVERITY_ORDER``), then by path.
    results: tuple[PathResult, ...]
    skipped: tuple[SkippedPath, ...]
    totals: Totals

    @property
    def seconds(self) -> float:
        return (self.finished - self.started).total_seconds()

    @property
    def matched(self) -> bool:
        return self.totals.mismatched == 0 and self.totals.unreadable == 0

    @property
    def problems(self) -> tuple[PathResult, ...]:
        return tuple(r for r in self.results if r.category is not Category.IDENTICAL)

    @property
    def outcome(self) -> Outcome:
        """A mismatch wins over an unreadable path: a difference is known for sure."""
        if self.totals.mismatched:
            return Outcome.MISMATCH
        if self.totals.unreadable:
            return Outcome.UNREADABLE
        return Outcome.MATCH


def verdict_for(verification: Verification) -> str:
    """``"match"``, ``"mismatch"`` or ``"unreadable"`` (the words of the outcome)."""
    return verification.outcome.value
