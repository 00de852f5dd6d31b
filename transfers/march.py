"""The march: the source and the destination walked together, folder by folder (rclone's
``fs/march``), each folder decided as soon as both sides of it are listed.

A folder is listed on the source and, only when the destination has it (known from the
destination's listing of its parent), on the destination too; the two listings run at
once. Its files are then decided by ``plan.py``'s rules and the ``FolderPlan`` handed to
the consumer while other folders are still being listed: ``CopyEngine.run()`` starts
copying the first folder's files at once, ``CopyEngine.plan()`` collects them all.

* **Bounded memory**: no whole-tree listing of either side is ever held. What waits is
  the folders still to list (their paths) and at most ``listings_at_once`` decided
  folders the consumer has not taken yet: when it stops taking (its workers are busy),
  the march stops listing.
* **Depth first**: the folders still to list are a stack, so the walk reaches files
  (and the copy its first byte) after a handful of listings whatever the tree's size,
  and the stack holds a path per folder of the current branches, not a whole level.
* **Folders only on the destination** are walked too (as an empty source): what
  ``--delete`` would remove there, and this job's stale temporary files, are found in
  them as anywhere else. Never below a source path fsmove did not look into: a source
  symlink, special file or folder that could not be listed keeps the destination's
  subtree at that path out of the march (``plan.py``: the "blind" rule).
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Callable
from dataclasses import dataclass

from .backend import Entry, EntryKind
from .plan import FileRules, FolderPlan, deletions
from .policy import RetryPolicy
from .pool import SessionPool
from .produced import produced
from .survey import Sides
from .together import run_together
from .tree import TreeRules
from .walk import WalkIssue, list_folder


@dataclass(frozen=True, slots=True)
class _Folder:
    path: str
    in_src: bool
    in_dst: bool


async def _nothing() -> list[Entry | WalkIssue]:
    return []


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
) -> AsyncIterator[FolderPlan]:
    """Yield each folder's decisions (the root first); ``on_issue`` hears of every
    source path the march refused or could not list, as it is found. A listing cut
    by a dropped connection is tried again under ``retry`` (listings now run while
    files are copied, through the same network trouble). ``listed(path)``: a source
    folder's listing made ahead by the same rules (``scout.py``), taken instead of
    listing it again; None, or a listing that was cancelled, and the march lists it.
    The destination root's listing made during the survey (``Sides.dst_root_listing``)
    is taken the same way."""
    concurrency = max(1, listings_at_once)
    pending: asyncio.LifoQueue[_Folder | None] = asyncio.LifoQueue()
    out: asyncio.Queue[FolderPlan | BaseException | None] = asyncio.Queue(maxsize=concurrency)
    outstanding = 1
    pending.put_nowait(_Folder("", in_src=True, in_dst=sides.dst_root_exists))

    async def list_src(path: str) -> list[Entry | WalkIssue]:
        ahead = listed(path) if listed is not None else None
        if ahead is not None:
            await asyncio.wait([ahead])  # its cancellation is not ours: list it then
            if not ahead.cancelled():
                return ahead.result()
        return await list_folder(src, path, skip=src_rules.skips, retry=retry)

    async def list_dst(path: str) -> list[Entry | WalkIssue]:
        ahead = sides.take_dst_root_listing() if path == "" else None
        if ahead is not None:
            await asyncio.wait([ahead])  # as list_src: a cancelled one is listed again
            if not ahead.cancelled():
                items: list[Entry | WalkIssue] = ahead.result()
                return items
        return await list_folder(dst, path, skip=dst_rules.skips, retry=retry)

    async def decide(folder: _Folder) -> FolderPlan:
        src_items, dst_items = await asyncio.gather(
            list_src(folder.path) if folder.in_src else _nothing(),
            list_dst(folder.path) if folder.in_dst else _nothing(),
        )
        src_files: list[Entry] = []
        src_dirs: list[str] = []
        #: Source paths of this folder held in a form fsmove does not copy, or that
        #: could not be listed (the folder itself included).
        blind: set[str] = set()
        for item in src_items:
            if isinstance(item, WalkIssue):
                if item.unreadable or item.special:
                    blind.add(item.path)
                on_issue(item)
            elif item.kind is EntryKind.DIR:
                src_dirs.append(item.path)
            else:
                src_files.append(item)
        dst_files: dict[str, Entry] = {}
        dst_dirs: list[str] = []
        temps: list[str] = []
        if folder.path not in blind:  # a source folder that could not be listed
            for item in dst_items:
                if isinstance(item, WalkIssue):
                    continue  # an unreadable destination folder counts as empty
                if item.kind is EntryKind.DIR:
                    dst_dirs.append(item.path)
                elif dst_rules.is_job_temp(item):
                    temps.append(item.path)
                else:
                    dst_files[item.path] = item
        to_copy, skipped = await rules.decide(src_files, dst_files)
        to_delete = deletions(dst_files, {e.path for e in src_files}, blind)
        in_dst = set(dst_dirs)
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
        )

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
            await out.put(await decide(folder))
            outstanding -= 1
            if outstanding == 0:
                for _ in range(concurrency):
                    pending.put_nowait(None)

    async for item in produced(out, run_together([worker() for _ in range(concurrency)])):
        yield item
