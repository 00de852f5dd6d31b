"""A byte budget: files held at once by their size, not only by their count.

``Limits.files_at_once`` bounds how many files are copied at once; over a long link
with sessions that carry many requests (SFTP) many files in flight are what fill the
link (Little's law), but a small file holds up to its own size in memory while it is
copied (``stream_threshold``: just under 1 MiB). ``ByteBudget`` lets each small file
in only while the sizes of those in flight stay under ``Limits.small_bytes_at_once``,
so a tree of 900 KB photos holds at most that much, while a tree of 2 KB files runs
``files_at_once`` at once.

First come, first served (a big hold is not starved by small ones); a hold larger than
the whole budget waits until nothing else is held. Cancellation-safe: a waiter
cancelled before or after its grant never leaks bytes.
"""

from __future__ import annotations

import asyncio
from collections import deque


class ByteBudget:
    def __init__(self, limit: int) -> None:
        if limit < 1:
            raise ValueError("a byte budget must be at least 1 byte")
        self._limit = limit
        self._held = 0
        self._waiters: deque[tuple[int, asyncio.Future[None]]] = deque()

    @property
    def held(self) -> int:
        return self._held

    def _fits(self, n: int) -> bool:
        return self._held == 0 or self._held + n <= self._limit

    async def acquire(self, n: int) -> int:
        """Wait until ``n`` bytes fit; returns the bytes to ``release`` later."""
        n = max(0, n)
        if not self._waiters and self._fits(n):
            self._held += n
            return n
        fut: asyncio.Future[None] = asyncio.get_running_loop().create_future()
        self._waiters.append((n, fut))
        try:
            await fut
        except asyncio.CancelledError:
            if fut.done() and not fut.cancelled():
                self.release(n)  # granted, then cancelled before it could run
            else:
                self._wake()  # it may have been the head that held the others back
            raise
        return n

    def release(self, n: int) -> None:
        self._held -= n
        self._wake()

    def _wake(self) -> None:
        while self._waiters:
            n, fut = self._waiters[0]
            if fut.done():  # cancelled while waiting
                self._waiters.popleft()
                continue
            if not self._fits(n):
                return
            self._waiters.popleft()
            self._held += n
            fut.set_result(None)
