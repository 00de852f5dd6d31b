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
from .policy import NO_RETRIES, RetryPolicy, pause_before_retry
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


class FolderListing:
    """One folder's listing by the walk's rules as it arrives (``fill_listing`` adds to
    it): taken whole (``whole``), or in parts as its entries come (``parts``: the march
    decides a folder the destination lacks while a big one is still being listed)."""

    def __init__(self) -> None:
        #: What has arrived so far, in the order listed (``WalkIssue`` for refused names).
        self.items: list[Entry | WalkIssue] = []
        #: The listing failed for good (still after its retries): the folder's issue.
        self.unreadable: WalkIssue | None = None
        self._done = False
        self._cancelled = False
        self._error: BaseException | None = None
        self._changed = asyncio.Event()

    def add(self, item: Entry | WalkIssue) -> None:
        self.items.append(item)
        self._changed.set()

    def finish(self, unreadable: WalkIssue | None = None) -> None:
        self.unreadable = unreadable
        self._end()

    def fail(self, exc: BaseException) -> None:
        """Not a listing failure (those end in ``unreadable``): a bug, raised to readers."""
        self._error = exc
        self._end()

    def cancel(self) -> None:
        """Abandoned by its lister: a reader lists the folder itself (``cancelled``)."""
        self._cancelled = True
        self._end()

    def _end(self) -> None:
        self._done = True
        self._changed.set()

    def done(self) -> bool:
        return self._done

    def cancelled(self) -> bool:
        return self._cancelled

    async def wait(self) -> None:
        while not self._done:
            self._changed.clear()
            await self._changed.wait()

    async def whole(self) -> list[Entry | WalkIssue]:
        """The listing once ended (``list_folder``'s result): a failed one is its issue
        alone. Check ``cancelled()`` first: a cancelled listing has no result."""
        await self.wait()
        if self._error is not None:
            raise self._error
        if self.unreadable is not None:
            return [self.unreadable]
        return self.items

    async def parts(self, *, first: int = 1, most: int = 1
                    ) -> AsyncIterator[tuple[list[Entry | WalkIssue], bool]]:
        """What arrived since the last part, and whether it is the last: a part once at
        least ``first`` items are there (no timer: whatever the lister added while its
        reader waited or was busy), each next one at least twice the last up to ``most``,
        and the rest when the listing ends (with the ``unreadable`` issue if it failed).
        Ends early, at the last part so far, when cancelled (the reader goes on with a
        listing of its own)."""
        at = 0
        wanted = max(1, first)
        while True:
            if self._done:
                break
            if len(self.items) - at >= wanted:
                part = self.items[at:]
                at += len(part)
                wanted = max(wanted, min(2 * len(part), most))
                yield part, False
                continue
            self._changed.clear()
            await self._changed.wait()
        if self._error is not None:
            raise self._error
        rest = self.items[at:]
        if self.unreadable is not None:
            rest.append(self.unreadable)
        yield rest, True

async def fill_listing(
    listing: FolderListing, pool: SessionPool, directory: str, *,
    skip: Callable[[Entry], bool] | None = None, retry: RetryPolicy = NO_RETRIES,
    before_capabilities: bool = False, spare: int = 0,
) -> None:
    """List ``directory`` into ``listing`` by the walk's rules: hostile names, symlinks
    and special files come out as issues, a repeated entry once, ``skip`` applied. A
    listing cut for a retryable reason is tried again on a fresh session under
    ``retry``; what the cut one brought stays (a part may be decided already) and the
    new attempt adds only what it had not (the same ``seen``). One that fails for good
    ends ``unreadable``. ``before_capabilities``, ``spare``: see ``list_folder``."""
    seen: set[str] = set()
    attempt = 0
    try:
        while True:
            try:
                async with pool.session(before_capabilities=before_capabilities,
                                        spare=spare) as session:
                    async for e in session.list(directory):
                        item = _checked(directory, e, seen, skip)
                        if item is not None:
                            listing.add(item)
                break
            except BackendError as exc:
                if exc.retryable:
                    attempt = retry.next_attempt(attempt, progressed=False)
                    if not retry.gives_up(attempt):
                        await pause_before_retry(retry.delay(attempt))
                        continue
                listing.finish(WalkIssue(path=directory, reason=str(exc), unreadable=True))
                return
    except asyncio.CancelledError:
        listing.cancel()
        raise
    except BaseException as exc:
        listing.fail(exc)
        raise
    listing.finish()


def _checked(directory: str, e: Entry, seen: set[str],
             skip: Callable[[Entry], bool] | None) -> Entry | WalkIssue | None:
    """One listed entry by the walk's rules (None: left out)."""
    name = e.path.rsplit("/", 1)[-1] if e.path else ""
    inside = e.path == join_relpath(directory, name)
    if name in (".", "..") and inside:
        return None  # the folder itself and its parent, as some servers list them
    problem = name_problem(name) if inside else (
        "refused entry whose path is outside its directory"
    )
    if problem and inside and skip is not None and _one_component(name) and skip(e):
        # A name fsmove cannot carry (a newline or CR, not UTF-8, too long) that the
        # user's --include/--exclude leaves out anyway: not reported. (Reported, it made
        # a run that excluded it "partial", exit 3, whatever the filters said.) A name
        # holding "/" or NUL, or "." / "..", is a hostile listing: always reported.
        return None
    if problem:
        refused = join_relpath(directory, repr(name))
        key = "\0" + refused  # never a listed path (no name holds NUL)
        if key in seen:
            return None  # listed again by a retry
        seen.add(key)
        return WalkIssue(path=refused, reason=problem)
    if e.path in seen:
        return None
    seen.add(e.path)
    if skip is not None and skip(e):
        return None
    if e.kind is EntryKind.DIR or e.kind is EntryKind.FILE:
        return e
    return WalkIssue(path=e.path, reason=f"not a regular file ({e.kind.value}): skipped",
                     special=True)


def _one_component(name: str) -> bool:
    """Whether ``name`` is one path component however odd (no "/" nor NUL, not empty,
    "." or ".."): a path the filters can be asked about."""
    return name not in ("", ".", "..") and "/" not in name and "\x00" not in name


async def list_folder(
    pool: SessionPool, directory: str, *, skip: Callable[[Entry], bool] | None = None,
    retry: RetryPolicy = NO_RETRIES, before_capabilities: bool = False, spare: int = 0,
) -> list[Entry | WalkIssue]:
    """The entries directly inside ``directory`` by the walk's rules (``fill_listing``);
    a listing that fails for good is one ``unreadable`` issue for the folder.
    ``before_capabilities``: on a session lent before the store's capabilities are
    known (``SessionPool``): the destination root listed while its write probe runs.
    ``spare``: idle sessions left to others (``SessionPool.session``)."""
    listing = FolderListing()
    await fill_listing(listing, pool, directory, skip=skip, retry=retry,
                       before_capabilities=before_capabilities, spare=spare)
    return await listing.whole()


async def walk(
    pool: SessionPool,
    root: str = "",
    *,
    skip: Callable[[Entry], bool] | None = None,
    concurrency: int = 4,
    retry: RetryPolicy = NO_RETRIES,
) -> AsyncIterator[Entry | WalkIssue]:
    """Yield every file and directory below ``root`` (not ``root`` itself).

    ``skip(entry)`` returning True drops an entry (and, for a directory, its subtree).
    ``retry``: a listing that fails transiently (a dropped connection) is asked again
    on a fresh session as it says (verify's and the catch-up's walks: one lost
    connection made a whole folder "unreadable", as copy's own walk never did).
    """
    pending: asyncio.Queue[str | None] = asyncio.Queue()
    out: asyncio.Queue[Entry | WalkIssue | BaseException | None] = asyncio.Queue(maxsize=4096)
    outstanding = 1
    pending.put_nowait(root)
    lock = asyncio.Lock()

    async def list_one(directory: str) -> None:
        nonlocal outstanding
        for item in await list_folder(pool, directory, skip=skip, retry=retry):
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
