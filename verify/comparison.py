"""One verify's comparison: pair the two listings by path as they arrive, compare each
pair (kind, size, then content where the tier wants it), and settle what never met its
twin. ``verifier.verify_trees`` runs it; the module doc there says how it behaves."""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from dataclasses import dataclass

import xxhash

from fsmove.transfers.backend import AuthError, BackendError, Entry, EntryKind, parent_of
from fsmove.transfers.digest_read import FileDigest, read_file_digest
from fsmove.transfers.policy import READ_RETRIES
from fsmove.transfers.pool import SessionPool
from fsmove.transfers.together import run_together
from fsmove.transfers.tree import TreeRules, is_probe_leftover
from fsmove.transfers.walk import WalkIssue, walk

from .events import BytesHashed, EntryListed, ListingFinished, PathChecked, ProgressEvent
from .results import Category, How, PathResult, Side, SkippedPath, Tier, Totals

__all__ = ["TreeComparison", "in_sample"]


def in_sample(path: str, *, seed: int, pct: float) -> bool:
    """Whether ``path`` belongs to the ``pct`` % sample drawn with ``seed``."""
    if pct >= 100:
        return True
    h = xxhash.xxh64_intdigest(path.encode("utf-8"), seed=seed & 0xFFFFFFFFFFFFFFFF)
    return h / 2**64 < pct / 100


@dataclass(frozen=True, slots=True)
class _Failed:
    reason: str


def _one_line(text: str) -> str:
    return " ".join(text.split())


def _by_listing(src: Entry, dst: Entry, category: Category, reason: str = "") -> PathResult:
    """The result of a pair the two listings settle (sizes of files only)."""
    return PathResult(
        path=src.path,
        kind=src.kind,
        category=category,
        src_size=src.size if src.kind is EntryKind.FILE else None,
        dst_size=dst.size if dst.kind is EntryKind.FILE else None,
        reason=reason,
        how_src=How.LISTING,
        how_dst=How.LISTING,
    )


class TreeComparison:
    """The state of one verify: entries waiting for their twin, results, counts, and the
    queue of same-size files whose contents are to be compared."""

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
            self.pools[side], "", skip=self.skip_for(side), concurrency=self.listings,
            retry=READ_RETRIES,
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
            self.settle(PathResult(path=issue.path, kind=EntryKind.FILE,
                                   category=Category.UNREADABLE, reason=reason))
            return
        self.unlisted[side][issue.path] = _one_line(issue.reason)
        reason = f"{side.value}: could not list directory: {_one_line(issue.reason)}"
        earlier = self.dir_results.get(issue.path)
        if earlier is not None and earlier.category is Category.UNREADABLE:
            reason = f"{earlier.reason}; {reason}"  # neither side could list it
        self.record(PathResult(path=issue.path, kind=EntryKind.DIR,
                               category=Category.UNREADABLE, reason=reason))

    # -- comparing ----------------------------------------------------------------------

    def wants_content(self, path: str) -> bool:
        if self.tier is Tier.FULL:
            return True
        if self.tier is Tier.SAMPLE:
            assert self.seed is not None and self.sample_pct is not None
            return in_sample(path, seed=self.seed, pct=self.sample_pct)
        return False

    async def pair(self, src: Entry, dst: Entry) -> None:
        """Compare a path both sides listed: what the listings settle is recorded now,
        a same-size file the tier wants read waits in the queue for a worker."""
        path = src.path
        if src.kind is not dst.kind:
            reason = f"a {src.kind.value} in the source, a {dst.kind.value} in the destination"
            self.record(_by_listing(src, dst, Category.DIFFERS, reason))
            return
        if src.kind is EntryKind.DIR:
            if (
                path not in self.unlisted[Side.SOURCE]
                and path not in self.unlisted[Side.DESTINATION]
            ):
                self.record(_by_listing(src, dst, Category.IDENTICAL))
            return
        if src.size != dst.size:
            reason = (f"size differs: {src.size} bytes in the source, "
                      f"{dst.size} in the destination")
            self.record(_by_listing(src, dst, Category.DIFFERS, reason))
            return
        if not self.wants_content(path):
            self.counts["size_only"] += 1
            self.record(_by_listing(src, dst, Category.IDENTICAL))
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
            src_outcome: FileDigest | _Failed = FileDigest(digest=journal, size=src.size)
            dst_outcome = await self.read_digest(Side.DESTINATION, dst.path)
            how_src = How.JOURNAL
            self.counts["src_from_journal"] += 1
        else:
            src_outcome, dst_outcome = await run_together([
                self.read_digest(Side.SOURCE, src.path),
                self.read_digest(Side.DESTINATION, dst.path),
            ])
            how_src = How.READ
        src_digest = src_outcome.digest if isinstance(src_outcome, FileDigest) else None
        dst_digest = dst_outcome.digest if isinstance(dst_outcome, FileDigest) else None
        failures = [o.reason for o in (src_outcome, dst_outcome) if isinstance(o, _Failed)]
        if failures:
            category, reason = Category.UNREADABLE, "; ".join(failures)
        else:
            assert isinstance(src_outcome, FileDigest) and isinstance(dst_outcome, FileDigest)
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

    async def read_digest(self, side: Side, path: str) -> FileDigest | _Failed:
        def on_bytes(n: int) -> None:
            self.emit(BytesHashed(side=side, nbytes=n))

        try:
            got = await read_file_digest(
                self.pools[side], path, retries=READ_RETRIES, on_bytes=on_bytes
            )
        except AuthError:
            raise
        except BackendError as exc:
            return _Failed(reason=f"{side.value}: {_one_line(str(exc))}")
        suffix = "src" if side is Side.SOURCE else "dst"
        self.counts[f"files_read_{suffix}"] += 1
        self.counts[f"bytes_read_{suffix}"] += got.size
        return got

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
            elif entry.kind is EntryKind.FILE and is_probe_leftover(path):
                continue  # a killed copy's probe scratch file: fsmove's (tree.py)
            elif self.rules[Side.DESTINATION].is_server_file(entry):
                continue  # the server's own (not_the_tree.py), the source has none
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
