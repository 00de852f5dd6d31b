"""The retry policy and the limits: every "try again?" and every "how many at once?".

Two small frozen values that copy, verify and the session pool read, so each decision
is made in one place (s3transfer's ``TransferConfig`` holds every bound; restic's retry
backend holds its back-off):

* ``RetryPolicy``: how many failures in a row are retried, and how long to wait before
  each retry (exponential back-off from ``first_delay``, doubling, capped at
  ``max_delay``). The caller counts the failures; ``next_attempt`` resets the count when
  an attempt got further than any before (a long file over a link that drops every few
  minutes keeps going all night, while a file that fails at once every time is given up
  after ``retries`` retries).
* ``Limits``: how many of each thing run at once (files in flight, sessions per side,
  streams, pieces and bytes in a pipe, segments per file, folders made at once,
  listings at once, files verified at once).

The named policies below are the ones fsmove uses today; their values are the
behaviour users know (``--retries 5``, 1 s doubling to 30 s).
"""

from __future__ import annotations

import asyncio
from collections.abc import Mapping
from dataclasses import dataclass, fields
from types import MappingProxyType
from typing import Literal

MiB = 1024 * 1024


async def pause_before_retry(delay: float) -> None:
    """Wait ``delay`` seconds before trying again, unless this task is being cancelled:
    then raise at once. A library can swallow a cancellation (``asyncio.wait_for``
    before Python 3.12 returns its inner result or error when the cancel lands as that
    ends; asyncssh's connect uses it): the refused connection that came instead was
    taken as a reason to back off, and a failing run waited out a 30 s backoff before
    it could stop (about one run in ten against a closed port, session 32)."""
    task = asyncio.current_task()
    if task is not None and task.cancelling():
        raise asyncio.CancelledError
    await asyncio.sleep(delay)


@dataclass(frozen=True, slots=True)
class RetryPolicy:
    #: Failed attempts in a row that are retried; one more failure gives up.
    retries: int = 5
    #: Wait before the first retry (seconds); each later retry waits twice as long...
    first_delay: float = 1.0
    #: ...but never longer than this.
    max_delay: float = 30.0

    def __post_init__(self) -> None:
        if self.retries < 0:
            raise ValueError("retries must be 0 or more")
        if self.first_delay < 0 or self.max_delay < 0:
            raise ValueError("retry delays must be 0 or more")
        # A first delay above the cap is not refused: the cap wins, from the first retry
        # (``--retry-delay 60`` waits 30 s, as the engine always did).

    @property
    def attempts(self) -> int:
        """Attempts in all when every one fails: the first and its retries."""
        return self.retries + 1

    def delay(self, retry: int) -> float:
        """Seconds to wait before the ``retry``-th retry (1 for the first)."""
        if retry < 1:
            raise ValueError("retries are counted from 1")
        if self.first_delay == 0:
            return 0.0
        # No float overflow however long a run goes on: past the cap, the cap.
        if retry > 64:
            return self.max_delay
        return min(self.first_delay * 2 ** (retry - 1), self.max_delay)

    def gives_up(self, retry: int) -> bool:
        """Whether the ``retry``-th retry is one too many (the failure is final)."""
        return retry > self.retries

    @staticmethod
    def next_attempt(retry: int, *, progressed: bool) -> int:
        """The retry number after a failure: ``retry + 1``, or 1 again when the failed
        attempt got further than any before it (the count of failures in a row restarts,
        and so does the back-off)."""
        return 1 if progressed else retry + 1


#: One attempt, no retry.
NO_RETRIES = RetryPolicy(retries=0, first_delay=0.0, max_delay=0.0)
#: A file copy: ``--retries`` (5) and ``--retry-delay`` (1 s), doubling up to 30 s.
FILE_RETRIES = RetryPolicy(retries=5, first_delay=1.0, max_delay=30.0)
#: A whole-file read by verify that failed on a connection (dropped, timed out): read
#: again at once on a fresh session, three attempts in all.
READ_RETRIES = RetryPolicy(retries=2, first_delay=0.0, max_delay=0.0)
#: A server refused a new connection as "too many" (FTP 421) and none of ours is open:
#: wait 0.5, 1, 2, 4, 8 s before each new try, then give up with that refusal.
TOO_MANY_SESSIONS_RETRIES = RetryPolicy(retries=5, first_delay=0.5, max_delay=8.0)


#: Sessions per side when the user chose none (``--src-connections`` /
#: ``--dst-connections``); the store may suggest or impose fewer (``SessionPool``).
#: FTP(S) 32 (one transfer per session), SFTP 8 (requests are pipelined on one
#: session), local 16.
DEFAULT_SESSIONS: Mapping[str, int] = MappingProxyType(
    {"ftp": 32, "ftps": 32, "sftp": 8, "file": 16}
)


@dataclass(frozen=True, slots=True)
class Limits:
    """Every bound on what runs at once, built once per command (defaults: today's)."""

    #: Files copied at once (``--workers``): each small file holds its own size at most,
    #: and the small files in flight together at most ``small_bytes_at_once``. 512, not
    #: 128: over a long link each small file waits several round trips, and where a
    #: session carries many requests (SFTP) only more files in flight fill it: sshd ->
    #: sshd behind the 60 ms relay, 2,000 files of 16 KiB, 7.6-7.7 s with 128, 5.4-5.7 s
    #: with 256, 4.9 s with 512 (benchmarks/README.md). FTP sides stay bound by their
    #: sessions (one transfer each).
    files_at_once: int = 512
    #: Bytes the small files (under ``CopyOptions.stream_threshold``) in flight may hold
    #: together (``budget.ByteBudget``): 512 photos of 900 KB must not hold 450 MB.
    small_bytes_at_once: int = 96 * MiB
    #: Files of at least ``stream_threshold`` bytes (and segments of big files) copied
    #: at once. Each holds up to ``bytes_per_pipe`` in flight, so this bounds memory.
    streams_at_once: int = 16
    #: Segments of one big file copied at once, where both sides allow it.
    segments_per_file: int = 4
    #: Between a segment's reader and its writer: at most this many pieces wait...
    pieces_per_pipe: int = 8
    #: ...and no new piece is read once this many bytes wait (pieces differ in size).
    bytes_per_pipe: int = 4 * MiB
    #: Destination folders created at once.
    folders_made_at_once: int = 8
    #: Folders listed at once per side by a copy (each is a few round trips on FTP).
    listings_at_once: int = 16
    #: Files compared at once by verify (each holds one session of each side).
    files_verified_at_once: int = 8
    #: Folders listed at once per side by verify.
    verify_listings_at_once: int = 8
    #: Sessions open at once on each side; None: the scheme's ``DEFAULT_SESSIONS``,
    #: which ``session_count.py`` may resize from the store's measured round trip.
    src_sessions: int | None = None
    dst_sessions: int | None = None

    def __post_init__(self) -> None:
        for f in fields(self):
            value = getattr(self, f.name)
            if value is not None and value < 1:
                raise ValueError(f"{f.name} must be at least 1")

    @property
    def big_files_at_once(self) -> int:
        """Big files (segmented) copied at once: a quarter of the streams, so thousands
        of small files keep flowing beside them."""
        return max(1, min(self.files_at_once, self.streams_at_once) // 4)

    def session_cap(self, side: Literal["src", "dst"], scheme: str) -> int:
        """Sessions for ``side`` of a store of ``scheme``: the chosen cap, or the
        scheme's default."""
        chosen = self.src_sessions if side == "src" else self.dst_sessions
        return chosen if chosen is not None else DEFAULT_SESSIONS[scheme]

    def session_cap_chosen(self, side: Literal["src", "dst"]) -> bool:
        """Whether the user set ``side``'s cap (else ``session_count.py`` may resize
        it: ``SessionPool(auto_cap=True)``)."""
        return (self.src_sessions if side == "src" else self.dst_sessions) is not None
