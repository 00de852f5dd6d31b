"""The source listed ahead while the survey still runs (the destination's write probe).

An FTP destination's write probe is a dozen round trips in a row (``ftp/probe.py``: 0.8
s behind a 60 ms link) during which the march cannot decide anything: its decisions
need the destination's capabilities. The source is known readable long before that
(its checks are two round trips), so the scout lists it meanwhile, depth first like the
march, with the march's own rules (``walk.fill_listing``: skips, hostile names, retries),
and keeps each folder's listing for the march to take instead of listing it again. The
source's sessions log in during the probe too, instead of after it.

Bounded: it stops starting listings once the survey is done (``stop``) or once it holds
``max_entries`` listed entries (the march takes and drops them); listings under way then
finish and are kept. A listing the march asks for while the scout runs it is read as it
arrives (in parts, for a folder the destination lacks), never made twice. Reads only:
nothing is written anywhere.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable

from .backend import Entry, EntryKind
from .policy import RetryPolicy
from .pool import SessionPool
from .walk import FolderListing, fill_listing

#: Listed entries the scout holds at most (the march takes them as it goes): ~5 MB.
MAX_ENTRIES = 20_000
#: Idle source sessions a listing below the root leaves to the files decided meanwhile
#: while the pool may still log in another (``SessionPool.session``): with the real
#: tree behind a 60 ms link, the scout took the three sessions logged in ahead as soon as
#: the root was listed, and the first file waited ~0.2 s for one of them.
SPARE = 1


class SourceScout:
    def __init__(self, src: SessionPool, *, skip: Callable[[Entry], bool],
                 retry: RetryPolicy, at_once: int, max_entries: int = MAX_ENTRIES) -> None:
        self._src = src
        self._skip = skip
        self._retry = retry
        self._at_once = max(1, at_once)
        self._max_entries = max_entries
        self._listings: dict[str, FolderListing] = {}
        #: Listings done and not taken yet, whose entries count in ``_held``.
        self._counted: dict[str, bool] = {}
        self._to_list: list[str] = [""]
        self._held = 0
        self._stopped = False
        self._wake = asyncio.Event()
        self._running = 0
        #: Folders the march asked for: the scout no longer lists them.
        self._claimed: set[str] = set()
        #: Folders listed by the scout (for tests and notes).
        self.listed = 0

    def stop(self) -> None:
        """Start no more listings (those under way finish and are kept)."""
        self._stopped = True
        self._wake.set()

    def take(self, path: str) -> FolderListing | None:
        """The scout's listing of ``path`` (done or under way, read whole or in parts
        as it arrives), handed over once; None when the scout did not list it (the
        march lists it itself)."""
        self._claimed.add(path)
        listing = self._listings.pop(path, None)
        if listing is not None and self._counted.pop(path, False):
            self._held -= len(listing.items)
        return listing

    def _can_start(self) -> bool:
        return (not self._stopped and bool(self._to_list)
                and self._held < self._max_entries)

    async def run(self) -> None:
        """List until stopped, bounded, or the whole tree is listed."""
        workers = [asyncio.ensure_future(self._worker()) for _ in range(self._at_once)]
        try:
            await asyncio.gather(*workers)
        finally:
            for w in workers:
                w.cancel()
            await asyncio.gather(*workers, return_exceptions=True)
            for listing in self._listings.values():
                if not listing.done():
                    listing.cancel()  # the march lists those itself

    async def _worker(self) -> None:
        while True:
            while not self._can_start():
                if self._stopped or (not self._to_list and self._running == 0) \
                        or self._held >= self._max_entries:
                    return
                self._wake.clear()
                await self._wake.wait()
            path = self._to_list.pop()
            if path in self._claimed:
                continue  # the march lists it itself
            listing = FolderListing()
            self._listings[path] = listing
            self._running += 1
            try:
                # The root is the march's first need; below it the scout guesses,
                # so it leaves an idle session to the first files (``SPARE``).
                await fill_listing(listing, self._src, path, skip=self._skip,
                                   retry=self._retry, spare=SPARE if path else 0)
            finally:
                self._running -= 1
                self._wake.set()
            self.listed += 1
            # (A folder that could not be listed: its issue alone, as for the march.)
            items = listing.items if listing.unreadable is None else []
            if path in self._listings:  # not taken yet: counted as held
                self._held += len(items)
                self._counted[path] = True
            # Depth first, the first listed taken next (as the march does).
            for item in reversed(items):
                if isinstance(item, Entry) and item.kind is EntryKind.DIR:
                    self._to_list.append(item.path)
