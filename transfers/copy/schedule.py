"""The files decided and waiting for a worker: big files first (largest first among
those waiting) but never more than ``big_limit`` of them at once while small files
wait, so thousands of small files keep flowing beside them.

The march fills it folder by folder while the workers empty it. It holds at most
``max_waiting`` files: the march's next file waits for room (back-pressure: until half
of it is free), so a tree of a million files never has more than that many transfers in
memory. One waiting
worker is woken per file queued (never all of them: 128 workers and 100,000 files).
"""

from __future__ import annotations

import asyncio
import heapq
import itertools
from collections import deque

from .transfer import FileTransfer

#: Files decided and waiting for a worker, at most (each a few hundred bytes): enough
#: to keep every worker busy between two folders, small beside the pipes' buffers.
FILES_WAITING = 2048


class TransferQueue:
    def __init__(self, *, big_threshold: int, big_limit: int, max_waiting: int) -> None:
        self._big_threshold = big_threshold
        self._big_limit = max(1, big_limit)
        self._max_waiting = max(1, max_waiting)
        self._big: list[tuple[int, int, FileTransfer]] = []
        self._small: deque[FileTransfer] = deque()
        self._order = itertools.count()
        self._big_running = 0
        self._closed = False
        self._stopped = False
        self._workers_waiting: deque[asyncio.Future[None]] = deque()
        self._room: asyncio.Future[None] | None = None

    @property
    def waiting(self) -> int:
        return len(self._big) + len(self._small)

    async def put(self, transfer: FileTransfer) -> bool:
        """Queue one file, waiting for room; False when the queue was stopped (the
        file is not queued)."""
        while not self._stopped and self.waiting >= self._max_waiting:
            self._room = asyncio.get_running_loop().create_future()
            await self._room
        if self._stopped:
            return False
        if transfer.entry.size >= self._big_threshold:
            heapq.heappush(self._big, (-transfer.entry.size, next(self._order), transfer))
        else:
            self._small.append(transfer)
        self._wake_one()
        return True

    def close(self) -> None:
        """No more files will come: workers end once the queue is empty."""
        self._closed = True
        self._wake_all()

    def stop(self) -> list[FileTransfer]:
        """Start nothing more (the destination is full); the files still waiting."""
        self._stopped = True
        left = [t for _s, _n, t in self._big] + list(self._small)
        self._big.clear()
        self._small.clear()
        self._wake_all()
        return left

    async def take(self) -> tuple[FileTransfer, bool] | None:
        """The next file for a worker and whether it is a big one (hand it back with
        ``finished``); None when there is nothing more to do."""
        while True:
            if self._stopped:
                return None
            picked = self._pick()
            if picked is not None:
                # The march goes on once half the room is free (not after every file:
                # one wake-up per thousand files, not one per file).
                if (self._room is not None and not self._room.done()
                        and self.waiting <= self._max_waiting // 2):
                    self._room.set_result(None)
                return picked
            if self._closed:
                return None
            waiter = asyncio.get_running_loop().create_future()
            self._workers_waiting.append(waiter)
            try:
                await waiter
            except asyncio.CancelledError:
                if waiter in self._workers_waiting:
                    self._workers_waiting.remove(waiter)
                raise

    def finished(self, *, big: bool) -> None:
        if big:
            self._big_running -= 1

    def _pick(self) -> tuple[FileTransfer, bool] | None:
        if self._big and (self._big_running < self._big_limit or not self._small):
            self._big_running += 1
            return heapq.heappop(self._big)[2], True
        if self._small:
            return self._small.popleft(), False
        return None

    def _wake_one(self) -> None:
        while self._workers_waiting:
            waiter = self._workers_waiting.popleft()
            if not waiter.done():
                waiter.set_result(None)
                return

    def _wake_all(self) -> None:
        while self._workers_waiting:
            waiter = self._workers_waiting.popleft()
            if not waiter.done():
                waiter.set_result(None)
        if self._room is not None and not self._room.done():
            self._room.set_result(None)
