"""Listings of bucket trees (path -> size, mtime) for the catch-up after the switch.

The final delta leaves both trees equal; a snapshot of both is saved right after it. After
the redeploy, what differs from the snapshot tells who wrote what since: a file the old
bucket has changed (or gained) was written by the old instances, still running until the
new deployment replaced them; a file the new bucket has changed was written by the new
app. Only the first kind is copied; a path with both is a conflict.
"""

from __future__ import annotations

import asyncio

from fsmove.endpoint_access import ConnectOptions, open_store
from fsmove.transfers.backend import EntryKind
from fsmove.transfers.endpoint import Endpoint
from fsmove.transfers.pool import SessionPool
from fsmove.transfers.walk import WalkIssue, walk

Listing = dict[str, list[float]]  # path -> [size, mtime or -1]


async def _list(endpoint: Endpoint, connect: ConnectOptions) -> Listing:
    pool = SessionPool(open_store(endpoint, connect, writable=False), max_sessions=4)
    found: Listing = {}
    try:
        async for item in walk(pool, ""):
            if isinstance(item, WalkIssue):
                if item.unreadable:
                    raise OSError(f"cannot list {item.path or '/'} of {endpoint.display}: "
                                  f"{item.reason}")
                continue
            if item.kind is EntryKind.FILE:
                found[item.path] = [float(item.size),
                                    -1.0 if item.mtime is None else float(item.mtime)]
    finally:
        await pool.aclose()
    return found


def list_trees(endpoints: list[Endpoint], connect: ConnectOptions) -> list[Listing]:
    """Every file of each endpoint's tree, listed at once."""
    async def both() -> list[Listing]:
        return list(await asyncio.gather(*(_list(e, connect) for e in endpoints)))
    return asyncio.run(both())


def changed(now: Listing, before: Listing) -> set[str]:
    """Paths that are new or differ (size or mtime) in ``now``."""
    return {p for p, meta in now.items() if before.get(p) != meta}


def fnmatch_exact(path: str) -> str:
    """An include pattern (fsmove's Filters) that matches exactly ``path``."""
    escaped = "".join(f"[{c}]" if c in "*?[]" else c for c in path)
    return "/" + escaped
