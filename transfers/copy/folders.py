"""Destination folders: each missing one made once, parents first, as the first file
below it needs it (overlapping the copy), then the ones no file needed (empty folders).
"""

from __future__ import annotations

import asyncio

from ..backend import BackendError, NoSpaceError, PermanentError, parent_of
from ..pool import SessionPool
from ..together import mark_seen


class DestinationFolderError(PermanentError):
    """A destination folder cannot be made (not writable...): the copy stops."""


class DestinationFolders:
    def __init__(self, dst: SessionPool, *, at_once: int) -> None:
        self.dst = dst
        self._at_once = max(1, at_once)
        #: Destination folders still to make, and the tasks making them.
        self._missing: set[str] = set()
        self._tasks: dict[str, asyncio.Future[None]] = {}

    def add_missing(self, folder: str) -> None:
        """A folder the march did not find at the destination (its parent was
        decided, and added if missing, before it)."""
        self._missing.add(folder)

    async def make_remaining(self) -> None:
        """Make every folder no file needed (``at_once`` at a time)."""
        sem = asyncio.Semaphore(self._at_once)

        async def one(d: str) -> None:
            async with sem:
                await self.ensure(d)

        await asyncio.gather(*(one(d) for d in sorted(self._missing)))

    async def ensure(self, d: str) -> None:
        """Make destination folder ``d`` (parents first, each folder once, one command
        each) if the march found it missing. A refusal for good (not writable...) stops
        the whole copy with that message: nothing below that folder can be copied."""
        if d not in self._missing:
            return
        task = self._tasks.get(d)
        if task is None:
            task = asyncio.ensure_future(self._make(d))
            # A waiter cancelled before the task ends (the copy stopping) detaches from
            # it; its failure is still taken here, never left "never retrieved".
            task.add_done_callback(mark_seen)
            self._tasks[d] = task
        try:
            await asyncio.shield(task)
        except BackendError:
            if self._tasks.get(d) is task:
                del self._tasks[d]  # a retry (of any file below) tries again
            raise

    async def _make(self, d: str) -> None:
        await self.ensure(parent_of(d))
        try:
            async with self.dst.session() as s:
                await s.mkdir(d)
        except BackendError as exc:
            if exc.retryable or isinstance(exc, NoSpaceError):
                raise
            raise DestinationFolderError(str(exc), path=d) from None
        self._missing.discard(d)

    async def stop(self) -> None:
        """Folder tasks outlive the waiter that stopped the copy: end them before the
        pools close (else they fail later on a closed pool, unseen)."""
        tasks = [t for t in self._tasks.values() if not t.done()]
        for t in tasks:
            t.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)
