"""What one run did, counted as it goes, and the ``Summary`` event that ends every run."""

from __future__ import annotations

from dataclasses import dataclass, field

from ..backend import Entry
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

    def summary(self, *, status: str, seconds: float, dry_run: bool, to_delete: int,
                stopped: str | None = None, left: list[Entry] | None = None) -> Summary:
        """The run's summary; a dry run counts the files ``--delete`` would remove."""
        left = left or []
        return Summary(
            status=status,
            files_copied=self.files_copied,
            bytes_copied=self.bytes_copied,
            files_skipped=self.files_skipped,
            bytes_skipped=self.bytes_skipped,
            files_failed=len(self.failed),
            files_refused=len(self.refused),
            files_deleted=self.files_deleted if not dry_run else to_delete,
            files_restarted=len(self.restarted),
            bytes_sent=self.bytes_sent,
            bytes_resent=self.bytes_resent,
            seconds=seconds,
            failed=list(self.failed),
            restarted=list(self.restarted),
            refused=list(self.refused),
            dry_run=dry_run,
            stopped=stopped,
            files_left=len(left),
            bytes_left=sum(e.size for e in left),
        )
