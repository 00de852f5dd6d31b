"""An SFTP store's round trip, measured on each session it logs in: the fact the pool
sizes the side from (``Capabilities.round_trip``, transfers/session_count.py decides).

An FTP store reads its round trip off each login's ``USER`` reply. Nothing in an SSH
login is a plain round trip (the key exchange, the password check and the SFTP
server's own start all cost the server CPU), so each new session, once its SFTP
version is known, asks ``PINGS_PER_SESSION`` ``realpath(".")`` one after the other and
times each answer: a round trip plus a ``realpath``, whatever the answer says (an error
reply is a round trip too). ``REALPATH`` because nothing else in fsmove asks it: the
requests a copy makes (and the tests that watch them) are left as they were. They are
written in the background; nothing waits for them, and a session that closes or fails
meanwhile just reports nothing.

Why it matters (session 26, ``benchmarks/README.md``): at RTT 0 two sessions a side
moved the benchmark's SFTP cells 8-50 % faster than the eight a WAN needs (each SSH
connection is a cipher stream in its own sshd process, on the same two cores as the
client), while over 60 ms the eight are worth it.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import Awaitable, Callable

import asyncssh

from ..round_trips import RoundTripReadings

#: Requests timed one after the other on each new session: the shortest
#: counts, so one answer slowed by a busy start does not decide.
PINGS_PER_SESSION = 2
#: Bound on each timed request (seconds): past it the sample is dropped, not counted.
PING_TIMEOUT = 30.0


class RoundTrips(RoundTripReadings):
    """The readings of a store's sessions (transfers/round_trips.py), and the requests
    that take them."""

    def __init__(self) -> None:
        super().__init__()
        self._tasks: set[asyncio.Task[None]] = set()

    def measure(self, sftp: asyncssh.SFTPClient,
                version_known: Callable[[], Awaitable[None]]) -> None:
        """Time ``PINGS_PER_SESSION`` requests on ``sftp`` once ``version_known()`` (the
        session's VERSION, if still on its way) returns."""
        task = asyncio.ensure_future(self._pings(sftp, version_known))
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)

    async def _pings(self, sftp: asyncssh.SFTPClient,
                     version_known: Callable[[], Awaitable[None]]) -> None:
        loop = asyncio.get_running_loop()
        try:
            await version_known()
            for _ in range(PINGS_PER_SESSION):
                started = loop.time()
                # An error reply (no such file, denied) is a round trip too.
                with contextlib.suppress(asyncssh.SFTPError):
                    async with asyncio.timeout(PING_TIMEOUT):
                        await sftp.realpath(".")
                self.seen(loop.time() - started)
        except Exception:  # closed, failed, timed out: said to whoever uses the session
            return

    async def aclose(self) -> None:
        """Stop every measurement still under way (the store closes)."""
        tasks = list(self._tasks)
        for task in tasks:
            task.cancel()
        with contextlib.suppress(Exception):
            await asyncio.gather(*tasks, return_exceptions=True)
