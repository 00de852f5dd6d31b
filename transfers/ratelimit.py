"""A token bucket shared by every worker: ``--bwlimit`` caps the bytes read per second."""

from __future__ import annotations

import asyncio
import time


class RateLimiter:
    def __init__(self, bytes_per_second: float) -> None:
        if bytes_per_second <= 0:
            raise ValueError("bytes_per_second must be positive")
        self.rate = bytes_per_second
        # Allow bursts of a quarter second (or one piece), so pacing stays smooth.
        self.capacity = max(bytes_per_second / 4, 256 * 1024)
        self._tokens = self.capacity
        self._stamp = time.monotonic()
        self._lock = asyncio.Lock()

    async def take(self, n: int) -> None:
        async with self._lock:
            now = time.monotonic()
            self._tokens = min(self.capacity, self._tokens + (now - self._stamp) * self.rate)
            self._stamp = now
            self._tokens -= n
            if self._tokens < 0:
                await asyncio.sleep(-self._tokens / self.rate)


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
