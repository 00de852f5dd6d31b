"""Listings of bucket trees (path -> size, mtime) for the catch-up after a switch
(fsmove/clever/catchup.py decides from them).

A snapshot is taken around the last copy into the new bucket: the old tree listed just
before it, the new tree just after. What differs from the snapshot later tells who wrote
what since: a file the old bucket has changed (or gained, or lost) was the old app's
doing; a file the new bucket has changed was the new app's. Only the first kind is
carried over; a path with both is a conflict.
"""

from __future__ import annotations

import asyncio
from dataclasses import dataclass

from fsmove import event_loop
from fsmove.endpoint_access import ConnectOptions, open_store
from fsmove.transfers.backend import EntryKind
from fsmove.transfers.endpoint import Endpoint
from fsmove.transfers.policy import READ_RETRIES
from fsmove.transfers.pool import SessionPool
from fsmove.transfers.walk import WalkIssue, walk

Listing = dict[str, list[float]]  # path -> [size, mtime or -1]


@dataclass(frozen=True)
class Tree:
    """Every regular file of a tree, the paths it holds in a form fsmove does not look
    into (a symlink, a special file: the ``blind`` paths of transfers/plan.py), and its
    folders."""

    files: Listing
    blind: frozenset[str]
    dirs: frozenset[str] = frozenset()


async def _list(endpoint: Endpoint, connect: ConnectOptions) -> Tree:
    pool = SessionPool(open_store(endpoint, connect, writable=False), max_sessions=4)
    found: Listing = {}
    blind: set[str] = set()
    dirs: set[str] = set()
    try:
        async for item in walk(pool, "", retry=READ_RETRIES):
            if isinstance(item, WalkIssue):
                if item.unreadable:
                    raise OSError(f"cannot list {item.path or '/'} of {endpoint.display}: "
                                  f"{item.reason}")
                if item.special:
                    blind.add(item.path)
                continue
            if item.kind is EntryKind.DIR:
                dirs.add(item.path)
            elif item.kind is EntryKind.FILE:
                found[item.path] = [float(item.size),
                                    -1.0 if item.mtime is None else float(item.mtime)]
    finally:
        await pool.aclose()
    return Tree(files=found, blind=frozenset(blind), dirs=frozenset(dirs))


def read_trees(endpoints: list[Endpoint], connect: ConnectOptions) -> list[Tree]:
    """Each endpoint's tree, listed at once."""
    async def every() -> list[Tree]:
        return list(await asyncio.gather(*(_list(e, connect) for e in endpoints)))
    return event_loop.run(every())


def list_trees(endpoints: list[Endpoint], connect: ConnectOptions) -> list[Listing]:
    """Every file of each endpoint's tree, listed at once."""
    return [tree.files for tree in read_trees(endpoints, connect)]


def changed(now: Listing, before: Listing) -> set[str]:
    """Paths that are new or differ (size or mtime) in ``now``."""
    return {p for p, meta in now.items() if before.get(p) != meta}


def fnmatch_exact(path: str) -> str:
    """An include pattern (fsmove's Filters) that matches exactly ``path``."""
    escaped = "".join(f"[{c}]" if c in "*?[]" else c for c in path)
    return "/" + escaped
