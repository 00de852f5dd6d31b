"""One file being copied: its state (``FileTransfer``), and the rule that makes a retry
safe (``transfers/together.py``'s ``run_together``).

A big file moves in several segments at once, each a reader task (the source) feeding a
writer (the destination). When one segment fails, the others must not live on: an
orphaned writer would keep writing its old range into the temporary file after the
retry reopened (and truncated) it — and even after the rename, through its open handle.
So, as in s3transfer's coordinator, one object owns every task of an attempt:

* ``run_together`` runs the segments; the first failure cancels the others and *waits
  for every one of them to end* (a writer ends only once its backend wrote its last
  byte, see ``Session.write``) before the error is raised. Only then does the engine
  reopen the file for a retry.
* ``FileTransfer`` holds everything the engine knows about one file of the plan (as
  s3transfer's per-transfer future): what was listed, where its bytes go, whether a
  partial copy may wait there, how far any attempt got (the retry count resets only
  when an attempt got further), whether it is settled, and how many segment reads of
  the current attempt still run: the read that finishes last re-checks that the source
  did not change while it was read (size and mtime; ``--checksum`` re-reads it whole
  before the rename), whatever the file's size.
"""

from __future__ import annotations

from ..backend import Entry, SourceChangedError, TransientError

__all__ = ["DestinationChangedError", "FileTransfer", "SourceChangedError"]


class DestinationChangedError(TransientError):
    """The temporary file is not what this attempt wrote (another writer, a store that
    lost data): restart the file from its first byte (retryable)."""


class FileTransfer:
    """One file of the plan and the state of its copy, across attempts."""

    __slots__ = (
        "_reads_left",
        "checked_blocks",
        "entry",
        "furthest_sent",
        "partial_at_destination",
        "settled",
        "target",
    )

    def __init__(self, entry: Entry, *, target: str, partial_at_destination: bool) -> None:
        #: What the source listed (listed again after the source changed mid-copy).
        self.entry = entry
        #: Where the bytes go: this job's temporary name, or the final path on a store
        #: that cannot rename.
        self.target = target
        #: The target is a temporary file that may hold a partial copy (found by the
        #: survey, or left by a failed attempt): a stream destination resumes it.
        self.partial_at_destination = partial_at_destination
        #: The furthest byte any attempt sent: a failed attempt that got further than
        #: every one before resets the retry count (``RetryPolicy.next_attempt``).
        self.furthest_sent = 0
        #: Copied or given up on by this run (the rest of the plan is left to copy).
        self.settled = False
        #: Blocks of the target this run wrote (acknowledged, or sent on a stream) or
        #: read back and found as the journal says: a retry in this run keeps them
        #: without reading them back (``resume.py``). Blocks an earlier run left are
        #: read back once. (A retry after dropped connections that read back all it
        #: kept would move every block twice, and might never finish on a link that
        #: drops every few seconds.)
        self.checked_blocks: set[int] = set()
        self._reads_left = 0

    @property
    def path(self) -> str:
        return self.entry.path

    def begin_attempt(self, *, reads: int) -> None:
        """A new attempt reads the file in ``reads`` segments."""
        self._reads_left = reads

    def read_finished(self) -> bool:
        """Record that one segment read every byte of its range; True for the last one:
        its reader then checks the source is unchanged (the whole file was read)."""
        self._reads_left -= 1
        return self._reads_left == 0
