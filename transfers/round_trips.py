"""The round trip a store measured: the shortest reading, how many readings, and who
is told of each (``backend.WatchesRoundTrip``: the pool, which sizes the side from them
in transfers/session_count.py). FTP reads one at each login (transfers/ftp/store.py),
SFTP on each new session (transfers/sftp/round_trip.py)."""

from __future__ import annotations

from collections.abc import Callable


class RoundTripReadings:
    def __init__(self) -> None:
        #: The shortest reading so far (seconds); ``inf`` before the first.
        self.shortest = float("inf")
        self.samples = 0
        self._watchers: list[Callable[[float, int], None]] = []

    def watch(self, watcher: Callable[[float, int], None]) -> None:
        """``watcher(shortest, samples)`` after each reading."""
        self._watchers.append(watcher)

    def seen(self, seconds: float) -> None:
        self.shortest = min(self.shortest, seconds)
        self.samples += 1
        for watcher in self._watchers:
            watcher(self.shortest, self.samples)
