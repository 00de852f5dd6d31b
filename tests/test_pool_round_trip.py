"""How many sessions a side logs in follows every login's round trip, not the first's
(transfers/session_count.py, ``SessionPool`` watching ``FtpStore``): a real vsftpd
behind the latency relay. Counted, never timed: the relay's delay makes every reading
at least its round trip, whatever the machine's load."""

from __future__ import annotations

import asyncio
import dataclasses
import os
from collections.abc import Callable
from pathlib import Path

import pytest

from fsmove.transfers import session_count
from fsmove.transfers.backend import Capabilities
from fsmove.transfers.endpoint import parse_endpoint
from fsmove.transfers.pool import SessionPool
from fsmove.transfers.session_count import (
    LAN_ROUND_TRIP,
    LAN_SESSIONS,
    LOCAL_MANY_FILES,
    LOCAL_ROUND_TRIP,
    LOCAL_SESSIONS,
    LOCAL_START_SESSIONS,
    MANY_FILES,
    SAMPLES_TO_GROW,
    WAN_SESSIONS,
    WAN_START_SESSIONS,
    WAN_TLS_SESSIONS,
    sessions_for_files,
    sessions_worth_opening,
)
from tests.servers import RunningServer
from tests.servers.cuts import ftp_url_via
from tests.servers.relay import start_relay
from tests.test_lan_streams import copy_to_ftp_sized
from tests.test_pool_open_ahead import CountingFtpStore, hold_at_once, logins_started

pytestmark = pytest.mark.interop

RELAY_HOST = "127.0.0.33"
#: One way: every login reads at least twice this, over ``LAN_ROUND_TRIP``.
DELAY = 0.010


def test_the_tiers_follow_the_shortest_reading_and_how_many_logins_read_it() -> None:
    """One reading (the first login's, often slow on a busy machine) buys no more than
    the local tier; from ``SAMPLES_TO_GROW`` readings the shortest decides."""
    assert LAN_ROUND_TRIP < 2 * DELAY
    wan = LAN_ROUND_TRIP * 4
    lan = (LOCAL_ROUND_TRIP + LAN_ROUND_TRIP) / 2
    for samples in range(SAMPLES_TO_GROW):
        assert sessions_worth_opening(Capabilities(
            round_trip=wan, round_trip_samples=samples)) == LOCAL_START_SESSIONS == 4
        assert sessions_worth_opening(Capabilities(
            round_trip=lan, round_trip_samples=samples)) == LOCAL_START_SESSIONS
    settled = SAMPLES_TO_GROW
    assert sessions_worth_opening(Capabilities(round_trip=wan, round_trip_samples=settled)
                                  ) == WAN_START_SESSIONS
    assert sessions_worth_opening(Capabilities(round_trip=wan, round_trip_samples=settled,
                                               tls_per_transfer=True)) == WAN_TLS_SESSIONS
    assert sessions_worth_opening(Capabilities(round_trip=lan, round_trip_samples=settled)
                                  ) == LAN_SESSIONS
    assert sessions_worth_opening(Capabilities(round_trip=LOCAL_ROUND_TRIP / 2,
                                               round_trip_samples=40)) == LOCAL_START_SESSIONS
    # A store that does not count its readings: the figure stands.
    assert sessions_worth_opening(Capabilities(round_trip=wan)) == WAN_START_SESSIONS


def test_a_long_run_repays_more_logins() -> None:
    """A side's cap for the files decided so far (``sessions_for_files``): the WAN's 64
    from ``MANY_FILES`` (plain FTP, settled readings); a switch away the local tier's 8
    from ``MANY_FILES`` and the LAN's from ``LOCAL_MANY_FILES``; nothing else grows."""
    assert WAN_START_SESSIONS < WAN_SESSIONS and MANY_FILES < LOCAL_MANY_FILES
    wan = LAN_ROUND_TRIP * 4
    lan = (LOCAL_ROUND_TRIP + LAN_ROUND_TRIP) / 2
    local = LOCAL_ROUND_TRIP / 2
    settled = SAMPLES_TO_GROW

    def grown(files: int, big: int = 0, **fields: object) -> int | None:
        return sessions_for_files(Capabilities(**fields), files, big)  # type: ignore[arg-type]

    assert grown(MANY_FILES - 1, round_trip=wan, round_trip_samples=settled) is None
    assert grown(MANY_FILES, round_trip=wan, round_trip_samples=settled) == WAN_SESSIONS
    assert grown(MANY_FILES, round_trip=wan) == WAN_SESSIONS  # readings not counted
    assert grown(10**9, round_trip=wan, round_trip_samples=settled - 1) is None
    assert grown(10**9, round_trip=wan, round_trip_samples=settled,
                 tls_per_transfer=True) is None
    assert grown(10**9, round_trip=lan, round_trip_samples=settled) is None
    assert grown(MANY_FILES - 1, round_trip=local, round_trip_samples=40) is None
    assert grown(MANY_FILES, round_trip=local, round_trip_samples=40) == LOCAL_SESSIONS
    assert grown(MANY_FILES, round_trip=local, round_trip_samples=1) == LOCAL_SESSIONS
    assert grown(LOCAL_MANY_FILES - 1, round_trip=local, round_trip_samples=40
                 ) == LOCAL_SESSIONS
    assert grown(LOCAL_MANY_FILES, round_trip=local, round_trip_samples=40) == LAN_SESSIONS
    # A switch away, a session more for each of the first big files (streams).
    assert grown(10, 1, round_trip=local, round_trip_samples=40) == LOCAL_START_SESSIONS + 1
    assert grown(10, 10**6, round_trip=local, round_trip_samples=40) == LOCAL_SESSIONS
    assert grown(10, 10**6, round_trip=wan, round_trip_samples=settled) is None
    assert grown(10**9) is None  # nothing measured


def test_a_wan_s_sessions_come_with_its_second_login_and_the_work_wanted_logs_in(
    vsftpd_server: RunningServer, fresh_subdir: Callable[[RunningServer], RunningServer]
) -> None:
    """The first login reads a WAN: the side stays at the local tier and logs in only
    that many of the 12 sessions the copy wants; the next login reads a WAN again: the
    side takes the WAN's cap and logs in the rest it was asked for, no more. (What was
    logged in is recorded at each reading, after the pool's own watcher ran: no
    assertion depends on how long anything took.)"""
    server = fresh_subdir(vsftpd_server)
    assert server.pasv_ports is not None
    low, high = server.pasv_ports

    async def go() -> None:
        endpoint = parse_endpoint(ftp_url_via(server, RELAY_HOST)).with_password(
            server.password)
        store = CountingFtpStore(endpoint, timeout=20.0, read_only=True)
        pool = SessionPool(store, max_sessions=WAN_SESSIONS, auto_cap=True)
        readings: list[tuple[int, int, int]] = []  # (samples, logins started, cap)
        store.watch_round_trip(
            lambda _shortest, samples: readings.append(
                (samples, store.logins, pool.stats.cap)))
        try:
            caps = await pool.capabilities()
            assert caps.round_trip is not None and caps.round_trip >= 2 * DELAY
            assert caps.round_trip_samples == store.logins == 1
            assert pool.stats.cap == LOCAL_START_SESSIONS
            pool.warm(12)
            await hold_at_once(pool, 2)  # a second login done: two WAN readings
            assert pool.stats.cap == WAN_START_SESSIONS
            second = readings[1]
            assert second[0] == 2 and second[2] == WAN_START_SESSIONS
            # Until then no more than the local tier's were logging in.
            assert second[1] <= LOCAL_START_SESSIONS
            await logins_started(store, 12)
            for _ in range(20):
                await asyncio.sleep(0)
            assert store.logins == 12  # what the copy wanted, within the new cap
        finally:
            await pool.aclose()

    with start_relay(listen_host=RELAY_HOST, target_host=server.host,
                     ports=[server.port, *range(low, high + 1)], one_way_delay=DELAY):
        asyncio.run(go())


@pytest.mark.parametrize("threshold", [10, 100], ids=["many-files", "few-files"])
def test_a_long_run_over_a_wan_logs_in_the_wan_s_sessions(
    tmp_path: Path, vsftpd_server: RunningServer,
    fresh_subdir: Callable[[RunningServer], RunningServer],
    monkeypatch: pytest.MonkeyPatch, threshold: int,
) -> None:
    """A copy to vsftpd behind the relay (every login reads a WAN): the destination
    starts at ``WAN_START_SESSIONS`` and takes ``WAN_SESSIONS`` once the run has decided
    ``MANY_FILES`` files to copy (lowered here: 12 files decided). Counted from the
    pool's cap, never timed."""
    monkeypatch.setattr(session_count, "MANY_FILES", threshold)
    server = fresh_subdir(vsftpd_server)
    assert server.pasv_ports is not None
    low, high = server.pasv_ports
    src = tmp_path / "src"
    src.mkdir()
    files = {f"f{i:02d}.txt": os.urandom(100 + i) for i in range(12)}
    for name, data in files.items():
        (src / name).write_bytes(data)

    with start_relay(listen_host=RELAY_HOST, target_host=server.host,
                     ports=[server.port, *range(low, high + 1)], one_way_delay=DELAY):
        cap, caps = asyncio.run(copy_to_ftp_sized(src, ftp_url_via(server, RELAY_HOST),
                                                  server.password))
    assert caps.round_trip is not None and caps.round_trip >= 2 * DELAY
    assert cap == (WAN_SESSIONS if threshold <= len(files) else WAN_START_SESSIONS)
    for name, data in files.items():
        assert (server.root / name).read_bytes() == data


def test_a_borrower_waiting_at_the_cap_logs_in_when_the_files_raise_it(
    vsftpd_server: RunningServer, fresh_subdir: Callable[[RunningServer], RunningServer]
) -> None:
    """A side a switch away holds ``LOCAL_START_SESSIONS`` sessions, all lent; one more
    borrower waits. The run then decides ``MANY_FILES`` files: the cap rises to the
    local tier's and the waiting borrower logs in at once, while every other session is
    still held (nobody releases one to wake it). Bounded, never timed: the wait ends
    with the borrower's session or the test fails after 60 s."""
    server = fresh_subdir(vsftpd_server)

    class SwitchAwayStore(CountingFtpStore):
        """Reports a round trip a switch away whatever the machine's load (a loaded
        loopback can read over the local tier's line: another tier, no growth)."""

        def watch_round_trip(self, watcher: object) -> None:
            """No readings: the pool keeps the figure below."""

        async def capabilities(self) -> Capabilities:
            caps = await super().capabilities()
            return dataclasses.replace(caps, round_trip=LOCAL_ROUND_TRIP / 4,
                                       round_trip_samples=40)

    async def go() -> None:
        endpoint = parse_endpoint(server.url()).with_password(server.password)
        store = SwitchAwayStore(endpoint, timeout=20.0, read_only=True)
        pool = SessionPool(store, max_sessions=WAN_SESSIONS, auto_cap=True)
        try:
            await pool.capabilities()
            start = pool.stats.cap
            assert start == LOCAL_START_SESSIONS
            release = asyncio.Event()
            holding = 0
            all_held = asyncio.Event()

            async def hold() -> None:
                nonlocal holding
                async with pool.session():
                    holding += 1
                    if holding == start:
                        all_held.set()
                    await release.wait()

            holders = [asyncio.ensure_future(hold()) for _ in range(start)]
            await asyncio.wait_for(all_held.wait(), 60)
            got_one = asyncio.Event()

            async def one_more() -> None:
                async with pool.session():
                    got_one.set()

            extra = asyncio.ensure_future(one_more())
            for _ in range(50):  # it waits at the cap (a state: nothing can free it)
                await asyncio.sleep(0)
            assert not got_one.is_set()
            pool.grow_for_files(MANY_FILES)
            assert pool.stats.cap == LOCAL_SESSIONS
            await asyncio.wait_for(got_one.wait(), 60)
            assert not release.is_set()  # no session was given back meanwhile
            release.set()
            await asyncio.gather(extra, *holders)
        finally:
            await pool.aclose()

    asyncio.run(go())
