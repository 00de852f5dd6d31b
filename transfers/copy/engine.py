"""The copy engine: the coordinator of one run.

sides (``transfers/survey.py``: capabilities and roots) → the march
(``transfers/march.py``: both trees walked together, folder by folder, each folder's
files decided by ``transfers/plan.py``'s rules) → each folder's files handed to a pool
of workers as soon as it is decided (``schedule.py``: big files first, never more than
a quarter of the streams on them; the march waits when enough files wait), its stale
temporary files removed, each file copied by ``Attempts`` under the job's
``RetryPolicy`` with destination folders made as their first file needs them
(``folders.py``) → the folders no file needed → ``--delete`` (``deletion.py``) → the
``Summary`` event. ``plan()`` runs the same march and collects it into a ``CopyPlan``
(dry runs, ``fsmove migrate``'s plan). The journal records each folder's files as it
is decided, every block and every file done.

The plan's totals grow while the march runs: ``Planned`` events with
``complete=False`` carry the totals decided so far, and one with ``complete=True`` the
whole plan, once the march has ended.

Every bound comes from one ``Limits`` and every retry decision from one ``RetryPolicy``
(``transfers/policy.py``), both built once per job from ``CopyOptions``. The state of
each file lives in its ``FileTransfer`` (``transfer.py``).
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import AsyncIterator
from dataclasses import replace

from fsmove.verify.digest import ALGORITHM

from ..backend import BackendError, Entry, EntryKind, NoSpaceError, PermanentError
from ..budget import ByteBudget
from ..events import (
    BytesMoved,
    DryRunNote,
    Event,
    FileDeleted,
    FileDone,
    FileFailed,
    FilePlanned,
    FileRestarted,
    FileRetry,
    PathRefused,
    Subscriber,
    Summary,
)
from ..journal import Journal
from ..march import march
from ..plan import (
    CopyPlan,
    FileRules,
    FolderPlan,
    GrowingPlan,
    JobRecords,
    PlanTally,
    is_at_or_below,
)
from ..policy import pause_before_retry
from ..pool import SessionPool
from ..scout import SourceScout
from ..session_count import sessions_for_work, streams_worth_running
from ..survey import Sides, open_sides
from ..together import run_together
from ..tree import TempNames, TreeRules, is_own_probe_file
from ..walk import WalkIssue, list_folder
from .attempt import Attempts, Placed
from .deletion import FoldersSeenAgain, delete_files, remove_folders, remove_stale_temps
from .folders import DestinationFolderError, DestinationFolders
from .name_gate import DestinationNames
from .options import CopyOptions
from .pipe import SourceReader
from .resume import Resume
from .schedule import FILES_WAITING, TransferQueue
from .stats import RunStats, Unsettled
from .transfer import DestinationChangedError, FileTransfer, SourceChangedError


class EmptySourceError(PermanentError):
    """``--delete`` from a source holding no file (``CopyEngine._refuse_emptying``)."""


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
        records: JobRecords | None = None,
    ) -> None:
        self.src = src
        self.dst = dst
        self.journal = journal
        #: What the skip rule reads: the journal, or a dry run's read-only view of it.
        self._records: JobRecords | None = journal if journal is not None else records
        self.opt = options
        self.limits = options.limits()
        self.retry = options.retry_policy()
        if temp_names is None:
            # A job's temporary names are keyed by its journal's secret; without a
            # journal (tests, dry runs) the run has its own, so it never takes another
            # job's partial file for its own.
            key = journal.temp_key() if journal is not None else TempNames.new_key()
            temp_names = TempNames(key)
        self.temps = temp_names
        #: What is in each tree: the source never holds anything of ours; the
        #: destination holds this job's temporary files.
        self._src_rules = TreeRules(filters=options.filters,
                                    server_files=options.src_server_files,
                                    skip_server_files=True)
        self._dst_rules = TreeRules(filters=options.filters, temps=temp_names,
                                    probe_leftovers=True,
                                    server_files=options.dst_server_files)
        self._subs = list(subscribers or [])
        self._stats = RunStats()
        #: Files decided for copying and not settled yet: what a destination that
        #: filled up leaves to copy.
        self._left = Unsettled()
        #: Of those, the files that take a stream (``stream_threshold``): a hint for
        #: how many sessions are worth logging in ahead (``_feed``).
        self._big_left = 0
        self._big_decided = 0  # streamed files decided so far (pools may grow for them)
        #: Big-file streams at once: set once both sides are open (their round trips
        #: decide it: ``streams_worth_running``).
        self._streams = asyncio.Semaphore(max(1, self.limits.streams_at_once))
        #: The small files in flight, by their sizes (``Limits.small_bytes_at_once``).
        self._small_bytes = ByteBudget(self.limits.small_bytes_at_once)
        self._folders = DestinationFolders(dst, at_once=self.limits.folders_made_at_once)
        self._progress_stamp = 0.0
        #: Source files the march found (``_refuse_emptying``).
        self._source_files = 0
        #: Set by the first "no space / over quota" reply: no new file starts after it,
        #: and the summary says how much is left (every such file stays resumable).
        self._full: NoSpaceError | None = None

    # -- events --------------------------------------------------------------------------
    def emit(self, event: Event) -> None:
        for sub in self._subs:
            sub(event)

    # -- top level -----------------------------------------------------------------------
    async def plan(self) -> CopyPlan:
        """March both sides and collect the whole plan, writing nothing (not even a
        missing destination root, in a dry run). ``fsmove migrate`` shows this as its
        plan."""
        sides = await self._open_sides(dry_run=self.opt.dry_run)
        plan = CopyPlan(sides=sides)
        try:
            async for folder in self._march(sides):
                plan.add(folder)
                self._source_files += folder.files
                self._unlisted_at_destination(folder)
        finally:
            sides.drop()
        return plan

    async def _open_sides(self, *, dry_run: bool, early_dst: bool = False) -> Sides:
        """The survey (``survey.py``), the destination root listed during it;
        ``early_dst``: returns once the destination's probe started, where it has early
        capabilities (``Sides.settle_dst``)."""

        def skips(entry: Entry) -> bool:
            # This run's probe writes scratch files into the root while it is listed:
            # in use, not a killed run's leftovers (which the rules remove).
            return is_own_probe_file(entry.path) or self._dst_rules.skips(entry)

        async def list_root() -> list[Entry | WalkIssue]:
            return await list_folder(self.dst, "", skip=skips, retry=self.retry,
                                     before_capabilities=True)

        return await open_sides(self.src, self.dst, dry_run=dry_run,
                                list_dst_root=list_root, early_dst=early_dst,
                                retry=self.retry, same_server=self.opt.same_server)

    def _march(self, sides: Sides, scout: SourceScout | None = None
               ) -> AsyncIterator[FolderPlan]:
        rules = FileRules(sides=sides, src=self.src, dst=self.dst, journal=self._records,
                          checksum=self.opt.checksum, preserve_mtime=self.opt.preserve_mtime,
                          compares_at_once=self.limits.files_at_once)
        return march(self.src, self.dst, sides=sides, src_rules=self._src_rules,
                     dst_rules=self._dst_rules, rules=rules,
                     listings_at_once=self.limits.listings_at_once, retry=self.retry,
                     on_issue=self._walk_issue,
                     listed=scout.take if scout is not None else None,
                     dst_names=DestinationNames(self.dst, self.temps,
                                                ask_server=not self.opt.dry_run,
                                                on_note=self._dry_note))

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
            await self._folders.stop()

    async def _run(self, started: float) -> Summary:
        if self.opt.dry_run:
            return await self._dry_run(started)
        # The source is listed while the destination is surveyed (its write probe):
        # the march then starts with folders already listed (scout.py).
        scout = SourceScout(self.src, skip=self._src_rules.skips, retry=self.retry,
                            at_once=self.limits.listings_at_once)
        scouting = asyncio.ensure_future(scout.run())
        try:
            sides = await self._open_sides(dry_run=False, early_dst=True)
        except BaseException:
            scouting.cancel()
            await asyncio.gather(scouting, return_exceptions=True)
            raise
        if sides.dst_settled:
            scout.stop()  # else once the probe has answered (``_settle``)
        try:
            return await self._copy_run(started, sides, scout)
        finally:
            sides.drop()
            # Stopped above, so at most the listings it had under way are left, each
            # taken by the march by now (or not needed: the run failed): cancelled.
            scouting.cancel()
            await asyncio.gather(scouting, return_exceptions=True)

    async def _copy_run(self, started: float, sides: Sides, scout: SourceScout) -> Summary:
        # Big files at once are the job's (a LAN runs fewer streams, not fewer big
        # files: two big files side by side beat one cut into segments).
        big_limit = self.limits.big_files_at_once
        streams = streams_worth_running(sides.src_caps, sides.dst_caps,
                                        self.limits.streams_at_once)
        if streams != self.limits.streams_at_once:
            self.limits = replace(self.limits, streams_at_once=streams)
            self._streams = asyncio.Semaphore(max(1, streams))
        attempts = Attempts(
            dst=self.dst, journal=self.journal, options=self.opt, limits=self.limits,
            sides=sides, streams=self._streams, folders=self._folders,
            reader=SourceReader(self.src, limits=self.limits,
                                on_sent=self._sent),
            resume=Resume(src=self.src, dst=self.dst, journal=self.journal, sides=sides,
                          restart=self._restart, trust_partial=self.opt.trust_partial),
            stats=self._stats, emit=self.emit,
        )
        queue = TransferQueue(big_threshold=self.opt.segment_threshold,
                              big_limit=big_limit,
                              max_waiting=max(FILES_WAITING, 4 * self.limits.files_at_once))
        to_delete: list[Entry] = []
        dst_only: list[str] = []
        # Each folder's files start as soon as it is decided, while the march lists the
        # next folders; folders are made as their first file needs them. The
        # destination's write probe may still be running (``settle_dst``): its failure
        # stops the run as it would have stopped the survey.
        await run_together([self._feed(sides, queue, to_delete, dst_only, scout),
                            self._copy_all(queue, attempts),
                            self._settle(sides, scout)])
        if self._full is None:
            try:
                refused = await self._folders.make_remaining()
                if refused:
                    # Said once: a folder a failed file below it named already is not
                    # listed again.
                    named = {path for path, _why in self._stats.failed}
                    for path, why in refused:
                        if not any(is_at_or_below(n, {path}) for n in named):
                            self._stats.failed.append((path, why))
                            self.emit(FileFailed(path=path, reason=why))
            except NoSpaceError as exc:
                self._full = exc
        if self._full is not None:
            return self._summary(started, status="partial", to_delete=len(to_delete),
                                 stopped="destination-full")
        if self.opt.delete and not self._stats.failed:
            self._refuse_emptying(to_delete)
            seen = FoldersSeenAgain(self.dst)  # one listing per folder for both
            await self._delete(to_delete, seen)
            await remove_folders(self.dst, dst_only, seen=seen)
        status = "partial" if self._stats.failed else "ok"
        return self._summary(started, status=status, to_delete=len(to_delete))

    async def _dry_run(self, started: float) -> Summary:
        """The whole plan, then one event per decision (nothing is written)."""
        plan = await self.plan()
        self.emit(plan.event())
        for e in plan.skipped:
            self._stats.files_skipped += 1
            self._stats.bytes_skipped += e.size
        for e in plan.to_copy:
            self.emit(FilePlanned(path=e.path, size=e.size, action="copy"))
        for e in plan.skipped:
            self.emit(FilePlanned(path=e.path, size=e.size, action="skip"))
        # Only with --delete: before session 32 a dry run without it listed "would
        # delete" files the real run never touches.
        to_delete = plan.to_delete if self.opt.delete else []
        if self.opt.delete:
            self._refuse_emptying(to_delete)
        for e in to_delete:
            self.emit(FileDeleted(path=e.path, dry_run=True, size=e.size))
        return self._summary(started, status="dry-run", to_delete=len(to_delete))

    def _unlisted_at_destination(self, folder: FolderPlan) -> None:
        """A destination folder that could not be listed: its files are copied again
        (taken as absent), but ``--delete`` cannot know what it holds. A failure (the
        run is partial, so nothing is deleted anywhere), said in a dry run too."""
        if folder.dst_unlisted is None or not self.opt.delete:
            return
        reason = (f"could not list this folder at the destination, so --delete cannot "
                  f"clean it: {folder.dst_unlisted}")
        self._stats.failed.append((folder.path, reason))
        self.emit(FileFailed(path=folder.path, reason=reason))

    def _refuse_emptying(self, to_delete: list[Entry]) -> None:
        """``--delete`` from a source that holds no file would delete every file of the
        destination: the one slip that loses a bucket (SRC and DST swapped, a source
        folder mistyped into an empty one). Refused, before anything is deleted."""
        if to_delete and self._source_files == 0 and not self.opt.may_empty:
            raise EmptySourceError(
                f"the source holds no file, so --delete would delete all "
                f"{len(to_delete):,} files of the destination: refused, nothing deleted "
                "(SRC and DST swapped?); to empty the destination, delete its files "
                "there yourself")

    async def _feed(self, sides: Sides, queue: TransferQueue, to_delete: list[Entry],
                    dst_only: list[str], scout: SourceScout | None = None) -> None:
        """Take each folder the march decides: journal it, hand its files to the
        workers (waiting for room), remove its stale temporary files. Once the
        destination is full nothing more is queued, but the march goes on to count
        what is left (every such file stays pending in the journal)."""
        tally = PlanTally()
        shown = GrowingPlan(tally, emit=self.emit)
        try:
            async for folder in self._march(sides, scout):
                tally.add(folder)
                self._source_files += folder.files
                shown.changed()
                to_delete += folder.to_delete
                self._unlisted_at_destination(folder)
                if folder.dst_only:
                    dst_only.append(folder.path)
                if folder.missing:
                    self._folders.add_missing(folder.path)
                if self._full is None:
                    # Made ahead while the march lists them (a few at once).
                    for child in folder.missing_children:
                        self._folders.add_missing(child, mode=folder.child_modes.get(child))
                        self._folders.make_ahead(child)
                for e in folder.skipped:
                    self._stats.files_skipped += 1
                    self._stats.bytes_skipped += e.size
                # (The root, decided first, marks the run planned even when empty.)
                if self.journal is not None and (folder.to_copy or folder.skipped
                                                 or not folder.path):
                    self.journal.plan(
                        [(e.path, e.size, e.mtime, "pending") for e in folder.to_copy]
                        + [(e.path, e.size, e.mtime, "skipped", folder.dst_mtimes.get(e.path))
                           for e in folder.skipped]
                    )
                found = set(folder.dst_temps)
                # Temporary names unless the probe found the destination cannot rename
                # (before it has answered, a file written under one is settled by
                # ``Attempts``).
                use_temp = sides.dst_caps.rename
                transfers = []
                for e in folder.to_copy:
                    temp = self.temps.for_path(e.path)
                    transfers.append(FileTransfer(e, target=temp if use_temp else e.path,
                                                  partial_at_destination=temp in found))
                if found:
                    stale = found - {t.target for t in transfers}
                    await remove_stale_temps(self.dst, sorted(
                        stale - self._kept_for_later(folder.path, stale)))
                big = sum(1 for t in transfers if self._is_stream(t))
                self._big_left += big
                self._big_decided += big
                # A long run, or big files: both sides may log in more (session_count).
                self.src.grow_for_files(tally.files_to_copy, self._big_decided)
                self.dst.grow_for_files(tally.files_to_copy, self._big_decided)
                for t in transfers:
                    self._left.add(t.entry.size)
                if transfers and self._full is None and sides.dst_settled:
                    self._warm()
                for t in transfers:
                    if self._full is not None or not await queue.put(t):
                        continue  # the destination is full: counted as left
        finally:
            shown.stop()
            queue.close()
        self.emit(tally.event(complete=True))

    def _kept_for_later(self, folder: str, stale: set[str]) -> set[str]:
        """This job's temporary files in ``folder`` that hold a file this run's filters
        leave out: kept for the run that takes that file again (a run with another
        ``--include`` must not throw away a partly sent 10 GB file; found by an
        adversarial pass in session 32, where the next full run sent it again from
        zero). A temporary file of a file gone from the source is removed."""
        if self.journal is None or not stale:
            return set()
        kept = {self.temps.for_path(p) for p in self.journal.partly_sent_in(folder)
                if self.opt.filters.excludes(p, EntryKind.FILE)}
        return kept & stale

    def _warm(self) -> None:
        """Both sides log in for the work known so far, together (pool.py): the files
        that can run at once, big files only as many as the streams (a session logged
        in for a big file that must wait for a stream would sit idle)."""
        wanted = sessions_for_work(
            self._left.files - self._big_left, self._big_left,
            streams=self.limits.streams_at_once, files_at_once=self.limits.files_at_once)
        self.src.warm(wanted)
        self.dst.warm(wanted)

    async def _settle(self, sides: Sides, scout: SourceScout) -> None:
        """The destination's probe answered (``Sides.settle_dst``), then the logins
        for the work decided meanwhile. Held until then: a wave of a hundred logins
        (vsftpd checks each password with PAM, on the machine's cores) slowed the
        probe and the first files, written on the sessions logged in ahead, by
        hundreds of ms each round trip (benchmarks/README.md). The scout lists the
        source ahead of the march until then, as it did during the survey."""
        if sides.dst_settled:
            return
        try:
            await sides.settle_dst()
        finally:
            scout.stop()
        if self._left.files and self._full is None:
            self._warm()

    def _summary(self, started: float, *, status: str, to_delete: int,
                 stopped: str | None = None) -> Summary:
        summary = self._stats.summary(status=status, seconds=time.monotonic() - started,
                                      dry_run=self.opt.dry_run, to_delete=to_delete,
                                      stopped=stopped, files_left=self._left.files,
                                      bytes_left=self._left.bytes)
        self.emit(summary)
        return summary

    def _walk_issue(self, item: WalkIssue) -> None:
        if item.unreadable:
            # A folder that could not be listed: its files are not copied, so the run
            # is partial (exit 3), as verify counts it unreadable.
            reason = f"could not list this folder: {item.reason}"
            self._stats.failed.append((item.path, reason))
            self.emit(FileFailed(path=item.path, reason=reason))
        elif item.special:
            # Symlinks and special files are never copied: reported, not failed.
            self._stats.refused.append((item.path, item.reason))
            self.emit(PathRefused(path=item.path, reason=item.reason))
        else:
            # A file whose name cannot be used safely is data not copied: the run is
            # partial (exit 3) so nobody mistakes it for a complete copy.
            reason = f"not copied: {item.reason}"
            self._stats.refused.append((item.path, item.reason))
            self._stats.failed.append((item.path, reason))
            self.emit(PathRefused(path=item.path, reason=item.reason))

    def _dry_note(self, path: str, question: str) -> None:
        """A question a dry run leaves to the real run (``copy/name_gate.py``)."""
        self._stats.notes.append((path, question))
        self.emit(DryRunNote(path=path, reason=question))

    async def _delete(self, entries: list[Entry], seen: FoldersSeenAgain) -> None:
        async for e, error in delete_files(self.dst, entries, journal=self.journal,
                                           folders=seen):
            if error is not None:
                self._stats.failed.append((e.path, f"could not delete: {error}"))
                self.emit(FileFailed(path=e.path, reason=f"could not delete: {error}"))
                continue
            self._stats.files_deleted += 1
            self.emit(FileDeleted(path=e.path))

    # -- scheduling ----------------------------------------------------------------------
    async def _copy_all(self, queue: TransferQueue, attempts: Attempts) -> None:
        """``files_at_once`` workers take files from ``queue`` until it is closed and
        empty, or the destination is full."""

        async def worker() -> None:
            while True:
                picked = await queue.take()
                if picked is None:
                    return
                transfer, is_big = picked
                try:
                    if transfer.entry.size >= self.opt.stream_threshold:
                        async with self._streams:
                            await self._copy_with_retries(transfer, attempts)
                    else:
                        held = await self._small_bytes.acquire(transfer.entry.size)
                        try:
                            await self._copy_with_retries(transfer, attempts)
                        finally:
                            self._small_bytes.release(held)
                finally:
                    queue.finished(big=is_big)
                if self._full is not None:
                    queue.stop()  # the destination is full: start nothing more

        async def ticker() -> None:
            # The journal looked after once a second, not only when a file ends: one
            # file of hours (a backup archive) left a journal removed under the run
            # unseen, and unrecorded, until its end (session 34).
            while True:
                await asyncio.sleep(1.0)
                self._journal_progress()

        tick = asyncio.ensure_future(ticker()) if self.journal is not None else None
        try:
            await run_together([worker() for _ in range(self.limits.files_at_once)])
        finally:
            if tick is not None:
                tick.cancel()
                await asyncio.gather(tick, return_exceptions=True)
            if self.journal is not None:
                self._journal_progress(force=True)
                self.journal.flush()

    async def _copy_with_retries(self, transfer: FileTransfer, attempts: Attempts) -> None:
        """Copy one file, retrying transient failures under the job's ``RetryPolicy``.

        ``--retries`` counts failed attempts in a row that got no further into the file
        than any before: an attempt that did resets the count and the delay, so a long
        file over a link that drops every few minutes keeps going all night, while a file
        that fails at once every time is given up after ``retries`` attempts."""
        retry = 0
        # When this run began reading the file (its first attempt: a later one may keep
        # blocks that one read): the journal dates the copy from it (``tree.is_racy``).
        read_at = time.time()
        while True:
            before = transfer.furthest_sent
            source_changed = False
            try:
                placed = await attempts.copy(transfer)
                self._done(transfer, placed, read_at)
                return
            except (SourceChangedError, DestinationChangedError) as exc:
                # Every reader and writer of the attempt has ended (transfer.py): the
                # next attempt starts the file over from its first byte.
                reason = str(exc)
                source_changed = isinstance(exc, SourceChangedError)
                before_entry = transfer.entry
                transfer.entry = entry = await self._restat_source(before_entry)
                self._left.resize(before_entry.size, entry.size)
                if entry.kind is not EntryKind.FILE:
                    # Swapped for a link (or a folder) while it was copied: never
                    # followed, never copied, whatever it now points at.
                    if transfer.target != entry.path:
                        await remove_stale_temps(self.dst, [transfer.target])
                    self._fail(transfer, f"{reason}; it is no longer a regular file "
                               f"({entry.kind.value}): not copied")
                    return
                transfer.checked_blocks.clear()
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
                    self._fail(transfer, str(exc))
                    return
                reason = str(exc)
            if transfer.target != transfer.path:
                transfer.partial_at_destination = True
            retry = self.retry.next_attempt(retry,
                                            progressed=transfer.furthest_sent > before)
            if self.retry.gives_up(retry):
                # A file changed at every attempt is being written to (a live log, an
                # upload): say what to do about it.
                advice = ("; it is being written to: stop what writes it (the app), or "
                          "--exclude it" if source_changed else "")
                self._fail(transfer, f"{reason} (gave up after {self.retry.retries} "
                           f"retries{advice})")
                return
            delay = self.retry.delay(retry)
            self.emit(FileRetry(path=transfer.path, attempt=retry, reason=reason, delay=delay))
            await pause_before_retry(delay)

    async def _restat_source(self, entry: Entry) -> Entry:
        try:
            async with self.src.session() as s:
                return await s.stat(entry.path)
        except BackendError:
            return entry

    # -- per-file outcomes ----------------------------------------------------------------
    def _sent(self, path: str, n: int) -> None:
        """A piece went to the destination (the hot path: once per piece)."""
        self._stats.bytes_sent += n
        self.emit(BytesMoved(path=path, n=n))

    def _done(self, transfer: FileTransfer, placed: Placed, read_at: float) -> None:
        entry = transfer.entry
        digest, resumed_from = placed.digest, placed.resumed_from
        if resumed_from and self.opt.trust_partial and entry.mtime is not None:
            # Its kept part was read by an earlier run and not again (--trust-partial):
            # when is unknown, so the record is dated from the source's own time, racy
            # until a later run's check dates it (session 36's second pass).
            read_at = min(read_at, entry.mtime)
        if self.journal is not None:
            self.journal.mark_done(
                entry.path, digest=digest, algorithm=ALGORITHM, size=entry.size,
                mtime=entry.mtime, dst_mtime=placed.dst_mtime, read_at=read_at,
            )
        self._stats.files_copied += 1
        self._stats.bytes_copied += entry.size
        transfer.settled = True
        self._left.settle(entry.size)
        self._big_left -= self._is_stream(transfer)
        self._journal_progress()
        self.emit(FileDone(path=entry.path, size=entry.size, digest=digest,
                           algorithm=ALGORITHM, resumed_from=resumed_from))

    def _is_stream(self, transfer: FileTransfer) -> bool:
        """Whether this file takes one of the streams (``stream_threshold``)."""
        return transfer.entry.size >= self.opt.stream_threshold

    def _fail(self, transfer: FileTransfer, reason: str) -> None:
        transfer.settled = True
        self._left.settle(transfer.entry.size)
        self._big_left -= self._is_stream(transfer)
        self._stats.failed.append((transfer.path, reason))
        if self.journal is not None:
            self.journal.set_state(transfer.path, "failed", note=reason)
        self.emit(FileFailed(path=transfer.path, reason=reason))

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
        self.journal.keep_in_place()
        self.journal.run_progress(
            bytes_sent=self._stats.bytes_sent,
            bytes_resent=self._stats.bytes_resent,
            files_done=self._stats.files_copied,
            files_failed=len(self._stats.failed),
        )
