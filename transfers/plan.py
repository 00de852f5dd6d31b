"""The plan of a copy: the rules that decide, folder by folder, what to copy, what to
skip, what ``--delete`` removes and which destination folders are missing. It writes
nothing. The march (``march.py``) applies them to each folder as soon as both sides of
it are listed; ``CopyEngine.plan()`` collects every folder's decision into a
``CopyPlan``, ``CopyEngine.run()`` copies each folder's files as they come.

* A file is copied unless the destination has a regular file of the same size and
  either (``--checksum``) the same content digest, or the same mtime (within both
  stores' resolution), or the journal says an earlier run copied it from a source of
  that size and mtime (a destination that cannot keep mtimes) *and* the destination's
  mtime is still the one the journal saw there (the time fsmove gave it, or the time
  listed when a run last skipped it; unknown for a file copied where no time could be
  set, until a run skips it). Before session 31 the journal's word sufficed: a file
  changed at the destination after the copy, to the same size, was skipped as
  "already identical".
* ``--delete`` removes a destination file only when the source was seen whole at that
  place and has no such file. Where the source has something fsmove does not copy or
  could not read (a symlink, a special file, a folder it could not list), the
  destination's files at that path *and below it* are left alone: the source holds that
  subtree in a form fsmove did not look into, so their absence proves nothing. (A
  source ``media -> /real`` with a real ``media/`` at the destination deletes nothing
  there.)
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Protocol

from fsmove.verify.digest import ALGORITHM

from .backend import BackendError, Entry, EntryKind, parent_of
from .digest_read import read_file_digest
from .events import Event, Planned
from .journal import FileRecord
from .pool import SessionPool
from .survey import Sides
from .tree import is_racy, same_mtime, source_time_unchanged

#: How far the destination's listed time may be from the one the journal recorded for
#: the file and still count as untouched: a FAT32 disk keeps times to 2 s, so the time
#: fsmove gave reads back up to 2 s off. A rewrite there stamps the time of the rewrite,
#: far from the source's time the copy gave it; nothing is lost by the slack.
DST_TIME_SLACK = 2.0


@dataclass(frozen=True, slots=True)
class FolderPlan:
    """The decisions for one folder: its own files, never its subfolders'. A big folder
    the destination lacks comes in parts (``march.py``): several plans of one path, each
    with its own files and subfolders, ``missing`` on the first only."""

    path: str
    #: Every source file of the folder (copied or skipped).
    files: int
    bytes: int
    to_copy: list[Entry]
    skipped: list[Entry]
    to_delete: list[Entry]
    #: The destination lacks this folder (it is made before its first file).
    missing: bool
    #: This job's temporary files found in the destination folder.
    dst_temps: list[str]
    #: The folder is only on the destination (the source has no folder there): with
    #: ``--delete`` it goes too, once its files are gone (deletion.py).
    dst_only: bool = False
    #: Its subfolders the destination lacks (each decided later, ``missing`` then):
    #: known here first, so a copy can start making a few of them ahead.
    missing_children: tuple[str, ...] = ()
    #: The source's permission bits of those subfolders where it shows them: a private
    #: one is made private (``copy/folders.py``).
    child_modes: Mapping[str, int | None] = field(default_factory=dict)
    #: Why the destination's listing of this folder failed (None: it was listed). Its
    #: files were then taken as absent: copied again, none skipped, none deleted.
    dst_unlisted: str | None = None
    #: The destination's mtime of each skipped file, as listed (the journal keeps it:
    #: a later change there is then seen, ``PlanRules.decide``).
    dst_mtimes: Mapping[str, float | None] = field(default_factory=dict)


@dataclass
class PlanTally:
    """Running totals of the folders decided so far: the ``Planned`` event of a copy
    whose walk is still going (``complete=False``), then of the whole plan."""

    files_total: int = 0
    bytes_total: int = 0
    files_to_copy: int = 0
    bytes_to_copy: int = 0
    files_skipped: int = 0
    bytes_skipped: int = 0
    dirs_to_create: int = 0
    files_to_delete: int = 0

    def add(self, folder: FolderPlan) -> None:
        self.files_total += folder.files
        self.bytes_total += folder.bytes
        self.files_to_copy += len(folder.to_copy)
        self.bytes_to_copy += sum(e.size for e in folder.to_copy)
        self.files_skipped += len(folder.skipped)
        self.bytes_skipped += sum(e.size for e in folder.skipped)
        self.dirs_to_create += folder.missing
        self.files_to_delete += len(folder.to_delete)

    def event(self, *, complete: bool) -> Planned:
        return Planned(
            files_total=self.files_total,
            bytes_total=self.bytes_total,
            files_to_copy=self.files_to_copy,
            bytes_to_copy=self.bytes_to_copy,
            files_skipped=self.files_skipped,
            bytes_skipped=self.bytes_skipped,
            dirs_to_create=self.dirs_to_create,
            files_to_delete=self.files_to_delete,
            complete=complete,
        )


#: Seconds between two ``Planned`` events of a growing plan: the first folder decided
#: is shown at once, the totals are never more than this late, and a plan of 100,000
#: folders does not stream 100,000 plan events.
PLAN_EVENTS_EVERY = 0.5


class GrowingPlan:
    """Emits the running totals of ``tally`` (``Planned``, ``complete=False``) as the
    march adds folders to it: at once after a quiet spell, else at most every
    ``PLAN_EVENTS_EVERY`` seconds (a timer on the running loop shows the last change)."""

    def __init__(self, tally: PlanTally, *, emit: Callable[[Event], None]) -> None:
        self._tally = tally
        self._emit = emit
        self._loop = asyncio.get_running_loop()
        self._shown = -PLAN_EVENTS_EVERY
        self._timer: asyncio.TimerHandle | None = None

    def changed(self) -> None:
        wait = self._shown + PLAN_EVENTS_EVERY - self._loop.time()
        if wait <= 0:
            self._show()
        elif self._timer is None:
            self._timer = self._loop.call_later(wait, self._show)

    def _show(self) -> None:
        if self._timer is not None:
            # Shown at once by ``changed`` while a timer was still due (a loop too busy
            # to run it on time): that timer must not show the totals again later,
            # after ``stop`` (a running total after the whole plan, seen under load).
            self._timer.cancel()
            self._timer = None
        self._shown = self._loop.time()
        self._emit(self._tally.event(complete=False))

    def stop(self) -> None:
        if self._timer is not None:
            self._timer.cancel()
            self._timer = None


@dataclass
class CopyPlan:
    """What a copy will do, every folder collected (a dry run, ``fsmove migrate``'s
    plan); ``event()`` is the run's ``Planned`` event."""

    sides: Sides
    to_copy: list[Entry] = field(default_factory=list)
    skipped: list[Entry] = field(default_factory=list)
    to_delete: list[Entry] = field(default_factory=list)
    #: Destination folders to make: every source folder the destination lacks.
    missing_dirs: set[str] = field(default_factory=set)
    dst_temps: list[str] = field(default_factory=list)
    tally: PlanTally = field(default_factory=PlanTally)

    def add(self, folder: FolderPlan) -> None:
        self.tally.add(folder)
        self.to_copy += folder.to_copy
        self.skipped += folder.skipped
        self.to_delete += folder.to_delete
        self.dst_temps += folder.dst_temps
        if folder.missing:
            self.missing_dirs.add(folder.path)

    @property
    def files_total(self) -> int:
        return self.tally.files_total

    @property
    def bytes_total(self) -> int:
        return self.tally.bytes_total

    @property
    def files_to_copy(self) -> int:
        return self.tally.files_to_copy

    @property
    def bytes_to_copy(self) -> int:
        return self.tally.bytes_to_copy

    @property
    def files_to_delete(self) -> int:
        return self.tally.files_to_delete

    def event(self) -> Planned:
        return self.tally.event(complete=True)


class JobRecords(Protocol):
    """What the skip rule asks of the job's journal: the writer (``Journal``) or, in a
    dry run, a read-only view of it (``journal_view.JournalView``)."""

    def get_many(self, paths: Sequence[str]) -> dict[str, FileRecord]: ...

    def checked(self, path: str, read_at: float) -> None: ...


class FileRules:
    """The copy-or-skip rule of one run, applied to one folder at a time."""

    def __init__(self, *, sides: Sides, src: SessionPool, dst: SessionPool,
                 journal: JobRecords | None, checksum: bool, preserve_mtime: bool,
                 compares_at_once: int) -> None:
        self._src = src
        self._dst = dst
        self._journal = journal
        self._checksum = checksum
        self._preserve_mtime = preserve_mtime
        self._sides = sides
        self._tolerance = sides.mtime_tolerance
        #: ``--checksum`` reads both sides of the files whose sizes match, this many
        #: files at a time across every folder being decided.
        self._compares = asyncio.Semaphore(max(1, compares_at_once))

    async def decide(self, src_files: Iterable[Entry], dst_files: Mapping[str, Entry]
                     ) -> tuple[list[Entry], list[Entry]]:
        """(to copy, to skip) of ``src_files``; ``dst_files`` holds the destination's
        regular files by path.

        A file this job copied (or skipped) before whose source time is no longer the
        one it recorded is copied again, whatever the destination's time says: two
        stores' times are compared with a tolerance of a second or more (the
        destination may keep whole seconds only), and a file rewritten at the same size
        within that second (an app's last write before a migration's final pass) would
        otherwise be skipped as identical."""
        tolerance = self._tolerance
        src_resolution = self._sides.src_caps.mtime_resolution
        to_copy: list[Entry] = []
        skipped: list[Entry] = []
        maybe_same: list[tuple[Entry, Entry]] = []
        racy_ones: list[tuple[Entry, Entry, FileRecord]] = []
        pairs = [(e, dst_files.get(e.path)) for e in src_files]
        journal = self._journal
        records = (journal.get_many([e.path for e, d in pairs
                                     if d is not None and d.size == e.size])
                   if journal is not None and not self._checksum else {})
        for e, d in pairs:
            if d is None or d.kind is not EntryKind.FILE or d.size != e.size:
                to_copy.append(e)
                continue
            if self._checksum:
                maybe_same.append((e, d))
                continue
            rec = records.get(e.path)
            known = rec is not None and rec.state in ("done", "skipped") and rec.size == e.size
            if known and rec is not None and rec.mtime is not None and e.mtime is not None \
                    and not source_time_unchanged(rec.mtime, e.mtime,
                                                  resolution=src_resolution):
                to_copy.append(e)  # changed at the source since this job saw it
                continue
            # Copied (or skipped) by this job within a minute of the source's time: a
            # rewrite in that same second, at the same size, left size and time as
            # they were, so only the bytes can tell (a migration's final pass skipped
            # an app's last write: session 36).
            racy = known and rec is not None and is_racy(rec.mtime, rec.updated)
            if self._preserve_mtime and same_mtime(e.mtime, d.mtime, tolerance=tolerance):
                (racy_ones.append((e, d, rec)) if racy and rec is not None
                 else skipped.append(e))
                continue
            if (
                known and rec is not None
                and source_time_unchanged(rec.mtime, e.mtime, resolution=src_resolution)
                and (rec.dst_mtime is None or d.mtime is None  # a time not known
                     or same_mtime(rec.dst_mtime, d.mtime,
                                   tolerance=max(tolerance, DST_TIME_SLACK)))
            ):
                # Copied by an earlier run; the destination keeps its size.
                (racy_ones.append((e, d, rec)) if racy else skipped.append(e))
            else:
                to_copy.append(e)
        if maybe_same:
            same = await asyncio.gather(*(self._same_content(e, d) for e, d in maybe_same))
            for (e, _d), equal in zip(maybe_same, same, strict=True):
                (skipped if equal else to_copy).append(e)
        if racy_ones:
            same = await asyncio.gather(*(self._still_as_read(e, d, rec)
                                          for e, d, rec in racy_ones))
            for (e, _d, _rec), equal in zip(racy_ones, same, strict=True):
                (skipped if equal else to_copy).append(e)
        return to_copy, skipped

    async def _still_as_read(self, e: Entry, d: Entry, rec: FileRecord) -> bool:
        """Whether a racy file (``tree.is_racy``) still holds what this job placed: the
        source read whole to the digest the copy recorded, or (a file skipped before,
        no digest) both sides read to the same one. The journal then dates the record
        from this read, so a later run reads it again only while it is still racy."""
        if not (rec.state == "done" and rec.digest and rec.algorithm == ALGORITHM):
            started = time.time()
            same = await self._same_content(e, d)
        else:
            async with self._compares:
                started = time.time()
                try:
                    got = await read_file_digest(self._src, e.path)
                except BackendError:
                    return False
            same = got.digest == rec.digest and got.size == e.size
        if same and self._journal is not None:
            self._journal.checked(e.path, started)
        return same

    async def _same_content(self, e: Entry, d: Entry) -> bool:
        """Whether both read whole to the same digest (a side that cannot be read: not
        the same)."""
        async with self._compares:
            try:
                a, b = await asyncio.gather(read_file_digest(self._src, e.path),
                                            read_file_digest(self._dst, d.path))
            except BackendError:
                return False
            return a.digest == b.digest


def is_at_or_below(path: str, roots: set[str]) -> bool:
    """Whether ``path`` is one of ``roots`` or inside one of them."""
    if not roots:
        return False
    if "" in roots:
        return True  # the root itself
    while path:
        if path in roots:
            return True
        path = parent_of(path)
    return False


def deletions(
    dst_files: Mapping[str, Entry], src_files: Mapping[str, Entry] | set[str],
    blind: Iterable[str],
) -> list[Entry]:
    """The destination files ``--delete`` removes: not in the source, and not at or
    below a source path in ``blind`` (not copied, or not readable)."""
    unseen = set(blind)
    return [
        d for p, d in dst_files.items()
        if p not in src_files and not is_at_or_below(p, unseen)
    ]
