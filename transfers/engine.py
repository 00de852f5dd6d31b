"""The copy engine: plan, then stream every file from source to destination.

How a file moves
----------------
* It is written under a temporary name (``tree.TempNames``) and renamed into place only
  once every byte is acknowledged and its digest is known, so nothing at a final name
  ever looks complete when it is not. (A store that cannot rename gets the final name
  directly and only the journal says when it is complete.)
* Bytes are hashed while they stream (``verify.digest.BlockHasher``: XXH3-128 per 4 MiB
  block). Block digests go to the journal as blocks complete: ``acked=1`` once the
  destination acknowledged the block (SFTP replies, local pwrite), ``acked=0`` while
  only sent (FTP acknowledges nothing before its final 226).
* A big file is cut into segments moved in parallel when the source can read ranges
  and the destination can write ranges in parallel (local, SFTP). Otherwise it is one
  stream (FTP destinations: FACTS.md shows parallel ranged STOR corrupts or serialises).
  The segments of one attempt live and die together (``transfer.run_together``): a
  retry reopens the file only once every writer of the failed attempt has returned.
* Once every byte of a file was read (whatever its size), the source is stat'ed again:
  a change of size, mtime or kind fails the attempt before the rename
  (``SourceChangedError``), and the file starts over; ``--checksum`` also re-reads it.

Resume (after a kill, a crash, a dropped network, or a retry)
-------------------------------------------------------------
The journal row must match the source's size and mtime, else the file restarts and the
summary says why. Then, by destination kind:

* parallel-write destinations: every acked block is kept; the missing blocks are read
  and sent again. The last acked block is first read back and re-digested; a mismatch
  restarts the file.
* stream destinations (FTP): the partial file is contiguous; its size says what
  arrived. With ``OffsetWrites.ANY`` (REST+STOR seeks) the transfer restarts at the
  last block boundary at or below that size whose blocks are all in the journal,
  after re-digesting the block before it at the destination. With ``APPEND`` it
  appends exactly at the partial size, after comparing the tail of the partial block
  on both sides. With ``NONE`` the file restarts.

Memory is bounded by the pieces in flight (a small queue per segment), never by the
size or number of files.
"""

from __future__ import annotations

import asyncio
import contextlib
import time
from collections import deque
from collections.abc import AsyncIterator, Awaitable, Callable
from dataclasses import dataclass, field

import xxhash

from fsmove.verify.digest import ALGORITHM, BLOCK_SIZE, BlockHasher, block_count, combine

from .backend import (
    BackendError,
    Capabilities,
    Entry,
    EntryKind,
    NoSpaceError,
    NotFoundError,
    OffsetWrites,
    PermanentError,
    parent_of,
    placed_mode,
)
from .events import (
    BytesMoved,
    Event,
    FileDeleted,
    FileDone,
    FileFailed,
    FilePlanned,
    FileRestarted,
    FileRetry,
    FileStarted,
    PathRefused,
    Planned,
    Subscriber,
    Summary,
)
from .journal import Journal
from .plan import deletions
from .pool import SessionPool
from .ratelimit import RateLimiter
from .transfer import (
    DestinationChangedError,
    FileTransfer,
    SourceChangedError,
    run_together,
)
from .tree import Filters, TempNames, TreeRules, same_mtime
from .walk import WalkIssue, walk

MiB = 1024 * 1024


class DestinationFolderError(PermanentError):
    """A destination folder cannot be made (not writable...): the copy stops."""


@dataclass(frozen=True)
class CopyOptions:
    workers: int = 128
    #: Streams of files of at least ``stream_threshold`` bytes (and segments of big
    #: files) at once. Each holds up to a few MiB in flight, so this bounds memory:
    #: small files only ever hold their own size.
    max_streams: int = 16
    stream_threshold: int = 1024 * 1024
    checksum: bool = False
    preserve_mtime: bool = True
    #: Give copied files the source's permission bits (``--no-perms``: 0644 at most).
    keep_perms: bool = True
    dry_run: bool = False
    delete: bool = False
    filters: Filters = field(default_factory=Filters)
    bwlimit: float | None = None
    retries: int = 5
    retry_delay: float = 1.0
    retry_delay_max: float = 30.0
    #: Files at least this big are split into segments where both sides allow it.
    segment_threshold: int = 64 * MiB
    segment_size: int = 64 * MiB
    max_segments_per_file: int = 4
    #: Queue between a segment's reader and its writer: at most this many pieces, and
    #: no new piece once this many bytes wait (pieces differ in size per backend).
    pipe_depth: int = 8
    pipe_bytes: int = 4 * MiB
    #: Folders listed at once per side (each listing is a few round trips on FTP).
    list_concurrency: int = 16


@dataclass
class _Stats:
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


@dataclass
class _Segment:
    start: int
    end: int
    #: Bytes before this were acknowledged by an earlier run: read (to hash), not sent.
    send_from: int = -1

    def __post_init__(self) -> None:
        if self.send_from < 0:
            self.send_from = self.start


class CopyEngine:
    def __init__(
        self,
        *,
        src: SessionPool,
        dst: SessionPool,
        journal: Journal | None,
        options: CopyOptions,
        subscribers: list[Subscriber] | None = None,
        temp_names: TempNames | None = None,
    ) -> None:
        self.src = src
        self.dst = dst
        self.journal = journal
        self.opt = options
        if temp_names is None:
            # A job's temporary names are keyed by its journal's secret; without a
            # journal (tests, dry runs) the run has its own, so it never takes another
            # job's partial file for its own.
            key = journal.temp_key() if journal is not None else TempNames.new_key()
            temp_names = TempNames(key)
        self.temps = temp_names
        #: What is in each tree: the source never holds anything of ours; the
        #: destination holds this job's temporary files.
        self._src_rules = TreeRules(filters=options.filters)
        self._dst_rules = TreeRules(filters=options.filters, temps=temp_names)
        self._subs = list(subscribers or [])
        self._limiter = RateLimiter(options.bwlimit) if options.bwlimit else None
        self._stats = _Stats()
        self._src_caps = Capabilities()
        self._dst_caps = Capabilities()
        self._streams = asyncio.Semaphore(max(1, options.max_streams))
        self._progress_stamp = 0.0
        self._refused_paths: set[str] = set()
        #: Temporary files that may hold a partial copy: found by the walk, or left by a
        #: failed attempt of this run (a stream destination resumes them from their size).
        self._partial_temps: set[str] = set()
        #: Destination folders still to make, and the tasks making them (``_ensure_dir``).
        self._missing_dirs: set[str] = set()
        self._dir_tasks: dict[str, asyncio.Future[None]] = {}
        #: Set by the first "no space / over quota" reply: no new file starts after it,
        #: and the summary says how much is left (every such file stays resumable).
        self._full: NoSpaceError | None = None
        #: Files this run copied or gave up on (the rest of the plan is left to copy).
        self._settled: set[str] = set()
        #: The furthest offset sent per file in flight: a retry resets its count only when
        #: the last attempt got further than any before (so a server that always stalls
        #: at the same byte still exhausts --retries).
        self._moved: dict[str, int] = {}

    # -- events --------------------------------------------------------------------------
    def emit(self, event: Event) -> None:
        for sub in self._subs:
            sub(event)

    # -- top level -----------------------------------------------------------------------
    async def run(self) -> Summary:
        started = time.monotonic()
        try:
            return await self._run(started)
        except BaseException as exc:
            # Interrupted (Ctrl-C, SIGTERM) or stopped by an error: the event stream
            # still ends with a summary of what this run did (``--json`` readers).
            interrupted = isinstance(exc, asyncio.CancelledError | KeyboardInterrupt)
            self._summary(started, status="interrupted" if interrupted else "failed",
                          to_delete=0)
            raise
        finally:
            await self._stop_dir_tasks()

    async def _stop_dir_tasks(self) -> None:
        """Folder tasks outlive the waiter that stopped the copy: end them before the
        pools close (else they fail later on a closed pool, unseen)."""
        tasks = [t for t in self._dir_tasks.values() if not t.done()]
        for t in tasks:
            t.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)

    async def _run(self, started: float) -> Summary:
        src_files, src_dirs, dst_files, dst_dirs, dst_temps = await self._walk_both()
        to_copy, skipped, to_delete = await self._plan(src_files, dst_files)
        needed_dirs = set(src_dirs) | {parent_of(e.path) for e in to_copy}
        self._missing_dirs = {d for d in needed_dirs if d and d not in dst_dirs}
        self.emit(
            Planned(
                files_total=len(src_files),
                bytes_total=sum(e.size for e in src_files.values()),
                files_to_copy=len(to_copy),
                bytes_to_copy=sum(e.size for e in to_copy),
                files_skipped=len(skipped),
                bytes_skipped=sum(e.size for e in skipped),
                dirs_to_create=len(self._missing_dirs),
                files_to_delete=len(to_delete),
            )
        )
        for e in skipped:
            self._stats.files_skipped += 1
            self._stats.bytes_skipped += e.size
        if self.opt.dry_run:
            for e in to_copy:
                self.emit(FilePlanned(path=e.path, size=e.size, action="copy"))
            for e in skipped:
                self.emit(FilePlanned(path=e.path, size=e.size, action="skip"))
            for e in to_delete:
                self.emit(FileDeleted(path=e.path, dry_run=True, size=e.size))
            return self._summary(started, status="dry-run", to_delete=len(to_delete))

        if self.journal is not None:
            self.journal.plan(
                [(e.path, e.size, e.mtime, "pending") for e in to_copy]
                + [(e.path, e.size, e.mtime, "skipped") for e in skipped]
            )
        wanted_temps = {self.temps.for_path(e.path) for e in to_copy}
        await self._remove_stale_temps([t for t in dst_temps if t not in wanted_temps])
        self._partial_temps = {t for t in dst_temps if t in wanted_temps}
        # Folders are made as their first file needs them (overlapping the copy), then
        # the ones no file needed (empty folders).
        await self._copy_all(to_copy)
        if self._full is None:
            try:
                await self._make_dirs(sorted(self._missing_dirs))
            except NoSpaceError as exc:
                self._full = exc
        if self._full is not None:
            left = [e for e in to_copy if e.path not in self._settled]
            return self._summary(started, status="partial", to_delete=len(to_delete),
                                 stopped="destination-full", left=left)
        if self.opt.delete and not self._stats.failed:
            await self._delete(to_delete)
        status = "partial" if self._stats.failed else "ok"
        return self._summary(started, status=status, to_delete=len(to_delete))

    def _summary(self, started: float, *, status: str, to_delete: int,
                 stopped: str | None = None, left: list[Entry] | None = None) -> Summary:
        s = self._stats
        left = left or []
        summary = Summary(
            status=status,
            files_copied=s.files_copied,
            bytes_copied=s.bytes_copied,
            files_skipped=s.files_skipped,
            bytes_skipped=s.bytes_skipped,
            files_failed=len(s.failed),
            files_refused=len(s.refused),
            files_deleted=s.files_deleted if not self.opt.dry_run else to_delete,
            files_restarted=len(s.restarted),
            bytes_sent=s.bytes_sent,
            bytes_resent=s.bytes_resent,
            seconds=time.monotonic() - started,
            failed=list(s.failed),
            restarted=list(s.restarted),
            refused=list(s.refused),
            dry_run=self.opt.dry_run,
            stopped=stopped,
            files_left=len(left),
            bytes_left=sum(e.size for e in left),
        )
        self.emit(summary)
        return summary

    async def _check_src_root(self) -> None:
        async with self.src.session() as s:
            try:
                root = await s.stat("")
            except NotFoundError:
                raise NotFoundError(
                    f"source folder {self.src.display} does not exist", path=""
                ) from None
        if root.kind is not EntryKind.DIR:
            raise PermanentError(f"source {self.src.display} is not a folder", path="")

    async def _check_dst_root(self) -> bool:
        """True when the destination root was created now."""
        if self.opt.dry_run:
            return False
        async with self.dst.session() as s:
            try:
                root = await s.stat("")
            except NotFoundError:
                try:
                    await s.mkdir("")
                except BackendError as exc:
                    raise type(exc)(
                        f"cannot create the destination folder {self.dst.display}: {exc}",
                        path="",
                    ) from None
                return True
        if root.kind is not EntryKind.DIR:
            raise PermanentError(f"destination {self.dst.display} is not a folder", path="")
        return False

    async def _walk_both(
        self,
    ) -> tuple[dict[str, Entry], list[str], dict[str, Entry], set[str], list[str]]:
        """Both sides' capabilities, roots and listings."""
        async def src_walk() -> tuple[dict[str, Entry], list[str]]:
            files: dict[str, Entry] = {}
            dirs: list[str] = []
            async for item in walk(
                self.src, skip=self._src_rules.skips, concurrency=self.opt.list_concurrency
            ):
                if isinstance(item, WalkIssue) and item.unreadable:
                    # A folder that could not be listed: its files are not copied, so
                    # the run is partial (exit 3), as verify counts it unreadable.
                    reason = f"could not list this folder: {item.reason}"
                    self._refused_paths.add(item.path)
                    self._stats.failed.append((item.path, reason))
                    self.emit(FileFailed(path=item.path, reason=reason))
                elif isinstance(item, WalkIssue) and item.special:
                    # Symlinks and special files are never copied: reported, not failed.
                    self._stats.refused.append((item.path, item.reason))
                    self._refused_paths.add(item.path)
                    self.emit(PathRefused(path=item.path, reason=item.reason))
                elif isinstance(item, WalkIssue):
                    # A file whose name cannot be used safely is data not copied: the
                    # run is partial (exit 3) so nobody mistakes it for a complete copy.
                    reason = f"not copied: {item.reason}"
                    self._stats.refused.append((item.path, item.reason))
                    self._stats.failed.append((item.path, reason))
                    self.emit(PathRefused(path=item.path, reason=item.reason))
                elif item.kind is EntryKind.DIR:
                    dirs.append(item.path)
                else:
                    files[item.path] = item
            return files, dirs

        async def dst_walk() -> tuple[dict[str, Entry], set[str], list[str]]:
            files: dict[str, Entry] = {}
            dirs: set[str] = set()
            temps: list[str] = []
            try:
                async with self.dst.session() as s:
                    await s.stat("")
            except NotFoundError:
                return files, dirs, temps
            async for item in walk(
                self.dst, skip=self._dst_rules.skips, concurrency=self.opt.list_concurrency
            ):
                if isinstance(item, WalkIssue):
                    continue
                if item.kind is EntryKind.DIR:
                    dirs.add(item.path)
                elif self._dst_rules.is_job_temp(item):
                    temps.append(item.path)
                else:
                    files[item.path] = item
            return files, dirs, temps

        # Each side is a chain (capabilities, root, listing) and the two chains run at
        # once: the destination's write probe (dozens of round trips on FTP) overlaps
        # the source's listing. If either fails, the other is cancelled. Nothing is
        # written at the destination before the source proved readable.
        source_ok = asyncio.Event()

        async def src_side() -> tuple[dict[str, Entry], list[str]]:
            self._src_caps = await self.src.capabilities()
            await self._check_src_root()
            source_ok.set()
            return await src_walk()

        async def dst_side() -> tuple[dict[str, Entry], set[str], list[str]]:
            await source_ok.wait()  # not even a probe file on a wrong source password
            self._dst_caps = await self.dst.capabilities()
            if await self._check_dst_root():
                # The probe could not test writes in a folder that did not exist: now
                # it can (else mtimes and resume would stay off for the first run).
                self._dst_caps = await self.dst.refresh_capabilities()
            return await dst_walk()

        src_listing, dst_listing = await run_together([src_side(), dst_side()])
        src_files, src_dirs = src_listing  # type: ignore[misc]
        dst_files, dst_dirs, dst_temps = dst_listing  # type: ignore[misc]
        return src_files, src_dirs, dst_files, dst_dirs, dst_temps

    async def _plan(
        self, src_files: dict[str, Entry], dst_files: dict[str, Entry]
    ) -> tuple[list[Entry], list[Entry], list[Entry]]:
        tolerance = max(self._src_caps.mtime_resolution, self._dst_caps.mtime_resolution, 1.0)
        to_copy: list[Entry] = []
        skipped: list[Entry] = []
        maybe_same: list[tuple[Entry, Entry]] = []
        for path, e in src_files.items():
            d = dst_files.get(path)
            if d is None or d.kind is not EntryKind.FILE or d.size != e.size:
                to_copy.append(e)
                continue
            if self.opt.checksum:
                maybe_same.append((e, d))
                continue
            if self.opt.preserve_mtime and same_mtime(e.mtime, d.mtime, tolerance=tolerance):
                skipped.append(e)
                continue
            rec = self.journal.get(path) if self.journal is not None else None
            if (
                rec is not None
                and rec.state in ("done", "skipped")
                and rec.size == e.size
                and same_mtime(rec.mtime, e.mtime, tolerance=tolerance)
            ):
                skipped.append(e)  # copied by an earlier run; the destination keeps its size
            else:
                to_copy.append(e)
        if maybe_same:
            same = await self._compare_digests(maybe_same)
            for (e, _d), equal in zip(maybe_same, same, strict=True):
                (skipped if equal else to_copy).append(e)
        # Never delete at or below what the source has in a form fsmove does not copy (a
        # symlink) or could not read (plan.py).
        to_delete = deletions(dst_files, src_files, self._refused_paths)
        return to_copy, skipped, to_delete

    async def _compare_digests(self, pairs: list[tuple[Entry, Entry]]) -> list[bool]:
        sem = asyncio.Semaphore(max(1, self.opt.workers))

        async def digest(pool: SessionPool, path: str) -> str:
            hasher = BlockHasher()
            size = 0
            async with pool.session() as s:
                async for piece in s.read(path):
                    hasher.update(piece)
                    size += len(piece)
            hasher.finish()
            return combine(hasher.digests, size)

        async def one(e: Entry, d: Entry) -> bool:
            async with sem:
                try:
                    a, b = await asyncio.gather(digest(self.src, e.path), digest(self.dst, d.path))
                except BackendError:
                    return False
                return a == b

        return list(await asyncio.gather(*(one(e, d) for e, d in pairs)))

    async def _make_dirs(self, dirs: list[str]) -> None:
        sem = asyncio.Semaphore(8)

        async def one(d: str) -> None:
            async with sem:
                await self._ensure_dir(d)

        await asyncio.gather(*(one(d) for d in dirs))

    async def _ensure_dir(self, d: str) -> None:
        """Make destination folder ``d`` (parents first, each folder once, one command
        each) if the walk found it missing. A refusal for good (not writable...) stops
        the whole copy with that message: nothing below that folder can be copied."""
        if d not in self._missing_dirs:
            return
        task = self._dir_tasks.get(d)
        if task is None:
            task = asyncio.ensure_future(self._make_dir(d))
            # A waiter cancelled before the task ends (the copy stopping) detaches from
            # it; its failure is still taken here, never left "never retrieved".
            task.add_done_callback(_retrieve)
            self._dir_tasks[d] = task
        try:
            await asyncio.shield(task)
        except BackendError:
            if self._dir_tasks.get(d) is task:
                del self._dir_tasks[d]  # a retry (of any file below) tries again
            raise

    async def _make_dir(self, d: str) -> None:
        await self._ensure_dir(parent_of(d))
        try:
            async with self.dst.session() as s:
                await s.mkdir(d)
        except BackendError as exc:
            if exc.retryable or isinstance(exc, NoSpaceError):
                raise
            raise DestinationFolderError(str(exc), path=d) from None
        self._missing_dirs.discard(d)

    async def _remove_stale_temps(self, temps: list[str]) -> None:
        for t in temps:
            with contextlib.suppress(BackendError):
                async with self.dst.session() as s:
                    await s.remove(t)

    async def _delete(self, entries: list[Entry]) -> None:
        for e in entries:
            try:
                async with self.dst.session() as s:
                    await s.remove(e.path)
            except BackendError as exc:
                self._stats.failed.append((e.path, f"could not delete: {exc}"))
                self.emit(FileFailed(path=e.path, reason=f"could not delete: {exc}"))
                continue
            self._stats.files_deleted += 1
            if self.journal is not None:
                self.journal.remove_file(e.path)
            self.emit(FileDeleted(path=e.path))

    # -- scheduling ----------------------------------------------------------------------
    async def _copy_all(self, items: list[Entry]) -> None:
        """Big files first (largest first) but never more than a quarter of the streams
        on big files at once, so thousands of small files keep flowing beside them."""
        big = deque(sorted((e for e in items if e.size >= self.opt.segment_threshold),
                           key=lambda e: -e.size))
        small = deque(e for e in items if e.size < self.opt.segment_threshold)
        big_limit = max(1, min(self.opt.workers, self.opt.max_streams) // 4)
        big_running = 0
        lock = asyncio.Lock()

        async def next_item() -> tuple[Entry, bool] | None:
            nonlocal big_running
            async with lock:
                if self._full is not None:
                    return None  # the destination is full: start nothing more
                if big and (big_running < big_limit or not small):
                    big_running += 1
                    return big.popleft(), True
                if small:
                    return small.popleft(), False
                return None

        async def worker() -> None:
            nonlocal big_running
            while True:
                picked = await next_item()
                if picked is None:
                    return
                entry, is_big = picked
                try:
                    if entry.size >= self.opt.stream_threshold:
                        async with self._streams:
                            await self._copy_with_retries(entry)
                    else:
                        await self._copy_with_retries(entry)
                finally:
                    if is_big:
                        async with lock:
                            big_running -= 1

        tasks = [asyncio.create_task(worker()) for _ in range(max(1, self.opt.workers))]
        try:
            await asyncio.gather(*tasks)
        finally:
            for t in tasks:
                t.cancel()
            await asyncio.gather(*tasks, return_exceptions=True)
            if self.journal is not None:
                self._journal_progress(force=True)
                self.journal.flush()

    async def _copy_with_retries(self, entry: Entry) -> None:
        """Copy one file, retrying transient failures with exponential back-off.

        ``--retries`` counts failed attempts in a row that got no further into the file
        than any before: an attempt that did resets the count and the delay, so a long
        file over a link that drops every few minutes keeps going all night, while a file
        that fails at once every time is given up after ``retries`` attempts."""
        attempt = 0
        while True:
            before = self._moved.get(entry.path, 0)
            try:
                await self._copy_file(entry)
                self._moved.pop(entry.path, None)
                return
            except (SourceChangedError, DestinationChangedError) as exc:
                # Every reader and writer of the attempt has ended (transfer.py): the
                # next attempt starts the file over from its first byte.
                reason = str(exc)
                entry = await self._restat_source(entry)
                if entry.kind is not EntryKind.FILE:
                    # Swapped for a link (or a folder) while it was copied: never
                    # followed, never copied, whatever it now points at.
                    self._moved.pop(entry.path, None)
                    if self._dst_caps.rename:
                        await self._remove_stale_temps([self.temps.for_path(entry.path)])
                    self._fail(entry, f"{reason}; it is no longer a regular file "
                               f"({entry.kind.value}): not copied")
                    return
                self._restart(entry, reason)
            except DestinationFolderError:
                raise
            except NoSpaceError as exc:
                # Not this file's failure: every file would fail the same way. It stays
                # pending/partial in the journal (resumable) and no new file starts.
                self._full = self._full or exc
                return
            except BackendError as exc:
                if not exc.retryable:
                    self._fail(entry, str(exc))
                    return
                reason = str(exc)
            if self._dst_caps.rename:
                self._partial_temps.add(self.temps.for_path(entry.path))
            progressed = self._moved.get(entry.path, 0) > before
            attempt = 1 if progressed else attempt + 1
            if attempt > self.opt.retries:
                self._moved.pop(entry.path, None)
                self._fail(entry, f"{reason} (gave up after {self.opt.retries} retries)")
                return
            delay = min(self.opt.retry_delay * 2 ** (attempt - 1), self.opt.retry_delay_max)
            self.emit(FileRetry(path=entry.path, attempt=attempt, reason=reason, delay=delay))
            await asyncio.sleep(delay)

    async def _restat_source(self, entry: Entry) -> Entry:
        try:
            async with self.src.session() as s:
                return await s.stat(entry.path)
        except BackendError:
            return entry

    def _fail(self, entry: Entry, reason: str) -> None:
        self._settled.add(entry.path)
        self._stats.failed.append((entry.path, reason))
        if self.journal is not None:
            self.journal.set_state(entry.path, "failed", note=reason)
        self.emit(FileFailed(path=entry.path, reason=reason))

    def _restart(self, entry: Entry, reason: str) -> None:
        self._stats.restarted.append((entry.path, reason))
        if self.journal is not None:
            self.journal.restart(entry.path, size=entry.size, mtime=entry.mtime, note=reason)
        self.emit(FileRestarted(path=entry.path, reason=reason))

    def _journal_progress(self, *, force: bool = False) -> None:
        if self.journal is None:
            return
        now = time.monotonic()
        if not force and now - self._progress_stamp < 1.0:
            return
        self._progress_stamp = now
        self.journal.run_progress(
            bytes_sent=self._stats.bytes_sent,
            bytes_resent=self._stats.bytes_resent,
            files_done=self._stats.files_copied,
            files_failed=len(self._stats.failed),
        )

    # -- one file ------------------------------------------------------------------------
    async def _copy_file(self, entry: Entry) -> None:
        await self._ensure_dir(parent_of(entry.path))
        caps = self._dst_caps
        use_temp = caps.rename
        target = self.temps.for_path(entry.path) if use_temp else entry.path
        blocks = await self._resumable_blocks(entry, target)
        if caps.parallel_writes and caps.offset_writes is OffsetWrites.ANY:
            digests, resumed_from = await self._copy_blockwise(entry, target, blocks)
        else:
            digests, resumed_from = await self._copy_stream(entry, target, blocks)
        digest = combine(digests, entry.size)
        if self.opt.checksum:
            await self._check_source_content(entry, digest)
        set_mtime = self.opt.preserve_mtime and caps.set_mtime and entry.mtime is not None
        async with self.dst.session() as s:
            if use_temp and not caps.rename_replaces:
                with contextlib.suppress(NotFoundError):
                    await s.remove(entry.path)
            if use_temp:
                await s.place(target, entry.path, mtime=entry.mtime if set_mtime else None,
                              mode=placed_mode(entry.mode, keep=self.opt.keep_perms),
                              size=entry.size)
            elif set_mtime:
                assert entry.mtime is not None
                await s.set_mtime(target, entry.mtime)
        if self.journal is not None:
            self.journal.mark_done(
                entry.path, digest=digest, algorithm=ALGORITHM, size=entry.size, mtime=entry.mtime
            )
        self._stats.files_copied += 1
        self._stats.bytes_copied += entry.size
        self._settled.add(entry.path)
        self._journal_progress()
        self.emit(
            FileDone(
                path=entry.path,
                size=entry.size,
                digest=digest,
                algorithm=ALGORITHM,
                resumed_from=resumed_from,
            )
        )

    async def _resumable_blocks(
        self, entry: Entry, target: str
    ) -> dict[int, tuple[bytes, bool]] | None:
        """Journal blocks of an earlier, interrupted attempt that still apply ({} if it
        left only a partly acknowledged block), or None when there is nothing to resume."""
        if self.journal is None:
            return None
        rec = self.journal.get(entry.path)
        if rec is None or rec.state not in ("partial", "failed", "pending"):
            return None
        blocks = self.journal.blocks(entry.path)
        partials = self.journal.partials(entry.path)
        if not blocks and not partials:
            # Nothing journaled (FTP acknowledges nothing before the end of a file, and a
            # file under one block records no digest): a stream destination may still
            # hold a partial file whose tail is checked against the source.
            stream = not (self._dst_caps.parallel_writes
                          and self._dst_caps.offset_writes is OffsetWrites.ANY)
            if not (stream and target in self._partial_temps):
                return None
        tolerance = max(self._src_caps.mtime_resolution, 1e-3)
        if rec.size != entry.size or not (
            rec.mtime == entry.mtime or same_mtime(rec.mtime, entry.mtime, tolerance=tolerance)
        ):
            self._restart(entry, "source changed since the interrupted run: copied again in full")
            return None
        return blocks

    # -- parallel-write destinations (local, SFTP) --------------------------------------
    async def _copy_blockwise(
        self, entry: Entry, target: str, journal_blocks: dict[int, tuple[bytes, bool]] | None
    ) -> tuple[list[bytes], int]:
        size = entry.size
        nblocks = block_count(size)
        resumable = journal_blocks is not None and self.journal is not None
        journal_blocks = journal_blocks or {}
        done = {i: d for i, (d, acked) in journal_blocks.items() if acked and i < nblocks}
        partials = self.journal.partials(entry.path) if resumable and self.journal else {}
        present: Entry | None = None
        if done or partials:
            try:
                async with self.dst.session() as s:
                    present = await s.stat(target)
            except NotFoundError:
                present = None
            ok = present is not None
            if ok and done:
                last = max(done)
                ok = await self._dst_block_matches(target, last, size, done[last])
            if not ok:
                why = (
                    "partial file missing at the destination"
                    if present is None
                    else "partial file at the destination does not match the journal"
                )
                self._restart(entry, f"{why}: copied again in full")
                done, partials, present = {}, {}, None
        missing = [i for i in range(nblocks) if i not in done]
        segments = self._segments(missing, size)
        if present is not None:
            for seg in segments:
                idx = seg.start // BLOCK_SIZE
                p = partials.get(idx, 0)
                if 0 < p < seg.end - seg.start and seg.start + p <= present.size:
                    if await self._tails_match(entry, target, seg.start, seg.start + p):
                        seg.send_from = seg.start + p
            # Bytes the destination already held that are sent again (holes, unacked).
            self._stats.bytes_resent += sum(
                max(0, min(seg.end, present.size) - seg.send_from) for seg in segments
            )
        resumed_from = (
            (min(seg.send_from for seg in segments) if segments else size)
            if present is not None else 0
        )
        self.emit(FileStarted(path=entry.path, size=size, resume_from=resumed_from,
                              segments=len(segments)))
        if present is None:
            # Create (truncate) the temp file; for a one-block file, write it whole.
            if nblocks <= 1:
                transfer = FileTransfer(entry, reads=1)
                digests = await self._move_range(transfer, target, _Segment(0, size),
                                                 create=True)
                return digests, 0
            async with self.dst.session() as s:
                await s.write(target, _empty(), create=True)
        digests = dict(done)
        transfer = FileTransfer(entry, reads=len(segments))
        lanes = await self._extra_lanes(len(segments))
        queue = deque(segments)

        async def lane() -> None:
            while queue:
                seg = queue.popleft()
                got = await self._move_range(transfer, target, seg, create=False)
                for k, d in enumerate(got):
                    digests[seg.start // BLOCK_SIZE + k] = d

        try:
            # One segment failing stops the others, and the retry waits until none of
            # them can write any more (transfer.py).
            await run_together(lane() for _ in range(1 + lanes))
        finally:
            for _ in range(lanes):
                self._streams.release()
        async with self.dst.session() as s:
            placed = await s.stat(target)
        if placed.size != size:
            # Never expected (every writer of this attempt has ended): another writer,
            # or a store that lost bytes. The file starts over rather than be placed.
            raise DestinationChangedError(
                f"{entry.path}: the temporary file holds {placed.size} bytes, "
                f"expected {size}", path=entry.path)
        return [digests[i] for i in range(nblocks)], resumed_from

    def _segments(self, missing: list[int], size: int) -> list[_Segment]:
        """Contiguous runs of missing blocks, cut into segments of at most segment_size
        (only when the source can read bounded ranges)."""
        runs: list[_Segment] = []
        for i in missing:
            start, end = i * BLOCK_SIZE, min((i + 1) * BLOCK_SIZE, size)
            if runs and runs[-1].end == start:
                runs[-1].end = end
            else:
                runs.append(_Segment(start, end))
        if not (self._src_caps.ranged_read and self._src_caps.bounded_read):
            return runs
        seg = max(BLOCK_SIZE, self.opt.segment_size // BLOCK_SIZE * BLOCK_SIZE)
        if size >= self.opt.segment_threshold:
            per = -(-size // self.opt.max_segments_per_file)
            seg = max(BLOCK_SIZE, min(seg, -(-per // BLOCK_SIZE) * BLOCK_SIZE))
        else:
            seg = max(seg, size)
        out: list[_Segment] = []
        for r in runs:
            pos = r.start
            while pos < r.end:
                out.append(_Segment(pos, min(pos + seg, r.end)))
                pos += seg
        return out

    async def _extra_lanes(self, wanted: int) -> int:
        """Borrow idle stream slots for more segments, without waiting for any (the
        file's own slot is its first lane)."""
        got = 0
        limit = min(wanted, self.opt.max_segments_per_file) - 1
        while got < limit and not self._streams.locked():
            await self._streams.acquire()
            got += 1
        return got

    async def _dst_block_matches(self, target: str, idx: int, size: int, digest: bytes) -> bool:
        start = idx * BLOCK_SIZE
        got = await self._range_digest(self.dst, target, start, min(start + BLOCK_SIZE, size))
        return got == digest

    async def _range_digest(
        self, pool: SessionPool, path: str, start: int, end: int
    ) -> bytes | None:
        """XXH3-128 of bytes [start, end) of ``path``, or None when they cannot all be
        read (for a whole block, this is the block digest of verify/digest.py)."""
        h = xxhash.xxh3_128()
        got = 0
        want = end - start
        try:
            async with pool.session() as s:
                stream = s.read(path, offset=start, length=want)
                try:
                    async for piece in stream:
                        h.update(piece[: want - got])
                        got += len(piece)
                        if got >= want:
                            break
                finally:
                    await stream.aclose()  # type: ignore[attr-defined]
        except BackendError:
            return None
        return h.digest() if got >= want else None

    async def _tails_match(self, entry: Entry, target: str, start: int, end: int) -> bool:
        """Whether the destination's bytes [start, end) equal the source's."""
        if end <= start:
            return True
        a, b = await asyncio.gather(
            self._range_digest(self.src, entry.path, start, end),
            self._range_digest(self.dst, target, start, end),
        )
        return a is not None and a == b

    async def _move_range(self, transfer: FileTransfer, target: str, seg: _Segment, *,
                          create: bool) -> list[bytes]:
        """Stream source [seg.start, seg.end) through the hasher and send it from
        ``seg.send_from`` into the destination; return the digests of its blocks
        (``seg.start`` is block aligned). Blocks are journaled as acked when the
        destination acknowledges them (or when the write returns); the acknowledged
        part of an unfinished block is journaled too, so a resume re-sends only what
        was in flight."""
        entry = transfer.entry
        start, end, send_from = seg.start, seg.end, seg.send_from
        hasher = BlockHasher(start)
        journaled: set[int] = set()
        path = entry.path
        first = start // BLOCK_SIZE
        acked_upto = send_from

        def journal_acked(upto: int) -> None:
            nonlocal acked_upto
            if upto <= acked_upto and upto != end:
                return
            acked_upto = max(acked_upto, upto)
            if self.journal is None:
                return
            for k, d in enumerate(hasher.digests):
                idx = first + k
                block_end = min((idx + 1) * BLOCK_SIZE, entry.size)
                if idx not in journaled and block_end <= acked_upto:
                    journaled.add(idx)
                    self.journal.record_block(path, idx, d, acked=True, bytes_done=block_end)
            idx = acked_upto // BLOCK_SIZE
            within = acked_upto - idx * BLOCK_SIZE
            if within and acked_upto < end:
                self.journal.record_partial(path, idx, within)

        async with self._read_source(transfer, start, end, hasher,
                                     send_from=send_from) as pieces:
            await pieces.first()
            async with self.dst.session() as s:
                await s.write(
                    target,
                    pieces,
                    offset=send_from,
                    create=create,
                    acked=lambda n: journal_acked(send_from + n),
                )
        hasher.finish()
        journal_acked(end)
        return hasher.digests

    def _read_source(
        self,
        transfer: FileTransfer,
        start: int,
        end: int,
        hasher: BlockHasher,
        *,
        send_from: int | None = None,
    ) -> _Pipe:
        """Pieces of source [start, end), hashed on the way; yields only from
        ``send_from`` on (bytes before it are hashed, not sent). Checks the byte count:
        a source that shrank or grew raises SourceChangedError.

        The source read starts at once, in its own task, so opening the source overlaps
        opening the destination (one round trip less per file on a slow link)."""
        entry = transfer.entry
        send_from = start if send_from is None else send_from
        to_eof = end == entry.size
        q: _PieceQueue = _PieceQueue(self.opt.pipe_depth, self.opt.pipe_bytes)

        signalled = False  # the consumer has been told the data is complete

        async def reader() -> None:
            nonlocal signalled
            pos = start
            try:
                async with self.src.session() as s:
                    # To EOF: read without a bound, so a file that grew is noticed.
                    stream = s.read(
                        entry.path, offset=start, length=None if to_eof else end - start,
                        expect=entry,
                    )
                    async for piece in stream:
                        if self._limiter is not None:
                            await self._limiter.take(len(piece))
                        if pos + len(piece) > end:
                            raise SourceChangedError(
                                f"{entry.path}: source grew while it was copied", path=entry.path
                            )
                        hasher.update(piece)
                        pos += len(piece)
                        await q.put(piece)
                        if pos == end and end <= BLOCK_SIZE:
                            # A small file is complete: let the destination finish while
                            # the source stream closes (one round trip less per file).
                            signalled = True
                            await q.put(None)
                if pos != end:
                    raise SourceChangedError(
                        f"{entry.path}: source has {pos} bytes, expected {end} "
                        "(it changed while it was copied)",
                        path=entry.path,
                    )
                if transfer.read_finished():
                    # Every byte of the file this attempt sends has been read, by this
                    # segment or the others: the source must still be what was listed
                    # (for a small file this overlaps the destination's last reply).
                    await self._check_source_unchanged(entry)
                if not signalled:
                    signalled = True
                    await q.put(None)
            except asyncio.CancelledError:
                # The pipe is being closed (the destination failed or the file is done):
                # nobody reads the queue any more, so never wait on it here — a put on a
                # full queue would hang the pipe's close, and with it the worker.
                raise
            except BaseException as exc:
                if not signalled:
                    await q.put(exc)  # the consumer raises it (a cancel here still ends us)
                elif isinstance(exc, SourceChangedError):
                    raise  # surfaces when the pipe closes, before the rename
                # else: every byte arrived; only closing the source stream failed.

        task = asyncio.create_task(reader())

        head: list[bytes | BaseException | None] = []

        async def first() -> None:
            # Wait for the source's first piece (kept for pieces()); its error, if any,
            # is raised here, before the destination is touched.
            if not head:
                head.append(await q.get())
            if isinstance(head[0], BaseException):
                raise head[0]

        async def pieces() -> AsyncIterator[bytes]:
            # The reader task belongs to the _Pipe, which ends it.
            sent = start
            while True:
                item = head.pop() if head else await q.get()
                if item is None:
                    break
                if isinstance(item, BaseException):
                    raise item
                piece = item
                if sent + len(piece) <= send_from:
                    sent += len(piece)
                    continue
                if sent < send_from:
                    piece = piece[send_from - sent :]
                    sent = send_from
                sent += len(piece)
                self._stats.bytes_sent += len(piece)
                if sent > self._moved.get(entry.path, 0):
                    self._moved[entry.path] = sent  # the furthest byte ever sent
                self.emit(BytesMoved(path=entry.path, n=len(piece)))
                yield piece

        return _Pipe(pieces(), task, first)

    async def _check_source_unchanged(self, entry: Entry) -> None:
        """Raise SourceChangedError unless the source is still the regular file of the
        size and mtime that was listed (and read)."""
        try:
            async with self.src.session() as s:
                now = await s.stat(entry.path)
        except NotFoundError:
            raise SourceChangedError(
                f"{entry.path}: source disappeared while it was copied", path=entry.path
            ) from None
        if now.kind is not EntryKind.FILE or now.size != entry.size or (
            entry.mtime is not None and now.mtime is not None and now.mtime != entry.mtime
        ):
            raise SourceChangedError(
                f"{entry.path}: source changed while it was copied", path=entry.path
            )

    async def _check_source_content(self, entry: Entry, digest: str) -> None:
        """``--checksum``: read the source again and compare its digest with the one of
        the bytes sent; a rewrite that kept size and mtime (or fell within the store's
        mtime resolution) shows here, before the file is placed."""
        hasher = BlockHasher()
        size = 0
        async with self.src.session() as s:
            async for piece in s.read(entry.path):
                if self._limiter is not None:
                    await self._limiter.take(len(piece))
                hasher.update(piece)
                size += len(piece)
        hasher.finish()
        if size != entry.size or combine(hasher.digests, size) != digest:
            raise SourceChangedError(
                f"{entry.path}: source changed while it was copied (its content differs "
                "from the bytes sent)", path=entry.path
            )

    # -- stream destinations (FTP) -------------------------------------------------------
    async def _copy_stream(
        self, entry: Entry, target: str, journal_blocks: dict[int, tuple[bytes, bool]] | None
    ) -> tuple[list[bytes], int]:
        size = entry.size
        mode = self._dst_caps.offset_writes
        resume_at = 0
        read_from = 0
        known: dict[int, bytes] = {}
        if journal_blocks is not None:
            resume_at, read_from, known = await self._stream_resume_point(
                entry, target, journal_blocks, mode
            )
        self.emit(FileStarted(path=entry.path, size=size, resume_from=resume_at, segments=1))
        hasher = BlockHasher(read_from)
        first_idx = read_from // BLOCK_SIZE
        journaled = set(range(first_idx))
        path = entry.path

        def journal_sent(done_through: int) -> None:
            if self.journal is None:
                return
            for k, d in enumerate(hasher.digests):
                idx = first_idx + k
                if idx not in journaled:
                    journaled.add(idx)
                    self.journal.record_block(path, idx, d, acked=False, bytes_done=done_through)

        async def pieces(source: AsyncIterator[bytes]) -> AsyncIterator[bytes]:
            async for piece in source:
                journal_sent(hasher.position)
                yield piece

        async with self._read_source(FileTransfer(entry, reads=1), read_from, size, hasher,
                                     send_from=resume_at) as source:
            await source.first()
            async with self.dst.session() as s:
                await s.write(target, pieces(source), offset=resume_at,
                              create=resume_at == 0)
        hasher.finish()
        digests = [known[i] for i in range(first_idx)] + hasher.digests
        return digests, resume_at

    async def _stream_resume_point(
        self,
        entry: Entry,
        target: str,
        journal_blocks: dict[int, tuple[bytes, bool]],
        mode: OffsetWrites,
    ) -> tuple[int, int, dict[int, bytes]]:
        """(resume_at, read_from, known block digests before read_from) for a stream
        destination, or (0, 0, {}) after recording a restart.

        A stream destination holds a contiguous prefix of the file (one STOR, in
        order), so its size says what arrived. fsmove continues exactly there (REST+STOR
        where the server seeks, APPE where it only appends) after checking the last
        whole block against the journal and the partial block against the source."""

        def restart(why: str) -> tuple[int, int, dict[int, bytes]]:
            self._restart(entry, f"{why}: copied again in full")
            return 0, 0, {}

        if mode is OffsetWrites.NONE:
            return restart("the destination cannot resume a partial file")
        try:
            async with self.dst.session() as s:
                present = await s.stat(target)
        except NotFoundError:
            if not journal_blocks:
                return 0, 0, {}  # nothing had arrived: a plain start, not a restart
            return restart("partial file missing at the destination")
        have = present.size
        if have == 0 and not journal_blocks:
            return 0, 0, {}
        if have > entry.size:
            return restart("partial file at the destination is larger than the source")
        known = {i: d for i, (d, _a) in journal_blocks.items()}
        tail_block = have // BLOCK_SIZE
        if any(i not in known for i in range(tail_block)):
            return restart("journal lacks digests for the partial file")
        if tail_block > 0 and not await self._dst_block_matches(
            target, tail_block - 1, entry.size, known[tail_block - 1]
        ):
            return restart("partial file at the destination does not match the journal")
        read_from = tail_block * BLOCK_SIZE
        if have > read_from and not await self._tails_match(entry, target, read_from, have):
            return restart("partial block at the destination differs from the source")
        return have, read_from, {i: known[i] for i in range(tail_block)}


class _PieceQueue(asyncio.Queue[bytes | BaseException | None]):
    """A pipe's queue, bounded by pieces and by bytes (a piece always fits while fewer
    than ``max_bytes`` wait). asyncio's own extension points: ``_put``/``_get``/``full``."""

    def __init__(self, max_pieces: int, max_bytes: int) -> None:
        super().__init__(max_pieces)
        self._max_bytes = max_bytes
        self._held = 0

    def _put(self, item: bytes | BaseException | None) -> None:
        super()._put(item)  # type: ignore[misc]
        if isinstance(item, bytes | bytearray):
            self._held += len(item)

    def _get(self) -> bytes | BaseException | None:
        item: bytes | BaseException | None = super()._get()  # type: ignore[misc]
        if isinstance(item, bytes | bytearray):
            self._held -= len(item)
        return item

    def full(self) -> bool:
        return self._held >= self._max_bytes or super().full()


class _Pipe:
    """The source side of one transfer: an async iterator of pieces whose reader task
    is already running. ``async with`` guarantees the reader (and the source session it
    holds) is stopped even when the destination fails before reading a single piece."""

    def __init__(self, pieces: AsyncIterator[bytes], task: asyncio.Task[None],
                 first: Callable[[], Awaitable[None]]) -> None:
        self._pieces = pieces
        self._task = task
        self._first = first

    async def first(self) -> None:
        """Wait until the source produced its first piece (or ended, or failed: then
        raise). A destination session borrowed only after this is never held idle
        while the source opens its file (one round trip or more on a slow link)."""
        await self._first()

    def __aiter__(self) -> AsyncIterator[bytes]:
        return self._pieces

    async def __aenter__(self) -> _Pipe:
        return self

    async def __aexit__(self, exc_type: type[BaseException] | None, *rest: object) -> None:
        with contextlib.suppress(BaseException):
            await self._pieces.aclose()  # type: ignore[attr-defined]
        if exc_type is None:
            # Success: let the source stream finish closing (cancelling it would break
            # an FTP session); a source that changed after all was read still counts.
            try:
                await self._task
            except SourceChangedError:
                raise
            except BaseException:
                return
            return
        if not self._task.done():
            self._task.cancel()
        with contextlib.suppress(BaseException):
            await self._task


def _retrieve(task: asyncio.Future[None]) -> None:
    """Mark a finished task's failure as seen (it is reported by whoever awaited it)."""
    if not task.cancelled():
        task.exception()


async def _empty() -> AsyncIterator[bytes]:
    return
    yield b""  # pragma: no cover  (makes this an async generator)

