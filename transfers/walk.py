"""Streaming recursive listing of a store, with hostile names refused and reported.

``walk`` lists directories in parallel (as many as the pool lends sessions for) and
yields entries as they come, so a tree of 100,000 files starts flowing before the
listing ends and memory holds only the directories still to list.

Every listed name is checked before it is used to build a path (``tree.name_problem``:
empty, "." or "..", "/" or NUL or a newline, not UTF-8, over 255 bytes): such names are
never followed or copied; they come out as ``WalkIssue`` so the run can report them. A
listing that repeats an entry yields it once. Symlinks and special files are reported
as issues too (fsmove copies regular files and directories only).
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Callable
from dataclasses import dataclass

from .backend import BackendError, Entry, EntryKind, join_relpath
from .policy import NO_RETRIES, RetryPolicy
from .pool import SessionPool
from .produced import produced
from .together import run_together
from .tree import name_problem


@dataclass(frozen=True, slots=True)
class WalkIssue:
    """A path the walk refused or could not list, with a one-line reason."""

    path: str
    reason: str
    #: The listing failed (permission, network): the subtree could not be read.
    unreadable: bool = False
    #: A symlink, device, socket or fifo: never copied, and that is not a failure.
    special: bool = False


async def list_folder(
    pool: SessionPool, directory: str, *, skip: Callable[[Entry], bool] | None = None,
    retry: RetryPolicy = NO_RETRIES, before_capabilities: bool = False, spare: int = 0,
) -> list[Entry | WalkIssue]:
    """The entries directly inside ``directory`` by the walk's rules: hostile names,
    symlinks and special files come out as issues, a listing that fails (for good, or
    still after ``retry``'s attempts on a fresh session) as one ``unreadable`` issue
    for the folder, a repeated entry once, ``skip`` applied. ``before_capabilities``:
    on a session lent before the store's capabilities are known (``SessionPool``):
    the destination root listed while its write probe runs. ``spare``: idle sessions
    left to others (``SessionPool.session``)."""
    out: list[Entry | WalkIssue] = []
    seen: set[str] = set()
    attempt = 0
    while True:
        try:
            async with pool.session(before_capabilities=before_capabilities,
                                    spare=spare) as session:
                entries = [e async for e in session.list(directory)]
            break
        except BackendError as exc:
            if exc.retryable:
                attempt = retry.next_attempt(attempt, progressed=False)
                if not retry.gives_up(attempt):
                    await asyncio.sleep(retry.delay(attempt))
                    continue
            return [WalkIssue(path=directory, reason=str(exc), unreadable=True)]
    for e in entries:
        name = e.path.rsplit("/", 1)[-1] if e.path else ""
        if name in (".", "..") and e.path == join_relpath(directory, name):
            continue  # the folder itself and its parent, as some servers list them
        problem = name_problem(name) if e.path == join_relpath(directory, name) else (
            "refused entry whose path is outside its directory"
        )
        if problem:
            out.append(WalkIssue(path=join_relpath(directory, repr(name)), reason=problem))
            continue
        if e.path in seen:
            continue
        seen.add(e.path)
        if skip is not None and skip(e):
            continue
        if e.kind is EntryKind.DIR or e.kind is EntryKind.FILE:
            out.append(e)
        else:
            out.append(
                WalkIssue(
                    path=e.path,
                    reason=f"not a regular file ({e.kind.value}): skipped",
                    special=True,
                )
            )
    return out


async def walk(
    pool: SessionPool,
    root: str = "",
    *,
    skip: Callable[[Entry], bool] | None = None,
    concurrency: int = 4,
) -> AsyncIterator[Entry | WalkIssue]:
    """Yield every file and directory below ``root`` (not ``root`` itself).

    ``skip(entry)`` returning True drops an entry (and, for a directory, its subtree).
    """
    pending: asyncio.Queue[str | None] = asyncio.Queue()
    out: asyncio.Queue[Entry | WalkIssue | BaseException | None] = asyncio.Queue(maxsize=4096)
    outstanding = 1
    pending.put_nowait(root)
    lock = asyncio.Lock()

    async def list_one(directory: str) -> None:
        nonlocal outstanding
        for item in await list_folder(pool, directory, skip=skip):
            if isinstance(item, Entry) and item.kind is EntryKind.DIR:
                async with lock:
                    outstanding += 1
                pending.put_nowait(item.path)
            await out.put(item)
        async with lock:
            outstanding -= 1
            if outstanding == 0:
                for _ in range(concurrency):
                    pending.put_nowait(None)

    async def worker() -> None:
        while True:
            directory = await pending.get()
            if directory is None:
                return
            await list_one(directory)

    async for item in produced(out, run_together([worker() for _ in range(concurrency)])):
        yield item
