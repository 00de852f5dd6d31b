"""What one run did, counted as it goes, and the ``Summary`` event that ends every run."""

from __future__ import annotations

from dataclasses import dataclass, field

from ..events import Summary


@dataclass
class RunStats:
    files_copied: int = 0
    bytes_copied: int = 0
    files_skipped: int = 0
    bytes_skipped: int = 0
    files_deleted: int = 0
    bytes_sent: int = 0
    bytes_resent: int = 0
    failed: list[tuple[str, str]] = field(default_factory=list)
    restarted: list[tuple[str, str]] = field(default_factory=list)
    refused: list[tuple[str, str]] = field(default_factory=list)
    times_not_kept: list[tuple[str, str]] = field(default_factory=list)
    modes_not_kept: list[tuple[str, str]] = field(default_factory=list)
    notes: list[tuple[str, str]] = field(default_factory=list)

    def summary(self, *, status: str, seconds: float, dry_run: bool, to_delete: int,
                stopped: str | None = None, files_left: int = 0,
                bytes_left: int = 0) -> Summary:
        """The run's summary; a dry run counts the files ``--delete`` would remove;
        ``stopped`` runs say how much is left (``files_left``, ``bytes_left``)."""
        restarted = once_each(self.restarted)
        return Summary(
            status=status,
            files_copied=self.files_copied,
            bytes_copied=self.bytes_copied,
            files_skipped=self.files_skipped,
            bytes_skipped=self.bytes_skipped,
            files_failed=len(self.failed),
            files_refused=len(self.refused),
            files_deleted=self.files_deleted if not dry_run else to_delete,
            files_restarted=len(restarted),
            bytes_sent=self.bytes_sent,
            bytes_resent=self.bytes_resent,
            seconds=seconds,
            failed=list(self.failed),
            restarted=restarted,
            refused=list(self.refused),
            dry_run=dry_run,
            stopped=stopped,
            files_left=files_left if stopped else 0,
            bytes_left=bytes_left if stopped else 0,
            times_not_kept=list(self.times_not_kept),
            modes_not_kept=list(self.modes_not_kept),
            notes=list(self.notes),
        )


@dataclass
class Unsettled:
    """Files decided for copying and neither copied nor given up on yet (counts, not
    entries: a destination that fills up early in a tree of a million files)."""

    files: int = 0
    bytes: int = 0

    def add(self, size: int) -> None:
        self.files += 1
        self.bytes += size

    def settle(self, size: int) -> None:
        self.files -= 1
        self.bytes -= size

    def resize(self, old: int, new: int) -> None:
        """A file's source changed size while it was copied."""
        self.bytes += new - old


def once_each(restarts: list[tuple[str, str]]) -> list[tuple[str, str]]:
    """Each file once, with its last reason and how many times (a log appended to while
    it was copied was restarted 5 times: "restarted: 5 files", the same path 5 times,
    before session 33)."""
    last: dict[str, str] = {}
    count: dict[str, int] = {}
    for path, why in restarts:
        last[path] = why
        count[path] = count.get(path, 0) + 1
    return [(p, why if count[p] == 1 else f"{why} ({count[p]} times)")
            for p, why in last.items()]

