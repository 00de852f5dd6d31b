"""What one copy job was asked to do: the user's choices, and the bounds it runs under.

``CopyOptions`` is the record a command builds once (and the journal keeps, for
``fsmove resume``). The engine never reads its counts directly: it asks for ``limits()``
and ``retry_policy()`` once per job and reads those (``transfers/policy.py``: every
"how many at once?" in one ``Limits``, every "try again?" in one ``RetryPolicy``).
"""

from __future__ import annotations

from dataclasses import dataclass, field, replace

from ..policy import FILE_RETRIES, Limits, RetryPolicy
from ..tree import Filters

MiB = 1024 * 1024
_DEFAULT_LIMITS = Limits()


@dataclass(frozen=True)
class CopyOptions:
    #: Files copied at once (``--workers``): ``Limits.files_at_once`` of the job.
    workers: int = _DEFAULT_LIMITS.files_at_once
    #: Files of at least this size hold a stream slot (``Limits.streams_at_once``):
    #: small files only ever hold their own size.
    stream_threshold: int = 1024 * 1024
    checksum: bool = False
    #: ``--trust-partial``: a resume keeps what an interrupted run left after checking
    #: only its last kept block at the destination (the size and time of the source as
    #: always), not every kept block on both sides (``resume.py``): for huge files over
    #: a slow link, where reading the kept part twice costs hours.
    trust_partial: bool = False
    preserve_mtime: bool = True
    #: Give copied files the source's permission bits (``--no-perms``: 0644 at most).
    keep_perms: bool = True
    dry_run: bool = False
    delete: bool = False
    #: ``--delete`` may empty the destination when the source holds no file (a bucket
    #: ``migrate`` made, its copy alone); never set from the command line.
    may_empty: bool = False
    filters: Filters = field(default_factory=Filters)
    #: Each side's server's own files (``not_the_tree.server_files``; set from the
    #: endpoints for each run, never recorded with the job).
    src_server_files: tuple[str, ...] = ()
    dst_server_files: tuple[str, ...] = ()
    #: Both sides on one server (``distinct_sides.same_server``; set for each run): the
    #: roots are compared as the server resolves them (``nested_roots.py``).
    same_server: bool = False
    bwlimit: float | None = None
    #: ``--retries`` and ``--retry-delay``: the job's ``RetryPolicy`` (doubling up to
    #: ``retry_delay_max``).
    retries: int = FILE_RETRIES.retries
    retry_delay: float = FILE_RETRIES.first_delay
    retry_delay_max: float = FILE_RETRIES.max_delay
    #: Files at least this big are split into segments where both sides allow it.
    segment_threshold: int = 64 * MiB
    segment_size: int = 64 * MiB
    #: Every other bound (streams, pieces and bytes per pipe, segments per file, folders
    #: made and listed at once); ``files_at_once`` here is replaced by ``workers``.
    bounds: Limits = _DEFAULT_LIMITS

    def limits(self) -> Limits:
        """The job's bounds, with ``--workers`` as its files at once."""
        return replace(self.bounds, files_at_once=max(1, self.workers))

    def retry_policy(self) -> RetryPolicy:
        """The job's per-file retry policy."""
        # A first delay over the cap waits the cap, as every later one does.
        return RetryPolicy(retries=self.retries,
                           first_delay=min(self.retry_delay, self.retry_delay_max),
                           max_delay=self.retry_delay_max)
