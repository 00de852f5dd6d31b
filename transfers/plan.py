"""The plan of a copy: from the survey of both sides, what to copy, what to skip, what
``--delete`` removes and which destination folders are missing. It writes nothing.

* A file is copied unless the destination has a regular file of the same size and
  either (``--checksum``) the same content digest, or the same mtime (within both
  stores' resolution), or the journal says an earlier run copied it from a source of
  that size and mtime (a destination that cannot keep mtimes).
* ``--delete`` removes a destination file only when the source was seen whole and has
  no such file. Where the source has something fsmove does not copy or could not read
  (a symlink, a special file, a folder it could not list), the destination's files at
  that path *and below it* are left alone: the source holds that subtree in a form
  fsmove did not look into, so their absence proves nothing. (A source ``media ->
  /real`` with a real ``media/`` at the destination deletes nothing there.)
"""

from __future__ import annotations

import asyncio
from collections.abc import Iterable, Mapping
from dataclasses import dataclass

from .backend import BackendError, Entry, EntryKind, parent_of
from .digest_read import read_file_digest
from .events import Planned
from .journal import Journal
from .pool import SessionPool
from .survey import Survey
from .tree import same_mtime


@dataclass(frozen=True)
class CopyPlan:
    """What a copy will do; ``event()`` is the ``Planned`` event of the run."""

    survey: Survey
    to_copy: list[Entry]
    skipped: list[Entry]
    to_delete: list[Entry]
    #: Destination folders to make: every source folder, and the parent of every file
    #: to copy, that the destination lacks.
    missing_dirs: set[str]

    @property
    def files_total(self) -> int:
        return len(self.survey.src_files)

    @property
    def bytes_total(self) -> int:
        return sum(e.size for e in self.survey.src_files.values())

    @property
    def files_to_copy(self) -> int:
        return len(self.to_copy)

    @property
    def bytes_to_copy(self) -> int:
        return sum(e.size for e in self.to_copy)

    @property
    def files_to_delete(self) -> int:
        return len(self.to_delete)

    def event(self) -> Planned:
        return Planned(
            files_total=self.files_total,
            bytes_total=self.bytes_total,
            files_to_copy=self.files_to_copy,
            bytes_to_copy=self.bytes_to_copy,
            files_skipped=len(self.skipped),
            bytes_skipped=sum(e.size for e in self.skipped),
            dirs_to_create=len(self.missing_dirs),
            files_to_delete=self.files_to_delete,
        )


async def make_plan(found: Survey, *, src: SessionPool, dst: SessionPool,
                    journal: Journal | None, checksum: bool, preserve_mtime: bool,
                    compares_at_once: int) -> CopyPlan:
    """Decide every file of the survey (``--checksum`` reads both sides of the files
    whose sizes match, ``compares_at_once`` files at a time)."""
    src_files, dst_files = found.src_files, found.dst_files
    tolerance = max(found.src_caps.mtime_resolution, found.dst_caps.mtime_resolution, 1.0)
    to_copy: list[Entry] = []
    skipped: list[Entry] = []
    maybe_same: list[tuple[Entry, Entry]] = []
    for path, e in src_files.items():
        d = dst_files.get(path)
        if d is None or d.kind is not EntryKind.FILE or d.size != e.size:
            to_copy.append(e)
            continue
        if checksum:
            maybe_same.append((e, d))
            continue
        if preserve_mtime and same_mtime(e.mtime, d.mtime, tolerance=tolerance):
            skipped.append(e)
            continue
        rec = journal.get(path) if journal is not None else None
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
        same = await _same_content(maybe_same, src=src, dst=dst, at_once=compares_at_once)
        for (e, _d), equal in zip(maybe_same, same, strict=True):
            (skipped if equal else to_copy).append(e)
    # Never delete at or below what the source has in a form fsmove does not copy (a
    # symlink) or could not read.
    to_delete = deletions(dst_files, src_files, found.blind)
    needed_dirs = set(found.src_dirs) | {parent_of(e.path) for e in to_copy}
    missing_dirs = {d for d in needed_dirs if d and d not in found.dst_dirs}
    return CopyPlan(survey=found, to_copy=to_copy, skipped=skipped, to_delete=to_delete,
                    missing_dirs=missing_dirs)


async def _same_content(pairs: list[tuple[Entry, Entry]], *, src: SessionPool,
                        dst: SessionPool, at_once: int) -> list[bool]:
    """For each (source, destination) pair: whether both read whole to the same digest
    (a side that cannot be read: not the same)."""
    sem = asyncio.Semaphore(max(1, at_once))

    async def one(e: Entry, d: Entry) -> bool:
        async with sem:
            try:
                a, b = await asyncio.gather(read_file_digest(src, e.path),
                                            read_file_digest(dst, d.path))
            except BackendError:
                return False
            return a.digest == b.digest

    return list(await asyncio.gather(*(one(e, d) for e, d in pairs)))


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
    dst_files: Mapping[str, Entry], src_files: Mapping[str, Entry], blind: Iterable[str]
) -> list[Entry]:
    """The destination files ``--delete`` removes: not in the source, and not at or
    below a source path in ``blind`` (not copied, or not readable)."""
    unseen = set(blind)
    return [
        d for p, d in dst_files.items()
        if p not in src_files and not is_at_or_below(p, unseen)
    ]
