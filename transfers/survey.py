"""The survey: both sides' capabilities, roots and listings, before anything is planned.

Each side is a chain (capabilities, root, listing) and the two chains run at once: the
destination's write probe (dozens of round trips on FTP) overlaps the source's listing.
If either fails, the other is cancelled. Nothing is written at the destination before
the source proved readable; a dry run writes nothing at all (a missing destination
root is then an empty destination).
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from dataclasses import dataclass, field

from .backend import Capabilities, Entry, EntryKind, NotFoundError
from .pool import SessionPool
from .roots import check_root, make_root
from .together import run_together
from .tree import TreeRules
from .walk import WalkIssue, walk


@dataclass
class Survey:
    src_caps: Capabilities = field(default_factory=Capabilities)
    dst_caps: Capabilities = field(default_factory=Capabilities)
    src_files: dict[str, Entry] = field(default_factory=dict)
    src_dirs: list[str] = field(default_factory=list)
    dst_files: dict[str, Entry] = field(default_factory=dict)
    dst_dirs: set[str] = field(default_factory=set)
    #: This job's temporary files found at the destination.
    dst_temps: list[str] = field(default_factory=list)
    #: Source paths held in a form fsmove does not copy (a symlink, a special file) or
    #: could not list: ``--delete`` never deletes at or below them (plan.py).
    blind: set[str] = field(default_factory=set)


async def survey(src: SessionPool, dst: SessionPool, *, src_rules: TreeRules,
                 dst_rules: TreeRules, listings_at_once: int, dry_run: bool,
                 on_issue: Callable[[WalkIssue], None]) -> Survey:
    """List both sides; ``on_issue`` hears of every source path the walk refused or
    could not list, as it is found."""
    found = Survey()

    async def src_walk() -> None:
        async for item in walk(src, skip=src_rules.skips, concurrency=listings_at_once):
            if isinstance(item, WalkIssue):
                if item.unreadable or item.special:
                    found.blind.add(item.path)
                on_issue(item)
            elif item.kind is EntryKind.DIR:
                found.src_dirs.append(item.path)
            else:
                found.src_files[item.path] = item

    async def dst_walk() -> None:
        try:
            async with dst.session() as s:
                await s.stat("")
        except NotFoundError:
            return
        async for item in walk(dst, skip=dst_rules.skips, concurrency=listings_at_once):
            if isinstance(item, WalkIssue):
                continue
            if item.kind is EntryKind.DIR:
                found.dst_dirs.add(item.path)
            elif dst_rules.is_job_temp(item):
                found.dst_temps.append(item.path)
            else:
                found.dst_files[item.path] = item

    source_ok = asyncio.Event()

    async def src_side() -> None:
        found.src_caps = await src.capabilities()
        await check_root(src, "source")
        source_ok.set()
        await src_walk()

    async def dst_side() -> None:
        await source_ok.wait()  # not even a probe file on a wrong source password
        found.dst_caps = await dst.capabilities()
        if not dry_run and await make_root(dst):
            # The probe could not test writes in a folder that did not exist: now
            # it can (else mtimes and resume would stay off for the first run).
            found.dst_caps = await dst.refresh_capabilities()
        await dst_walk()

    await run_together([src_side(), dst_side()])
    return found
