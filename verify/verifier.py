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
  sessions of the two pools (so the connection caps of the copy apply). A retryable
  error (dropped connection) is retried on a fresh session, at most twice.
* ``known_source_digest(entry)`` may return the source digest from a copy's journal
  (the caller checks that it is still valid: same size and mtime); the source is then
  not read and the result says ``how_src == JOURNAL``.
* A listing or read that fails gives ``!`` with a one-line reason naming the side.
  Paths below a directory that one side could not list are ``!`` too (not ``+`` / ``-``:
  we do not know). A refused login or a missing root is not a per-path finding: the run
  fails with the backend's error (``AuthError``, ``ConnectError``, ``NotFoundError``).

The values (``Category``, ``PathResult``, ``Verification``...) and ``exit_code_for`` live
in ``results.py`` and are re-exported here.
"""

from __future__ import annotations

import asyncio
import secrets
import time
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime

import xxhash

from fsmove.transfers.backend import (
    AuthError,
    BackendError,
    Entry,
    EntryKind,
    NotFoundError,
    PermanentError,
    parent_of,
)
from fsmove.transfers.policy import READ_RETRIES, Limits
from fsmove.transfers.pool import SessionPool
from fsmove.transfers.tree import TreeRules
from fsmove.transfers.walk import WalkIssue, walk

from .digest import ALGORITHM, BlockHasher, combine
from .results import (
    Category,
    How,
    PathResult,
    Side,
    SkippedPath,
    Tier,
    Totals,
    Verification,
    exit_code_for,
    severity_rank,
    verdict_for,
)

__all__ = [
    "BytesHashed",
    "Category",
    "EntryListed",
    "How",
    "ListingFinished",
    "PathChecked",
    "PathResult",
    "ProgressEvent",
    "Side",
    "SkippedPath",
    "Tier",
    "Totals",
    "Verification",
    "exit_code_for",
    "in_sample",
    "verdict_for",
    "verify_trees",
]

# ---------------------------------------------------------------------------------------
# Progress events (the verifier never prints).
# ---------------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class EntryListed:
    side: Side
    path: str
    kind: EntryKind
    size: int


@dataclass(frozen=True, slots=True)
class ListingFinished:
    side: Side
    #: Files and directories this side listed (after exclusions).
    entries: int


@dataclass(frozen=True, slots=True)
class BytesHashed:
    side: Side
    #: Negative when a failed read is retried: its bytes will be read again.
    nbytes: int


@dataclass(frozen=True, slots=True)
class PathChecked:
    path: str
    category: Category


ProgressEvent = EntryListed | ListingFinished | BytesHashed | PathChecked


def in_sample(path: str, *, seed: int, pct: float) -> bool:
    """Whether ``path`` belongs to the ``pct`` % sample drawn with ``seed``."""
    if pct >= 100:
        return True
    h = xxhash.xxh64_intdigest(path.encode("utf-8"), seed=seed & 0xFFFFFFFFFFFFFFFF)
    return h / 2**64 < pct / 100


# ---------------------------------------------------------------------------------------
# The run.
# ---------------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class _Digest:
    digest: str
    size: int


@dataclass(frozen=True, slots=True)
class _Failed:
    reason: str


def _one_line(text: str) -> str:
    return " ".join(text.split())


class _Run:
    def __init__(
        self,
        *,
        src: SessionPool,
        dst: SessionPool,
        tier: Tier,
        sample_pct: float | None,
        seed: int | None,
        known_source_digest: Callable[[Entry], str | None] | None,
        concurrency: int,
        listings: int,
        on_progress: Callable[[ProgressEvent], None] | None,
        src_rules: TreeRules,
        dst_rules: TreeRules,
        keep_identical: bool,
    ) -> None:
        self.pools = {Side.SOURCE: src, Side.DESTINATION: dst}
        self.tier = tier
        self.sample_pct = sample_pct
        self.seed = seed
        self.known_source_digest = known_source_digest
        self.concurrency = concurrency
        self.listings = listings
        self.on_progress = on_progress
        self.rules = {Side.SOURCE: src_rules, Side.DESTINATION: dst_rules}
        self.keep_identical = keep_identical
        #: Entries waiting for their twin from the other side.
        self.unmatched: dict[str, tuple[Side, Entry]] = {}
        #: Directories' results, kept apart so a failed listing can override them.
        self.dir_results: dict[str, PathResult] = {}
        #: Directories each side could not list.
        self.unlisted: dict[Side, dict[str, str]] = {Side.SOURCE: {}, Side.DESTINATION: {}}
        self.results: list[PathResult] = []
        self.skipped: list[SkippedPath] = []
        self.counts: dict[str, int] = dict.fromkeys(Totals.__dataclass_fields__, 0)
        self.queue: asyncio.Queue[tuple[Entry, Entry] | None] = asyncio.Queue(
            maxsize=concurrency * 4
        )

    # -- events and bookkeeping ---------------------------------------------------------

    def emit(self, event: ProgressEvent) -> None:
        if self.on_progress is not None:
            self.on_progress(event)

    def record(self, result: PathResult) -> None:
        """Count and keep a result; directories wait for ``finish`` (a failed listing
        of the directory, reported later, replaces them)."""
        if result.kind is EntryKind.DIR:
            self.dir_results[result.path] = result
            return
        self.settle(result)

    def settle(self, result: PathResult) -> None:
        self._count(result)
        if self.keep_identical or result.category is not Category.IDENTICAL:
            self.results.append(result)
        self.emit(PathChecked(path=result.path, category=result.category))

    def _count(self, result: PathResult) -> None:
        key = {
            Category.IDENTICAL: "identical",
            Category.ONLY_SRC: "only_src",
            Category.ONLY_DST: "only_dst",
            Category.DIFFERS: "differs",
            Category.UNREADABLE: "unreadable",
        }[result.category]
        self.counts[key] += 1
        self.counts["dirs" if result.kind is EntryKind.DIR else "files"] += 1

    # -- listing ------------------------------------------------------------------------

    def skip_for(self, side: Side) -> Callable[[Entry], bool]:
        rules = self.rules[side]

        def skip(entry: Entry) -> bool:
            if rules.is_job_temp(entry) or rules.skips(entry):
                return True
            if entry.kind in (EntryKind.LINK, EntryKind.OTHER):
                what = "symlink" if entry.kind is EntryKind.LINK else "special file"
                self.skipped.append(
                    SkippedPath(side=side, path=entry.path, reason=f"{what}: not compared")
                )
                self.counts["skipped"] += 1
                return True
            return False

        return skip

    async def consume(self, side: Side) -> None:
        listed = 0
        async for item in walk(
            self.pools[side], "", skip=self.skip_for(side), concurrency=self.listings
        ):
            if isinstance(item, WalkIssue):
                self.listing_issue(side, item)
                continue
            listed += 1
            self.emit(EntryListed(side=side, path=item.path, kind=item.kind, size=item.size))
            twin = self.unmatched.pop(item.path, None)
            if twin is None:
                self.unmatched[item.path] = (side, item)
                continue
            src, dst = (item, twin[1]) if side is Side.SOURCE else (twin[1], item)
            await self.pair(src, dst)
        self.emit(ListingFinished(side=side, entries=listed))

    def listing_issue(self, side: Side, issue: WalkIssue) -> None:
        if not issue.unreadable:  # a name the walk refused to use
            reason = f"{side.value}: {_one_line(issue.reason)}"
            self.settle(
                PathResult(
                    path=issue.path,
                    kind=EntryKind.FILE,
                    category=Category.UNREADABLE,
                    reason=reason,
                )
            )
            return
        self.unlisted[side][issue.path] = _one_line(issue.reason)
        reason = f"{side.value}: could not list directory: {_one_line(issue.reason)}"
        earlier = self.dir_results.get(issue.path)
        if earlier is not None and earlier.category is Category.UNREADABLE:
            reason = f"{earlier.reason}; {reason}"  # neither side could list it
        self.record(
            PathResult(
                path=issue.path,
                kind=EntryKind.DIR,
                category=Category.UNREADABLE,
                reason=reason,
            )
        )

    # -- comparing ----------------------------------------------------------------------

    def wants_content(self, path: str) -> bool:
        if self.tier is Tier.FULL:
            return True
        if self.tier is Tier.SAMPLE:
            assert self.seed is not None and self.sample_pct is not None
            return in_sample(path, seed=self.seed, pct=self.sample_pct)
        return False

    async def pair(self, src: Entry, dst: Entry) -> None:
        path = src.path
        if src.kind is not dst.kind:
            self.record(
                PathResult(
                    path=path,
                    kind=src.kind,
                    category=Category.DIFFERS,
                    src_size=src.size if src.kind is EntryKind.FILE else None,
                    dst_size=dst.size if dst.kind is EntryKind.FILE else None,
                    reason=f"a {src.kind.value} in the source, a {dst.kind.value} "
                    "in the destination",
                    how_src=How.LISTING,
                    how_dst=How.LISTING,
                )
            )
            return
        if src.kind is EntryKind.DIR:
            if (
                path not in self.unlisted[Side.SOURCE]
                and path not in self.unlisted[Side.DESTINATION]
            ):
                self.record(
                    PathResult(
                        path=path,
                        kind=EntryKind.DIR,
                        category=Category.IDENTICAL,
                        how_src=How.LISTING,
                        how_dst=How.LISTING,
                    )
                )
            return
        if src.size != dst.size:
            self.record(
                PathResult(
                    path=path,
                    kind=EntryKind.FILE,
                    category=Category.DIFFERS,
                    src_size=src.size,
                    dst_size=dst.size,
                    reason=f"size differs: {src.size} bytes in the source, "
                    f"{dst.size} in the destination",
                    how_src=How.LISTING,
                    how_dst=How.LISTING,
                )
            )
            return
        if not self.wants_content(path):
            self.counts["size_only"] += 1
            self.record(
                PathResult(
                    path=path,
                    kind=EntryKind.FILE,
                    category=Category.IDENTICAL,
                    src_size=src.size,
                    dst_size=dst.size,
                    how_src=How.LISTING,
                    how_dst=How.LISTING,
                )
            )
            return
        await self.queue.put((src, dst))

    async def worker(self) -> None:
        while True:
            item = await self.queue.get()
            if item is None:
                return
            await self.compare_content(*item)

    async def compare_content(self, src: Entry, dst: Entry) -> None:
        journal = self.known_source_digest(src) if self.known_source_digest else None
        if journal is not None:
            src_outcome: _Digest | _Failed = _Digest(digest=journal, size=src.size)
            dst_outcome = await self.read_digest(Side.DESTINATION, dst.path)
            how_src = How.JOURNAL
            self.counts["src_from_journal"] += 1
        else:
            src_outcome, dst_outcome = await asyncio.gather(
                self.read_digest(Side.SOURCE, src.path),
                self.read_digest(Side.DESTINATION, dst.path),
            )
            how_src = How.READ
        src_digest = src_outcome.digest if isinstance(src_outcome, _Digest) else None
        dst_digest = dst_outcome.digest if isinstance(dst_outcome, _Digest) else None
        failures = [o.reason for o in (src_outcome, dst_outcome) if isinstance(o, _Failed)]
        if failures:
            category, reason = Category.UNREADABLE, "; ".join(failures)
        else:
            assert isinstance(src_outcome, _Digest) and isinstance(dst_outcome, _Digest)
            self.counts["content_compared"] += 1
            changed = [
                f"{side.value} changed while being read ({o.size} bytes read, {e.size} listed)"
                for side, o, e in (
                    (Side.SOURCE, src_outcome, src),
                    (Side.DESTINATION, dst_outcome, dst),
                )
                if o.size != e.size
            ]
            if src_outcome.digest == dst_outcome.digest:
                category, reason = Category.IDENTICAL, ""
            else:
                category = Category.DIFFERS
                reason = "; ".join(["content differs: the digests do not match", *changed])
        self.record(
            PathResult(
                path=src.path,
                kind=EntryKind.FILE,
                category=category,
                src_size=src.size,
                dst_size=dst.size,
                src_digest=src_digest,
                dst_digest=dst_digest,
                reason=reason,
                how_src=how_src,
                how_dst=How.READ,
            )
        )

    async def read_digest(self, side: Side, path: str) -> _Digest | _Failed:
        pool = self.pools[side]
        suffix = "src" if side is Side.SOURCE else "dst"
        for attempt in range(1, READ_RETRIES.attempts + 1):
            hasher = BlockHasher()
            size = 0
            try:
                async with pool.session() as session:
                    async for piece in session.read(path):
                        hasher.update(piece)
                        size += len(piece)
                        self.emit(BytesHashed(side=side, nbytes=len(piece)))
            except AuthError:
                raise
            except BackendError as exc:
                if exc.retryable and not READ_RETRIES.gives_up(attempt):
                    if size:  # take back the progress of the failed attempt
                        self.emit(BytesHashed(side=side, nbytes=-size))
                    continue
                return _Failed(reason=f"{side.value}: {_one_line(str(exc))}")
            hasher.finish()
            self.counts[f"files_read_{suffix}"] += 1
            self.counts[f"bytes_read_{suffix}"] += size
            return _Digest(digest=combine(hasher.digests, size), size=size)
        raise AssertionError("unreachable")  # the loop always returns

    # -- the end ------------------------------------------------------------------------

    def under_unlisted(self, side: Side, path: str) -> str | None:
        """Why ``side`` could not see ``path``: a directory above it failed to list."""
        unlisted = self.unlisted[side]
        parent = path
        while unlisted and parent:
            parent = parent_of(parent)
            if parent in unlisted:
                return f"{side.value}: could not list {parent or '.'}: {unlisted[parent]}"
        return None

    def finish(self) -> None:
        """Classify what never met its twin, then settle the directories."""
        for path, (side, entry) in sorted(self.unmatched.items()):
            if path in self.unlisted[Side.SOURCE] or path in self.unlisted[Side.DESTINATION]:
                continue  # already reported as a directory that could not be listed
            other = Side.DESTINATION if side is Side.SOURCE else Side.SOURCE
            size = entry.size if entry.kind is EntryKind.FILE else None
            blind = self.under_unlisted(other, path)
            if blind is not None:
                category, reason = Category.UNREADABLE, blind
            elif side is Side.SOURCE:
                category, reason = Category.ONLY_SRC, "missing from the destination"
            else:
                category, reason = Category.ONLY_DST, "not in the source"
            self.dir_results.pop(path, None)
            self.settle(
                PathResult(
                    path=path,
                    kind=entry.kind,
                    category=category,
                    src_size=size if side is Side.SOURCE else None,
                    dst_size=size if side is Side.DESTINATION else None,
                    reason=reason,
                    how_src=How.LISTING if side is Side.SOURCE else None,
                    how_dst=How.LISTING if side is Side.DESTINATION else None,
                )
            )
        self.unmatched.clear()
        for result in self.dir_results.values():
            self.settle(result)
        self.dir_results.clear()


async def _check_roots(src: SessionPool, dst: SessionPool) -> None:
    """Log in on both sides and look at both roots first: a refused login or a missing
    root fails the whole run (it is not a per-path finding)."""

    async def one(pool: SessionPool, side: Side) -> None:
        async with pool.session() as session:
            try:
                root = await session.stat("")
            except NotFoundError:
                raise NotFoundError(
                    f"the {side.value} folder {pool.display} does not exist: check the path"
                ) from None
        if root.kind is not EntryKind.DIR:
            raise PermanentError(f"the {side.value} {pool.display} is not a folder")

    await asyncio.gather(one(src, Side.SOURCE), one(dst, Side.DESTINATION))


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
    await _check_roots(src, dst)
    run = _Run(
        src=src,
        dst=dst,
        tier=tier,
        sample_pct=sample_pct,
        seed=seed,
        known_source_digest=known_source_digest,
        concurrency=concurrency,
        listings=min(concurrency, limits.verify_listings_at_once),
        on_progress=on_progress,
        # The source never holds a temporary file of the job: only its filters apply.
        src_rules=TreeRules(filters=rules.filters) if rules is not None else TreeRules(),
        dst_rules=rules if rules is not None else TreeRules(),
        keep_identical=keep_identical,
    )
    listing_seconds = 0.0

    async def listings() -> None:
        nonlocal listing_seconds
        await asyncio.gather(run.consume(Side.SOURCE), run.consume(Side.DESTINATION))
        listing_seconds = time.monotonic() - t0
        for _ in range(concurrency):  # on failure the task group cancels the workers
            await run.queue.put(None)

    try:
        async with asyncio.TaskGroup() as group:
            group.create_task(listings())
            for _ in range(concurrency):
                group.create_task(run.worker())
    except BaseExceptionGroup as group_error:
        first = group_error.exceptions[0]
        while isinstance(first, BaseExceptionGroup):
            first = first.exceptions[0]
        raise first from None
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
