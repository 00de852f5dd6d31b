"""``--bwlimit``: a token bucket, and a Store wrapper that paces every read through it.

As restic's ``internal/backend/limiter``, the limit is a decorator over the one store
interface (``backend.Store`` / ``backend.Session``), not an option each command reads:
``rate_limited(store, limiter)`` gives a store whose sessions take tokens for every
piece they read, so a copy and a verify given the same ``--bwlimit`` are paced by the
same code, and a new reader (a ``--checksum`` re-read, a digest comparison) cannot
forget it.

Only reads are paced: fsmove's ``--bwlimit`` has always been "the bytes read per second".
A copy writes what it read, so pacing its source reads paces its writes too; a verify
only reads. One limiter shared by both sides of a verify caps the two reads together
(both come in over the user's link).

Everything else a session or store has (health flags, counters, optional
capabilities) passes through untouched (``decorators.py``).
"""

from __future__ import annotations

import asyncio
import contextlib
import time
from collections.abc import AsyncIterator, Awaitable, Callable

from .backend import Entry, Session, Store
from .decorators import SessionDecorator, StoreDecorator


class RateLimiter:
    """A token bucket shared by every reader: ``take(n)`` waits until ``n`` bytes fit.

    ``clock`` and ``sleep`` are the wall clock and ``asyncio.sleep``; a test passes a
    virtual pair to check the accounting without waiting (``bytes_taken``: every byte
    that went through; ``seconds_waited``: the waits the bucket asked for)."""

    def __init__(
        self,
        bytes_per_second: float,
        *,
        clock: Callable[[], float] = time.monotonic,
        sleep: Callable[[float], Awaitable[None]] = asyncio.sleep,
    ) -> None:
        if bytes_per_second <= 0:
            raise ValueError("bytes_per_second must be positive")
        self.rate = bytes_per_second
        # Allow bursts of a quarter second (or one piece), so pacing stays smooth.
        self.capacity = max(bytes_per_second / 4, 256 * 1024)
        self._clock = clock
        self._sleep = sleep
        self._tokens = self.capacity
        self._stamp = clock()
        self._lock = asyncio.Lock()
        self.bytes_taken = 0
        self.seconds_waited = 0.0

    async def take(self, n: int) -> None:
        async with self._lock:
            now = self._clock()
            self._tokens = min(self.capacity, self._tokens + (now - self._stamp) * self.rate)
            self._stamp = now
            self._tokens -= n
            self.bytes_taken += n
            if self._tokens < 0:
                wait = -self._tokens / self.rate
                self.seconds_waited += wait
                await self._sleep(wait)


class RateLimitedSession(SessionDecorator):
    """A session whose reads take tokens from the limiter, piece by piece."""

    def __init__(self, inner: Session, limiter: RateLimiter) -> None:
        super().__init__(inner)
        self.limiter = limiter

    async def read(  # type: ignore[override]
        self, path: str, *, offset: int = 0, length: int | None = None,
        expect: Entry | None = None,
    ) -> AsyncIterator[bytes]:
        inner = self.inner.read(path, offset=offset, length=length, expect=expect)
        # Closing this reader early (an error in its consumer) closes the backend's at
        # once: an FTP read stopped in the middle must abort its transfer.
        async with contextlib.aclosing(inner):  # type: ignore[type-var]
            async for piece in inner:
                await self.limiter.take(len(piece))
                yield piece


class RateLimitedStore(StoreDecorator):
    """A store whose sessions are ``RateLimitedSession``; the rest passes through."""

    def __init__(self, inner: Store, limiter: RateLimiter) -> None:
        super().__init__(inner)
        self.limiter = limiter

    def wrap(self, session: Session) -> Session:
        return RateLimitedSession(session, self.limiter)


def rate_limited(store: Store, limiter: RateLimiter | None) -> Store:
    """``store`` with its reads paced by ``limiter``; ``store`` itself without one."""
    return store if limiter is None else RateLimitedStore(store, limiter)


def parse_rate(text: str) -> float:
    """'10M' -> 10 MiB/s; accepts B/K/M/G suffixes (binary), optional '/s' and 'iB'."""
    t = text.strip().lower().removesuffix("/s").removesuffix("ib").removesuffix("b")
    if not t:
        raise ValueError(f"invalid rate {text!r}: use a number with K, M or G, like 10M")
    mult = {"k": 1024, "m": 1024**2, "g": 1024**3}.get(t[-1], 1)
    num = t[:-1] if t[-1] in "kmg" else t
    try:
        value = float(num) * mult
    except ValueError:
        raise ValueError(f"invalid rate {text!r}: use a number with K, M or G, like 10M") from None
    if not value > 0 or value == float("inf"):
        raise ValueError(f"invalid rate {text!r}: must be a positive number, like 10M")
    return value
