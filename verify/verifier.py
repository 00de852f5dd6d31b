"""Compare two trees path by path, like ``rclone check --combined``, by size and by digest.

Categories (``Category``): ``=`` identical, ``+`` only in the source (missing from the
destination), ``-`` only in the destination, ``*`` differs, ``!`` could not be read.

How it runs:

* Both trees are walked at the same time (``fsmove.transfers.walk``). Entries are paired
  by path as they arrive: an entry waits in a dict until its twin from the other side
  shows up, so a pair is compared while the listing goes on and memory holds only the
  entries still unmatched. What is left unmatched once both walks end is ``+`` or ``-``.
* Directories are compared too: a directory on one side only is ``+`` / ``-`` (empty
  directories matter to users), and a file facing a directory is ``*``. Symlinks and
  special files are never compared (fsmove never copies them): they are listed in
  ``Verification.skipped`` and do not change the verdict. What is in a tree is decided
  by ``fsmove.transfers.tree.TreeRules``, the rules the copy applies: the filters (with
  each entry's kind, so a folder is walked unless excluded) and, on the destination,
  the copy job's own temporary files, which are ignored. Any other file is compared,
  whatever its name.
* Tiers (``Tier``): ``QUICK`` compares listings and sizes only; ``FULL`` reads every file
  whose sizes agree on both sides and compares canonical digests
  (``fsmove.verify.digest``); ``SAMPLE`` reads a seeded pseudo-random subset. A file is in
  the sample when ``xxh64(path as UTF-8, seed) / 2**64 < pct / 100``: the choice depends
  on the path and the seed only, never on listing order, so the same seed picks the same
  files again. Files outside the sample are compared by size (``how == LISTING``).
* Files of different sizes are ``*`` without being read: the size settles it.
* Each selected file is read exactly once per side, both sides in parallel, through the
  sessions of the two pools (so the connection caps of the copy apply), by the whole-file
  read copy uses too (``fsmove.transfers.digest_read``). A retryable error (dropped
  connection) is retried on a fresh session as ``policy.READ_RETRIES`` says (twice, at
  once). How many files are compared and how many folders listed at once: ``Limits``.
* ``known_source_digest(entry)`` may return the source digest from a copy's journal
  (the caller checks that it is still valid: same size and mtime); the source is then
  not read and the result says ``how_src == JOURNAL``.
* A listing or read that fails gives ``!`` with a one-line reason naming the side.
  Paths below a directory that one side could not list are ``!`` too (not ``+`` / ``-``:
  we do not know). A refused login or a missing root is not a per-path finding: the run
  fails with the backend's error (``AuthError``, ``ConnectError``, ``NotFoundError``),
  from the root check copy makes too (``fsmove.transfers.roots``).

The values (``Category``, ``PathResult``, ``Verification``...) live in ``results.py``,
the progress events in ``events.py``, the comparison itself in ``comparison.py``; the
public names are re-exported here.
"""


from __future__ import annotations

import secrets
import time
from collections.abc import Callable
from datetime import UTC, datetime

from fsmove.transfers.backend import Entry
from fsmove.transfers.policy import Limits
from fsmove.transfers.pool import SessionPool
from fsmove.transfers.roots import check_root
from fsmove.transfers.together import run_together
from fsmove.transfers.tree import Filters, TreeRules

from .comparison import TreeComparison, in_sample
from .digest import ALGORITHM
from .events import BytesHashed, EntryListed, ListingFinished, PathChecked, ProgressEvent
from .results import (
    Category,
    How,
    Outcome,
    PathResult,
    Side,
    SkippedPath,
    Tier,
    Totals,
    Verification,
    severity_rank,
    verdict_for,
)

__all__ = [
    "BytesHashed",
    "Category",
    "EntryListed",
    "How",
    "ListingFinished",
    "Outcome",
    "PathChecked",
    "PathResult",
    "ProgressEvent",
    "Side",
    "SkippedPath",
    "Tier",
    "Totals",
    "Verification",
    "in_sample",
    "verdict_for",
    "verify_trees",
]


async def verify_trees(
    *,
    src: SessionPool,
    dst: SessionPool,
    tier: Tier,
    sample_pct: float | None = None,
    seed: int | None = None,
    known_source_digest: Callable[[Entry], str | None] | None = None,
    limits: Limits | None = None,
    on_progress: Callable[[ProgressEvent], None] | None = None,
    rules: TreeRules | None = None,
    keep_identical: bool = False,
    src_server_files: tuple[str, ...] = (),
) -> Verification:
    """Compare the trees of two pools' stores and return the verification.

    ``limits.files_verified_at_once`` files are compared at once (each holds one session
    of each pool while it reads) and ``limits.verify_listings_at_once`` folders listed
    at once per side; the pools' own caps bound the connections per side.
    ``sample_pct`` (0 < pct <= 100) is required with ``Tier.SAMPLE`` and refused
    otherwise; ``seed`` defaults to a random one (recorded in the result).
    ``rules`` (the copy's tree rules: filters, and the copy job's temporary names) say
    what is in both trees; by default every regular file and folder is.
    Raises ``AuthError`` / ``ConnectError`` when a side cannot log in at all,
    ``NotFoundError`` / ``PermanentError`` when a root is missing or not a folder.
    """
    limits = limits or Limits()
    concurrency = limits.files_verified_at_once
    if tier is Tier.SAMPLE:
        if sample_pct is None or not 0 < sample_pct <= 100:
            raise ValueError("the sample tier needs a percentage in (0, 100]")
        if seed is None:
            seed = secrets.randbits(32)
    elif sample_pct is not None or seed is not None:
        raise ValueError("sample_pct and seed go with the sample tier only")

    started = datetime.now(UTC)
    t0 = time.monotonic()
    # A refused login or a missing root fails the whole run, before any listing.
    await run_together([check_root(src, "source"), check_root(dst, "destination")])
    run = TreeComparison(
        src=src,
        dst=dst,
        tier=tier,
        sample_pct=sample_pct,
        seed=seed,
        known_source_digest=known_source_digest,
        concurrency=concurrency,
        # Never more folders listed at once than files compared (a caller that
        # lowers the files also lowers the listings, as FTP carries one op a session).
        listings=min(concurrency, limits.verify_listings_at_once),
        on_progress=on_progress,
        # The source never holds a temporary file of the job: only its filters apply.
        src_rules=TreeRules(filters=rules.filters if rules is not None else Filters(),
                            server_files=src_server_files, skip_server_files=True),
        dst_rules=rules if rules is not None else TreeRules(),
        keep_identical=keep_identical,
    )
    listing_seconds = 0.0

    async def listings() -> None:
        nonlocal listing_seconds
        await run_together([run.consume(Side.SOURCE), run.consume(Side.DESTINATION)])
        listing_seconds = time.monotonic() - t0
        for _ in range(concurrency):  # on a failure run_together cancels the workers
            await run.queue.put(None)

    await run_together([listings(), *(run.worker() for _ in range(concurrency))])
    run.finish()

    results = sorted(run.results, key=lambda r: (severity_rank(r.category), r.path))
    return Verification(
        src_display=src.display,
        dst_display=dst.display,
        tier=tier,
        sample_pct=sample_pct,
        seed=seed,
        algorithm=ALGORITHM,
        started=started,
        finished=datetime.now(UTC),
        listing_seconds=listing_seconds,
        results=tuple(results),
        skipped=tuple(sorted(run.skipped, key=lambda s: (s.side.value, s.path))),
        totals=Totals(**run.counts),
    )
