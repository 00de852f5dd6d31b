"""An SFTP side's sessions follow its measured round trip (transfers/sftp/round_trip.py,
transfers/session_count.py ``PIPELINED_*``): two where the link is short, the default
eight over a WAN. A real sshd, directly and behind the latency relay. Counted, never
timed: the relay's delay makes every reading at least its round trip, whatever the
machine's load, and nothing asserts how short a direct reading is."""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from pathlib import Path

import pytest

from fsmove.transfers.backend import Capabilities, EntryKind
from fsmove.transfers.endpoint import parse_endpoint
from fsmove.transfers.pool import SessionPool
from fsmove.transfers.session_count import (
    LAN_ROUND_TRIP,
    LOCAL_ROUND_TRIP,
    PIPELINED_LOCAL_SESSIONS,
    PIPELINED_WAN_SESSIONS,
    SAMPLES_TO_GROW,
    sessions_for_files,
    sessions_worth_opening,
    streams_worth_running,
)
from fsmove.transfers.sftp import SftpStore
from fsmove.transfers.sftp.round_trip import PINGS_PER_SESSION
from tests.servers import RunningServer
from tests.servers.cuts import relay_known_hosts, sftp_url_via
from tests.servers.ports import free_port
from tests.servers.relay import start_relay

#: One way through the relay: every reading is at least twice this, over LAN_ROUND_TRIP.
DELAY = 0.010
#: What an SFTP store reports: many operations per session.
PIPELINED = 32


def test_a_pipelined_side_takes_two_sessions_unless_a_reading_says_wan() -> None:
    """Sessions that carry many files each (SFTP): two on a short link and until a
    first reading; the default eight from a first reading of a WAN (none reads under
    ``LAN_ROUND_TRIP``; a short link read slow gets what it had before the tiers). No
    growth for many files, no LAN stream bound (both measured on FTP)."""
    assert LAN_ROUND_TRIP < 2 * DELAY
    wan, lan, local = LAN_ROUND_TRIP * 4, (LOCAL_ROUND_TRIP + LAN_ROUND_TRIP) / 2, 0.0005

    def caps(rtt: float, samples: int) -> Capabilities:
        return Capabilities(ops_per_session=PIPELINED, round_trip=rtt,
                            round_trip_samples=samples)

    assert sessions_worth_opening(caps(float("inf"), 0)) == PIPELINED_LOCAL_SESSIONS
    for samples in (1, SAMPLES_TO_GROW, 40):
        assert sessions_worth_opening(caps(wan, samples)) == PIPELINED_WAN_SESSIONS == 8
        assert sessions_worth_opening(caps(lan, samples)) == PIPELINED_LOCAL_SESSIONS
    assert sessions_worth_opening(caps(local, 40)) == PIPELINED_LOCAL_SESSIONS == 2
    assert sessions_for_files(caps(local, 40), 10**9) is None
    assert sessions_for_files(caps(wan, 40), 10**9) is None
    ftp_local = Capabilities(round_trip=local, round_trip_samples=40)
    assert streams_worth_running(caps(local, 40), ftp_local, 16) == 16
    assert streams_worth_running(ftp_local, ftp_local, 16) == 4
    # A store that measures nothing keeps the scheme's default.
    assert sessions_worth_opening(Capabilities(ops_per_session=PIPELINED)) is None


class _Readings(list[tuple[float, int, int]]):
    """(shortest, samples, the pool's cap) at each reading, recorded after the pool's
    own watcher ran (the pool registered first)."""

    def __init__(self, store: SftpStore, pool: SessionPool) -> None:
        super().__init__()
        self._came = asyncio.Event()
        store.watch_round_trip(self._seen)
        self._pool = pool

    def _seen(self, shortest: float, samples: int) -> None:
        self.append((shortest, samples, self._pool.stats.cap))
        self._came.set()

    async def until(self, count: int) -> None:
        """Until ``count`` readings came (each session's pings are on their way: the
        bound fails the test rather than hang it)."""
        async with asyncio.timeout(60):
            while len(self) < count:
                self._came.clear()
                await self._came.wait()


@pytest.mark.interop
def test_each_sftp_session_measures_its_round_trip_and_the_pool_hears_it(
    sshd_server: RunningServer, fresh_subdir: Callable[[RunningServer], RunningServer]
) -> None:
    """A direct session: ``PINGS_PER_SESSION`` readings, the store's capabilities say
    them, the pool's cap is the one ``sessions_worth_opening`` gives for them."""
    server = fresh_subdir(sshd_server)

    async def go() -> None:
        store = SftpStore(parse_endpoint(server.url()).with_password(server.password),
                          known_hosts=server.known_hosts, timeout=20.0)
        pool = SessionPool(store, max_sessions=8, auto_cap=True)
        readings = _Readings(store, pool)
        try:
            caps = await pool.capabilities()
            assert caps.ops_per_session > 1
            await readings.until(PINGS_PER_SESSION)
            shortest, samples, cap = readings[-1]
            assert samples == PINGS_PER_SESSION and 0 < shortest < 60
            assert cap == sessions_worth_opening(Capabilities(
                ops_per_session=caps.ops_per_session, round_trip=shortest,
                round_trip_samples=samples))
            async with pool.session() as session:  # the pings left the session usable
                assert (await session.stat("")).kind is EntryKind.DIR
        finally:
            await pool.aclose()

    asyncio.run(go())


@pytest.mark.interop
def test_a_wan_sftp_side_starts_at_two_sessions_and_takes_eight_at_its_first_reading(
    sshd_server: RunningServer, fresh_subdir: Callable[[RunningServer], RunningServer],
    tmp_path: Path,
) -> None:
    """Behind the relay every reading is a WAN's: the cap is two until the first
    reading, eight from it on; the readings never go under the relay's round trip."""
    server = fresh_subdir(sshd_server)
    port = free_port()

    async def go() -> None:
        endpoint = parse_endpoint(sftp_url_via(server, port)).with_password(server.password)
        store = SftpStore(endpoint, timeout=20.0,
                          known_hosts=relay_known_hosts(server, port, tmp_path / "kh"))
        pool = SessionPool(store, max_sessions=8, auto_cap=True)
        readings = _Readings(store, pool)
        try:
            await pool.capabilities()
            assert pool.stats.cap == PIPELINED_LOCAL_SESSIONS  # nothing settled yet
            await readings.until(PINGS_PER_SESSION)
            assert [r[1] for r in readings[:PINGS_PER_SESSION]] == \
                list(range(1, PINGS_PER_SESSION + 1))
            assert all(r[2] == PIPELINED_WAN_SESSIONS for r in readings)
            assert all(r[0] >= 2 * DELAY for r in readings)
        finally:
            await pool.aclose()

    with start_relay(listen_host=server.host, target_host=server.host,
                     ports={port: server.port}, one_way_delay=DELAY):
        asyncio.run(go())


class _CountingSftpStore(SftpStore):
    logins = 0

    async def _log_in(self, *, first: bool = False):  # type: ignore[no-untyped-def]
        self.logins += 1
        return await super()._log_in(first=first)


@pytest.mark.interop
def test_no_session_is_opened_beside_the_ones_ahead_before_the_side_is_sized(
    sshd_server: RunningServer, fresh_subdir: Callable[[RunningServer], RunningServer]
) -> None:
    """Eight borrowers that do not wait for the capabilities (the roots' looks and
    listings at a copy's start) share the two sessions logged in ahead: a side whose
    cap comes from its measured round trip (maybe two) logs in no third before it
    knows it. A side whose cap the user chose still spreads them at once."""
    server = fresh_subdir(sshd_server)

    async def borrowers(pool: SessionPool, store: _CountingSftpStore) -> int:
        async def look() -> None:
            async with pool.session(before_capabilities=True) as session:
                await session.stat("")

        try:
            pool.open_ahead(2)
            await asyncio.gather(*(look() for _ in range(8)))
            return store.logins
        finally:
            await pool.aclose()

    def store() -> _CountingSftpStore:
        return _CountingSftpStore(
            parse_endpoint(server.url()).with_password(server.password),
            known_hosts=server.known_hosts, timeout=20.0)

    async def go() -> None:
        sized_later = store()
        assert await borrowers(SessionPool(sized_later, max_sessions=8, auto_cap=True),
                               sized_later) == 2
        chosen = store()
        assert await borrowers(SessionPool(chosen, max_sessions=8), chosen) > 2

    asyncio.run(go())
