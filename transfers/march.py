"""The march: the source and the destination walked together, folder by folder (rclone's
``fs/march``), each folder decided as soon as both sides of it are listed.

A folder is listed on the source and, only when the destination has it (known from the
destination's listing of its parent), on the destination too; the two listings run at
once. Its files are then decided by ``plan.py``'s rules and the ``FolderPlan`` handed to
the consumer while other folders are still being listed: ``CopyEngine.run()`` starts
copying the first folder's files at once, ``CopyEngine.plan()`` collects them all.

* **A folder the destination lacks (or holds empty) is decided in parts** as its
  listing arrives (``PART_FIRST`` entries, then parts growing to ``PART_MOST``): there
  is nothing to compare or delete, so its first files are copied while a folder of
  50,000 is still being listed (a first run's first byte, whatever the folder's size).
  A path may then come in several ``FolderPlan``s: only the first says ``missing``,
  each names the subfolders listed in it (``missing_children``, walked at once). A
  listing cut and tried again adds only what the cut one had not brought
  (``walk.fill_listing``), so no file is planned twice. A folder with anything at the
  destination is decided whole.

* **Bounded memory**: no whole-tree listing of either side is ever held. What waits is
  the folders still to list (their paths) and at most ``listings_at_once`` decided
  folders the consumer has not taken yet: when it stops taking (its workers are busy),
  the march stops listing.
* **Depth first**: the folders still to list are a stack, so the walk reaches files
  (and the copy its first byte) after a handful of listings whatever the tree's size,
  and the stack holds a path per folder of the current branches, not a whole level.
* **Names that differ by case or Unicode normalization alone** (``name_twins.py``):
  on a destination that holds such twins as one name (asked only when a pair turns
  up), the second of two twins in a source folder is refused, and a destination name
  that is a source name's twin is taken as the source's entry (compared with it,
  never deleted).
* **Folders only on the destination** are walked too (as an empty source): what
  ``--delete`` would remove there, and this job's stale temporary files, are found in
  them as anywhere else. Never below a source path fsmove did not look into: a source
  symlink, special file or folder that could not be listed keeps the destination's
  subtree at that path out of the march (``plan.py``: the "blind" rule).
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Callable, Collection
from dataclasses import dataclass, replace
from typing import Protocol, TypeGuard

from .backend import Entry, EntryKind
from .name_twins import FolderNames, Folding, differences, twin_variants
from .plan import FileRules, FolderPlan, deletions
from .policy import RetryPolicy
from .pool import SessionPool
from .produced import produced
from .survey import Sides
from .together import run_together
from .tree import TreeRules
from .walk import FolderListing, WalkIssue, fill_listing, list_folder


@dataclass(frozen=True, slots=True)
class _Folder:
    path: str
    in_src: bool
    in_dst: bool


_FOLDING_WORDS: dict[Folding, str] = {"case": "case",
                                       "normalization": "Unicode normalization"}


def _ways(a: str, b: str) -> str:
    """How twins ``a`` and ``b`` differ, for people: "case and Unicode normalization"."""
    return " and ".join(_FOLDING_WORDS[f] for f in differences(a, b))

#: A folder the destination lacks is decided in parts as its listing arrives: the first
#: once this many entries are listed (a smaller folder is one part, as if listed whole),
#: each next one at least twice the last, up to ``PART_MOST``.
PART_FIRST = 64
PART_MOST = 4096


class NameGate(Protocol):
    """What the destination cannot hold at a source path (``copy/name_gate.py``)."""

    def suspect(self, entry: Entry) -> bool: ...

    async def refusal(self, entry: Entry) -> str | None: ...

    async def folds(self, folding: Folding) -> bool | None: ...

    def unasked(self, path: str, question: str) -> bool: ...


def _forget(tasks: set[asyncio.Future[None]]) -> Callable[[asyncio.Future[None]], None]:
    def done(task: asyncio.Future[None]) -> None:
        tasks.discard(task)
        if not task.cancelled():
            task.exception()  # retrieved: the listing's reader raised it (``fail``)
    return done


class _SourceFolder:
    """A source folder's listing as the march reads it: the scout's (``listed``) while it
    lasts, else the march's own (``own`` starts it). A scout's listing cancelled midway
    goes on in one of the march's own, without what was already read."""

    def __init__(self, ahead: FolderListing | None,
                 own: Callable[[], tuple[FolderListing, asyncio.Future[None]]]) -> None:
        self._own: Callable[[], tuple[FolderListing, asyncio.Future[None]]] | None = own
        self._task: asyncio.Future[None] | None = None
        if ahead is not None:
            self._listing = ahead
        else:
            self._listing = self._list_it()

    def _list_it(self) -> FolderListing:
        assert self._own is not None
        listing, self._task = self._own()
        self._own = None
        return listing

    async def whole(self) -> list[Entry | WalkIssue]:
        await self._listing.wait()
        if self._listing.cancelled() and self._own is not None:
            self._listing = self._list_it()
        return await self._listing.whole()

    async def parts(self) -> AsyncIterator[tuple[list[Entry | WalkIssue], bool]]:
        """``FolderListing.parts`` of the listing read (``PART_FIRST``, ``PART_MOST``)."""
        given: set[str] = set()
        async for part, last in self._listing.parts(first=PART_FIRST, most=PART_MOST):
            if last and self._listing.cancelled() and self._own is not None:
                break  # the scout's, abandoned: the rest comes from a listing of ours
            if self._own is not None:
                given.update(item.path for item in part)
            yield part, last
        if self._listing.cancelled() and self._own is not None:
            self._listing = self._list_it()
            async for part, last in self._listing.parts(first=PART_FIRST, most=PART_MOST):
                yield [item for item in part if item.path not in given], last

    def close(self) -> None:
        """Stop the march's own listing if it still runs (the scout's ends with the
        scout)."""
        if self._task is not None and not self._task.done():
            self._task.cancel()


async def march(
    src: SessionPool,
    dst: SessionPool,
    *,
    sides: Sides,
    src_rules: TreeRules,
    dst_rules: TreeRules,
    rules: FileRules,
    listings_at_once: int,
    retry: RetryPolicy,
    on_issue: Callable[[WalkIssue], None],
    listed: Callable[[str], asyncio.Future[list[Entry | WalkIssue]] | None] | None = None,
    dst_names: NameGate | None = None,
) -> AsyncIterator[FolderPlan]:
    """Yield each folder's decisions (the root first); ``on_issue`` hears of every
    source path the march refused or could not list, as it is found. A listing cut
    by a dropped connection is tried again under ``retry`` (listings now run while
    files are copied, through the same network trouble). ``listed(path)``: a source
    folder's listing made ahead by the same rules (``scout.py``), taken instead of
    listing it again; None, or a listing that was cancelled, and the march lists it.
    The destination root's listing made during the survey (``Sides.dst_root_listing``)
    is taken the same way. ``dst_names``: what the destination cannot hold at a source
    path (``copy/name_gate.py``); such a file or folder is refused like a name the walk
    refuses, and never deleted there."""
    concurrency = max(1, listings_at_once)
    pending: asyncio.LifoQueue[_Folder | None] = asyncio.LifoQueue()
    out: asyncio.Queue[FolderPlan | BaseException | None] = asyncio.Queue(maxsize=concurrency)
    outstanding = 1
    pending.put_nowait(_Folder("", in_src=True, in_dst=sides.dst_root_exists))
    #: The source listings the march runs itself (cancelled if it stops early).
    tasks: set[asyncio.Future[None]] = set()

    def open_src(path: str) -> _SourceFolder:
        ahead = listed(path) if listed is not None else None

        def own() -> tuple[FolderListing, asyncio.Future[None]]:
            listing = FolderListing()
            task = asyncio.ensure_future(fill_listing(listing, src, path,
                                                      skip=src_rules.skips, retry=retry))
            tasks.add(task)
            task.add_done_callback(_forget(tasks))
            return listing, task

        return _SourceFolder(ahead, own)

    async def list_dst(path: str) -> list[Entry | WalkIssue]:
        ahead = sides.take_dst_root_listing() if path == "" else None
        if ahead is not None:
            await asyncio.wait([ahead])  # as list_src: a cancelled one is listed again
            if not ahead.cancelled():
                items: list[Entry | WalkIssue] = ahead.result()
                return items
        return await list_folder(dst, path, skip=dst_rules.skips, retry=retry)

    def suspect(item: Entry | WalkIssue) -> TypeGuard[Entry]:
        """Whether the destination gate must look at ``item`` (no await for most)."""
        return (dst_names is not None and not isinstance(item, WalkIssue)
                and dst_names.suspect(item))

    async def refused_name(item: Entry) -> WalkIssue | None:
        assert dst_names is not None
        why = await dst_names.refusal(item)
        if why is None:
            return None
        if item.kind is EntryKind.DIR:
            why += " (nothing in this folder is copied)"
        return WalkIssue(path=item.path, reason=why)

    async def held_as_one(a: str, b: str) -> bool | None:
        """Whether the destination holds twins ``a`` and ``b`` as one name (None: it
        could not be asked)."""
        if dst_names is None:
            return False
        unknown = False
        for folding in differences(a, b):
            folds = await dst_names.folds(folding)
            if folds is False:
                return False
            unknown = unknown or folds is None
        return None if unknown else True

    async def refused_twin(item: Entry, twins: list[str], names: FolderNames
                           ) -> WalkIssue | None:
        """``item`` refused when a name kept before it in its folder is its twin
        (``name_twins.py``) and the destination would hold both as one: the first is
        copied. Refused too while the destination cannot be asked (the rerun asks
        again): a second twin placed on the first would pass every check of its
        placing. Otherwise ``item`` is kept (a later twin is compared with it too)."""
        if dst_names is not None:
            ways = _ways(twins[0], item.name)
            if dst_names.unasked(item.path, (
                    f"it differs from {twins[0]!r} in the same folder by {ways} alone: a "
                    f"destination that ignores {ways} (a Windows server or disk, macOS) "
                    "holds both as one name; the real run asks the destination first, "
                    f"and there copies only {twins[0]!r}")):
                names.keep(item.name)  # a dry run: planned as on a Linux server
                return None
        unasked = None
        for twin in twins:
            one = await held_as_one(twin, item.name)
            if one:
                ways = _ways(twin, item.name)
                why = (f"the destination does not tell this name from {twin!r} in the "
                       f"same folder (it ignores {ways}): only {twin!r} is copied; rename "
                       "one of them at the source")
                break
            if one is None:
                unasked = twin
        else:
            if unasked is None:
                names.keep(item.name)
                return None
            why = (f"it differs from {unasked!r} in the same folder by case or accents "
                   "alone, and the destination could not be asked whether it tells them "
                   "apart (its scratch file could not be written or looked up at the "
                   "destination root): not copied this run; rerun")
        if item.kind is EntryKind.DIR:
            why += " (nothing in this folder is copied)"
        return WalkIssue(path=item.path, reason=why)

    async def match_twins(src_paths: set[str], dst_files: dict[str, Entry],
                          dst_dirs: list[str]) -> list[str]:
        """On a destination that holds twins as one name, its ``logo.png`` where the
        source has ``Logo.png`` is that source file (one file there): compared with it,
        never deleted, never walked as a folder of the destination's own. While the
        destination cannot be asked, such a name is left out of both sides' comparison
        (nothing deleted, nothing skipped on a guess). Returns the destination's
        folders under their source names."""
        variants = twin_variants(src_paths, [*dst_files, *dst_dirs])
        if not variants:
            return dst_dirs
        renamed: dict[str, str | None] = {}  # a destination folder's source name, or None
        for there, here in variants.items():
            if dst_names is not None:
                ways = _ways(there, here)
                if dst_names.unasked(there, (
                        f"differs from the source's {here.rsplit('/', 1)[-1]!r} by {ways} alone: a "
                        f"destination that ignores {ways} holds them as one name, then "
                        "this is the source's entry there (compared with it, never "
                        "deleted); the real run asks the destination first")):
                    continue  # a dry run: two names, as on a Linux server
            one = await held_as_one(there, here)
            if one is False:
                continue
            found = dst_files.pop(there, None)
            if one and found is not None and here not in dst_files:
                dst_files[here] = replace(found, path=here)
            renamed[there] = here if one else None
        dirs = []
        for d in dst_dirs:
            name = renamed.get(d, d)
            if name is not None:
                dirs.append(name)
        return dirs

    async def decide(folder: _Folder) -> AsyncIterator[FolderPlan]:
        source = open_src(folder.path) if folder.in_src else None
        try:
            dst_items = await list_dst(folder.path) if folder.in_dst else []
            # (A link or special file there is something to compare with: a source entry
            # of its name is refused, ``refuse_kind_conflicts``.)
            if source is not None and not any(
                    isinstance(i, Entry) or (isinstance(i, WalkIssue) and i.special)
                    for i in dst_items):
                # Nothing there to compare with or delete: the folder's files are
                # decided in parts as its listing arrives (the first ones copied
                # while a big folder is still being listed). A destination folder
                # that could not be listed is taken so too, and said (``dst_unlisted``).
                unlisted = next((i.reason for i in dst_items if isinstance(i, WalkIssue)
                                 and i.unreadable and i.path == folder.path), None)
                async for plan in decide_in_parts(folder, source, unlisted):
                    yield plan
                return
            src_items = await source.whole() if source is not None else []
        finally:
            if source is not None:
                source.close()
        yield await decide_whole(folder, src_items, dst_items)

    async def decide_in_parts(folder: _Folder, source: _SourceFolder,
                              dst_unlisted: str | None = None
                              ) -> AsyncIterator[FolderPlan]:
        missing = bool(folder.path) and not folder.in_dst
        told = False  # a part of this folder was yielded
        names = FolderNames()  # its names by their loosest key (``name_twins.py``)
        async for part, last in source.parts():
            files: list[Entry] = []
            dirs: list[str] = []
            modes: dict[str, int | None] = {}
            for item in part:
                if suspect(item) and (issue := await refused_name(item)):
                    item = issue
                elif (isinstance(item, Entry) and (twins := names.twins_of(item.name))
                      and (issue := await refused_twin(item, twins, names))):
                    item = issue
                if isinstance(item, WalkIssue):
                    on_issue(item)
                elif item.kind is EntryKind.DIR:
                    dirs.append(item.path)
                    modes[item.path] = item.mode
                else:
                    files.append(item)
            if not files and not dirs and (told or not last):
                continue  # nothing new (each folder is yielded at least once)
            to_copy, skipped = await rules.decide(files, {})
            # Its subfolders as they come (all missing at the destination too): a
            # folder of 50,000 folders has the first ones walked while it is listed.
            children = [_Folder(d, in_src=True, in_dst=False) for d in dirs]
            await add_pending(children)
            yield FolderPlan(path=folder.path, files=len(files),
                             bytes=sum(e.size for e in files), to_copy=to_copy,
                             skipped=skipped, to_delete=[], missing=missing, dst_temps=[],
                             missing_children=tuple(c.path for c in children),
                             child_modes=modes,
                             dst_unlisted=None if told else dst_unlisted)
            missing = False  # made once: the first part says so
            told = True

    async def decide_whole(folder: _Folder, src_items: list[Entry | WalkIssue],
                           dst_items: list[Entry | WalkIssue]) -> FolderPlan:
        src_files: list[Entry] = []
        src_dirs: list[str] = []
        src_dir_modes: dict[str, int | None] = {}
        #: Source paths of this folder held in a form fsmove does not copy, or that
        #: could not be listed (the folder itself included).
        blind: set[str] = set()
        names = FolderNames()  # its names by their loosest key (``name_twins.py``)
        for item in src_items:
            if suspect(item) and (issue := await refused_name(item)):
                blind.add(item.path)  # its name at the destination is not this file's
                item = issue
            elif (isinstance(item, Entry) and (twins := names.twins_of(item.name))
                  and (issue := await refused_twin(item, twins, names))):
                blind.add(item.path)  # its name at the destination is its twin's
                item = issue
            if isinstance(item, WalkIssue):
                if item.unreadable or item.special:
                    blind.add(item.path)
                on_issue(item)
            elif item.kind is EntryKind.DIR:
                src_dirs.append(item.path)
                src_dir_modes[item.path] = item.mode
            else:
                src_files.append(item)
        dst_files: dict[str, Entry] = {}
        dst_dirs: list[str] = []
        dst_special: set[str] = set()
        temps: list[str] = []
        dst_unlisted = None
        src_paths = {e.path for e in src_files}
        if folder.path not in blind:  # a source folder that could not be listed
            for item in dst_items:
                if isinstance(item, WalkIssue):
                    # An unreadable destination folder counts as empty (its files
                    # are copied again); the engine says so where --delete asked.
                    if item.unreadable and item.path == folder.path:
                        dst_unlisted = item.reason
                    if item.special:
                        dst_special.add(item.path)
                    continue
                if item.kind is EntryKind.DIR:
                    dst_dirs.append(item.path)
                elif dst_rules.is_job_temp(item) and item.path not in src_paths:
                    temps.append(item.path)  # (one the source holds is the user's)
                elif dst_rules.is_server_file(item) and item.path not in src_paths:
                    continue  # the server's own (not_the_tree.py): never copied over, deleted
                else:
                    dst_files[item.path] = item
        if dst_items:
            dst_dirs = await match_twins({e.path for e in src_files} | set(src_dirs),
                                        dst_files, dst_dirs)
        in_dst = set(dst_dirs)
        src_dirs, src_files = refuse_kind_conflicts(src_dirs, src_files, dst_files, in_dst,
                                                    dst_special)
        to_copy, skipped = await rules.decide(src_files, dst_files)
        to_delete = deletions(dst_files, {e.path for e in src_files}, blind)
        children = [_Folder(d, in_src=True, in_dst=d in in_dst) for d in src_dirs]
        in_src = set(src_dirs)
        children += [_Folder(d, in_src=False, in_dst=True) for d in dst_dirs
                     if d not in in_src and d not in blind]
        await add_pending(children)
        return FolderPlan(
            path=folder.path, files=len(src_files), bytes=sum(e.size for e in src_files),
            to_copy=to_copy, skipped=skipped, to_delete=to_delete,
            missing=bool(folder.path) and folder.in_src and not folder.in_dst,
            dst_temps=temps, dst_only=bool(folder.path) and not folder.in_src,
            missing_children=tuple(c.path for c in children if c.in_src and not c.in_dst),
            child_modes={c.path: src_dir_modes.get(c.path) for c in children
                         if c.in_src and not c.in_dst},
            dst_unlisted=dst_unlisted,
            dst_mtimes={e.path: dst_files[e.path].mtime for e in skipped},
        )

    def refuse_kind_conflicts(src_dirs: list[str], src_files: list[Entry],
                              dst_files: dict[str, Entry], dst_dirs: set[str],
                              dst_special: Collection[str] = (),
                              ) -> tuple[list[str], list[Entry]]:
        """A source folder where the destination holds a file, or a source file where
        it holds a folder: refused (the rest of the copy goes on, exit 3), never
        replaced in place. Without this, the folder's MKD failed and stopped the whole
        copy (an adversarial sweep). The destination's entry is the user's and stays
        (a run with a failure deletes nothing, even with ``--delete``).

        A source entry whose name the destination's listing shows as a symbolic link
        (or a device, a socket...) is refused too, from the listing alone: the write
        path's own check asks the server (``lstat``), and proftpd's mod_sftp answers
        an LSTAT of a link to a folder with the folder's attributes, so a copy wrote
        through ``sub -> ../elsewhere`` outside the destination root (session 31)."""
        advice = "remove it at the destination, then rerun"
        link = ("the destination holds a symbolic link or special file where the source "
                f"has this {{}}; fsmove never writes through one: {advice}")
        kept_dirs = []
        for d in src_dirs:
            found = dst_files.get(d)
            if d in dst_special:
                on_issue(WalkIssue(path=d, reason=link.format("folder")))
            elif found is not None and found.kind is EntryKind.FILE:
                on_issue(WalkIssue(path=d, reason="the destination holds a file where the "
                                   f"source has this folder; {advice}"))
            else:
                kept_dirs.append(d)
        kept_files = []
        for e in src_files:
            if e.path in dst_special:
                on_issue(WalkIssue(path=e.path, reason=link.format("file")))
            elif e.path in dst_dirs:
                on_issue(WalkIssue(path=e.path, reason="the destination holds a folder "
                                   f"where the source has this file; {advice}"))
            else:
                kept_files.append(e)
        return kept_dirs, kept_files

    async def add_pending(children: list[_Folder]) -> None:
        nonlocal outstanding
        outstanding += len(children)
        for child in reversed(children):  # the first listed is the next taken
            pending.put_nowait(child)

    async def worker() -> None:
        nonlocal outstanding
        while True:
            folder = await pending.get()
            if folder is None:
                return
            async for plan in decide(folder):
                await out.put(plan)
            outstanding -= 1
            if outstanding == 0:
                for _ in range(concurrency):
                    pending.put_nowait(None)

    try:
        async for item in produced(out, run_together([worker() for _ in range(concurrency)])):
            yield item
    finally:
        for task in tasks:
            task.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)
