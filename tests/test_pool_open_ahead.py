"""Sessions logged in ahead (transfers/pool.py ``open_ahead``, FtpStore ``log_in_ahead``)
and the round trips of a run's first steps, against real FTP servers.

A run's first steps each need a logged-in session (the source's root check and listing,
the destination's write probe on three sessions, the first files): logged in at once
and in parallel as soon as the store is known, none of them waits for a login of its
own. Counted here, never timed: how many logins the store made, and how many round
trips a folder check costs on the control connection.
"""

from __future__ import annotations

import asyncio
import contextlib
import ssl
from collections.abc import AsyncIterator, Awaitable, Callable
from pathlib import Path
from typing import TypeVar

import pytest

from fsmove.transfers.backend import (
    AuthError,
    ConnectError,
    EntryKind,
    NotFoundError,
    Session,
    TooManySessionsError,
)
from fsmove.transfers.endpoint import Endpoint, parse_endpoint
from fsmove.transfers.ftp import FtpStore
from fsmove.transfers.ftp.client import FtpClient
from fsmove.transfers.ftp.store import SESSIONS_BEFORE_PROBE
from fsmove.transfers.local.session import LocalSession, LocalStore
from fsmove.transfers.pool import SessionPool
from tests.servers import RunningServer, make_tree
from tests.servers.catalog import THIRD_PARTY_FTP_SERVERS

pytestmark = pytest.mark.interop

T = TypeVar("T")


class CountingFtpStore(FtpStore):
    """An FtpStore that counts its logins and keeps every client it opened."""

    def __init__(self, *args: object, **kwargs: object) -> None:
        super().__init__(*args, **kwargs)  # type: ignore[arg-type]
        self.logins = 0
        self.clients: list[FtpClient] = []

    async def open_client(self) -> FtpClient:
        self.logins += 1
        client = await super().open_client()
        self.clients.append(client)
        return client


def counting_store(server: RunningServer, *, read_only: bool, password: str | None = None
                   ) -> CountingFtpStore:
    url = server.url(with_password=True)
    if password is not None:
        url = url.replace(server.password, password)
    ctx = ssl.create_default_context(cafile=str(server.ca_cert)) if server.ca_cert else None
    return CountingFtpStore(parse_endpoint(url), timeout=20.0, ssl_context=ctx,
                            read_only=read_only)


def run(fn: Callable[[], Awaitable[T]]) -> T:
    async def main() -> T:
        return await fn()

    return asyncio.run(main())


async def logins_started(store: CountingFtpStore, count: int) -> None:
    """Until ``count`` logins started (each a task: it starts at the loop's next turn)."""
    for _ in range(100):
        if store.logins >= count:
            return
        await asyncio.sleep(0)
    raise AssertionError(f"{store.logins} logins started, {count} expected")


async def hold_at_once(pool: SessionPool, count: int) -> None:
    """``count`` borrowers, each holding its session until all hold one."""
    held = asyncio.Event()
    entered = 0

    async def borrow() -> None:
        nonlocal entered
        async with pool.session() as s:
            assert (await s.stat("")).kind is EntryKind.DIR
            entered += 1
            if entered == count:
                held.set()
            await held.wait()

    await asyncio.gather(*(borrow() for _ in range(count)))


@pytest.fixture(params=THIRD_PARTY_FTP_SERVERS)
def real_server(
    request: pytest.FixtureRequest, fresh_subdir: Callable[[RunningServer], RunningServer]
) -> RunningServer:
    return fresh_subdir(request.getfixturevalue(request.param))


def test_sessions_opened_ahead_are_the_ones_lent(real_server: RunningServer) -> None:
    """Two logins start before any borrower; two borrowers at once get them, and nobody
    logs in again."""
    async def go() -> None:
        store = counting_store(real_server, read_only=True)
        pool = SessionPool(store, max_sessions=8)
        try:
            pool.open_ahead(2)
            await logins_started(store, 2)
            assert store.logins == 2  # no borrower yet

            await hold_at_once(pool, 2)
            assert store.logins == 2
            assert pool.stats.opened == 2
        finally:
            await pool.aclose()

    run(go)


def test_a_store_to_be_written_logs_in_its_probe_sessions_ahead(
    real_server: RunningServer,
) -> None:
    """A destination not probed yet logs in ``SESSIONS_BEFORE_PROBE`` sessions at once:
    the one the root check takes (a read before the probe), the probe's three and the
    first files' two (written while the probe runs). The root check, the probe and
    then as many borrowers at once use them: no login more."""
    ahead = SESSIONS_BEFORE_PROBE
    assert ahead == 6

    async def go() -> None:
        store = counting_store(real_server, read_only=False)
        pool = SessionPool(store, max_sessions=8)
        try:
            pool.open_ahead(1)
            await logins_started(store, ahead)
            async with pool.session(before_capabilities=True) as s:
                assert (await s.stat("")).kind is EntryKind.DIR
                caps = await pool.capabilities()  # the probe, while the check's is held
            assert caps.rename  # the probe ran (every server here renames)
            await hold_at_once(pool, ahead)
            assert store.logins == ahead
        finally:
            await pool.aclose()

    run(go)


def test_the_cap_bounds_the_logins_ahead(real_server: RunningServer) -> None:
    async def go() -> None:
        store = counting_store(real_server, read_only=True)
        pool = SessionPool(store, max_sessions=1)
        try:
            pool.open_ahead(4)
            await logins_started(store, 1)
            for _ in range(10):
                await asyncio.sleep(0)
            assert store.logins == 1
        finally:
            await pool.aclose()

    run(go)


def test_warm_logs_in_for_the_work_known_within_the_cap(
    vsftpd_server: RunningServer, tmp_path: Path,
) -> None:
    """``warm(n)``: the copy tells the pool how many files wait; an FTP side then has
    that many sessions open or logging in (never more than its cap), the borrowers use
    those, and a smaller count later logs in nobody more. Before the store's
    capabilities are known, and on a local store, it does nothing."""
    async def settle(store: CountingFtpStore) -> None:
        for _ in range(20):
            await asyncio.sleep(0)

    async def go() -> None:
        store = counting_store(vsftpd_server, read_only=True)
        pool = SessionPool(store, max_sessions=5)
        local = SessionPool(LocalStore(parse_endpoint(str(tmp_path))), max_sessions=4)
        try:
            pool.warm(3)
            await settle(store)
            assert store.logins == 0  # capabilities unknown: nothing to go by yet
            await pool.capabilities()
            first = store.logins
            assert first >= 1
            pool.warm(3)
            await logins_started(store, 3)
            await settle(store)
            assert store.logins == 3
            pool.warm(2)
            await settle(store)
            assert store.logins == 3
            pool.warm(50)
            await logins_started(store, 5)
            await settle(store)
            assert store.logins == 5  # the cap
            await hold_at_once(pool, 5)
            assert store.logins == 5  # the borrowers got the sessions warmed for them
            await local.capabilities()
            local.warm(4)
            await settle(store)
            assert local.stats.opened == 0
        finally:
            await pool.aclose()
            await local.aclose()

    run(go)


def test_a_refused_login_ahead_is_the_borrowers_error(vsftpd_server: RunningServer) -> None:
    async def go() -> None:
        store = counting_store(vsftpd_server, read_only=True, password="not-the-password")
        pool = SessionPool(store, max_sessions=4)
        try:
            pool.open_ahead(2)
            with pytest.raises(AuthError):
                async with pool.session():
                    pass
        finally:
            await pool.aclose()

    run(go)


def test_logins_ahead_nobody_took_are_closed(vsftpd_server: RunningServer) -> None:
    async def go() -> None:
        store = counting_store(vsftpd_server, read_only=True)
        pool = SessionPool(store, max_sessions=4)
        pool.open_ahead(2)
        await logins_started(store, 2)
        # Let them finish logging in (bounded: each login is bounded by its timeout).
        async with pool.session():
            pass
        await pool.aclose()
        assert store.clients, "no login finished"
        for client in store.clients:
            transport = client.stream.writer.transport
            assert transport.is_closing()

    run(go)


def _count_round_trips(client: FtpClient) -> list[str]:
    """Record the control connection's writes ("W") and reply lines read ("R"): each
    run of writes after a read is one round trip."""
    events: list[str] = []
    writer, reader = client.stream.writer, client.stream.reader
    write, readline = writer.write, reader.readline

    def counted_write(data: bytes) -> None:
        events.append("W")
        write(data)

    async def counted_readline() -> bytes:
        line = await readline()
        events.append("R")
        return line

    writer.write = counted_write  # type: ignore[method-assign]
    reader.readline = counted_readline  # type: ignore[method-assign]
    return events


def round_trips(events: list[str]) -> int:
    return sum(1 for i, e in enumerate(events) if e == "W" and (i == 0 or events[i - 1] == "R"))


def test_a_folder_check_costs_one_round_trip(real_server: RunningServer) -> None:
    """``stat`` of a folder on a server without MLST (vsftpd): SIZE and MDTM together,
    then the CWD into it and the CWD back together (the login folder was asked at
    login, with TYPE I): two round trips, four before. Servers with MLST: one."""
    make_tree(real_server, {"sub/a.txt": b"a"})

    async def go() -> None:
        store = counting_store(real_server, read_only=True)
        session = await store.connect()
        try:
            events = _count_round_trips(session._client)
            entry = await session.stat("sub")
            assert entry.kind is EntryKind.DIR
            assert round_trips(events) <= 2, events
            assert (await session.stat("sub/a.txt")).size == 1  # back where it was
            with pytest.raises(NotFoundError):
                await session.stat("missing")
            assert [e.path async for e in session.list("sub")] == ["sub/a.txt"]
        finally:
            await session.close()

    run(go)


def test_a_vsftpd_login_is_one_round_trip(
    vsftpd_server: RunningServer, monkeypatch: pytest.MonkeyPatch
) -> None:
    """USER, PASS, FEAT, OPTS UTF8 ON, TYPE I, PWD and EPSV in one write: one round
    trip after the greeting (four before session 14, six before that); a second login
    skips FEAT and PWD, still one (tests/test_ftp_login.py: every server)."""
    events: list[str] = []
    send, send_many, reply = FtpClient.send, FtpClient.send_many, FtpClient.reply

    async def counted_send(self: FtpClient, line: str) -> None:
        events.append("W")
        await send(self, line)

    async def counted_send_many(self: FtpClient, lines: list[str]) -> None:
        events.append("W")
        await send_many(self, lines)

    async def counted_reply(self: FtpClient) -> object:
        got = await reply(self)
        events.append("R")
        return got

    monkeypatch.setattr(FtpClient, "send", counted_send)
    monkeypatch.setattr(FtpClient, "send_many", counted_send_many)
    monkeypatch.setattr(FtpClient, "reply", counted_reply)

    async def go() -> tuple[int, int]:
        store = counting_store(vsftpd_server, read_only=True)
        first = await store.open_client()
        trips_first = round_trips(events)
        events.clear()
        second = await store.open_client()
        trips_second = round_trips(events)
        assert store.home == "/"
        first.close()
        second.close()
        return trips_first, trips_second

    assert run(go) == (1, 1)


def test_the_destination_root_is_not_asked_again_after_the_probe(
    real_server: RunningServer,
) -> None:
    """The probe just wrote a file into the root: the checks of the root that follow it
    (make_root, the survey) cost no round trip; a removed root is asked again."""

    async def go() -> None:
        store = counting_store(real_server, read_only=False)
        await store.capabilities()
        session = await store.connect()
        try:
            events = _count_round_trips(session._client)
            assert (await session.stat("")).kind is EntryKind.DIR
            assert round_trips(events) == 0
            await session.rmdir("")
            with pytest.raises(NotFoundError):
                await session.stat("")
            await session.mkdir("")
        finally:
            await session.close()
            await store.aclose()

    run(go)


class GatedLocalStore(LocalStore):
    """A local store whose connects wait for a gate, counting them and failing the
    first ``failures`` of them."""

    def __init__(self, endpoint: Endpoint, failures: int = 0) -> None:
        super().__init__(endpoint)
        self.connects = 0
        self.failures = failures
        self.gate = asyncio.Event()

    async def connect(self) -> LocalSession:
        self.connects += 1
        await self.gate.wait()
        if self.failures:
            self.failures -= 1
            raise ConnectError("refused (test)")
        return await super().connect()


def test_a_store_that_cannot_log_in_ahead_gets_idle_sessions_from_the_pool(
    tmp_path: Path,
) -> None:
    """SFTP and local stores: the pool opens the sessions ahead itself; a borrower that
    comes meanwhile waits for them instead of opening a third; all within the cap."""

    async def go() -> None:
        store = GatedLocalStore(parse_endpoint(str(tmp_path)))
        pool = SessionPool(store, max_sessions=4)
        try:
            pool.open_ahead(2)
            borrower = asyncio.ensure_future(hold_at_once(pool, 2))
            for _ in range(20):
                await asyncio.sleep(0)
            assert store.connects == 2 and not borrower.done()
            store.gate.set()
            await borrower
            assert store.connects == 2 and pool.stats.opened == 2
        finally:
            await pool.aclose()

    run(go)


def test_a_failed_session_ahead_leaves_the_borrower_to_log_in(tmp_path: Path) -> None:
    async def go() -> None:
        store = GatedLocalStore(parse_endpoint(str(tmp_path)), failures=2)
        pool = SessionPool(store, max_sessions=4)
        try:
            pool.open_ahead(2)
            for _ in range(20):
                await asyncio.sleep(0)
            store.gate.set()
            await hold_at_once(pool, 1)  # both ahead failed: it logs in itself
            assert store.connects == 3 and pool.stats.opened == 1
        finally:
            await pool.aclose()

    run(go)


def test_sessions_still_opening_ahead_are_closed_with_the_pool(tmp_path: Path) -> None:
    async def go() -> None:
        store = GatedLocalStore(parse_endpoint(str(tmp_path)))
        pool = SessionPool(store, max_sessions=4)
        pool.open_ahead(3)
        for _ in range(20):
            await asyncio.sleep(0)
        await pool.aclose()
        assert store.connects == 3 and pool.stats.opened == 0

    run(go)


async def until(condition: Callable[[], bool]) -> None:
    """Let the loop run until ``condition`` holds (bounded: a hang becomes a failure)."""
    for _ in range(100_000):
        if condition():
            return
        await asyncio.sleep(0)
    raise AssertionError("the condition never came true")


@contextlib.asynccontextmanager
async def one_busy_session(tmp_path: Path, max_sessions: int
                           ) -> AsyncIterator[tuple[GatedLocalStore, SessionPool, Session]]:
    """A gated local store's pool (sessions carrying many operations, as over SFTP)
    with one session lent and kept busy, the gate then shut: the next login waits."""
    store = GatedLocalStore(parse_endpoint(str(tmp_path)))
    pool = SessionPool(store, max_sessions=max_sessions)
    try:
        store.gate.set()
        async with pool.session() as first:
            store.gate.clear()
            yield store, pool, first
    finally:
        await pool.aclose()


def test_a_borrower_shares_a_busy_session_while_another_logs_in_beside_it(
    tmp_path: Path,
) -> None:
    """A store whose sessions carry many operations (SFTP, local): a borrower that finds
    every session busy but with room is lent one at once (a login over SFTP is a dozen
    round trips), and a new session logs in meanwhile, for the borrowers after it."""

    async def go() -> None:
        async with one_busy_session(tmp_path, 3) as (store, pool, first):
            # The gate is shut: waiting for a login here would hang (a bound only
            # turns that into a failure; a correct pool never waits).
            async with asyncio.timeout(60), pool.session() as second:
                assert second is first
                await until(lambda: store.connects == 2)  # a login beside it...
                assert pool.stats.opened == 1  # ...waits at the gate
                store.gate.set()
                await until(lambda: pool.stats.opened == 2)
                async with pool.session() as third:
                    assert third is not first  # the idle newcomer comes first
        assert store.connects == 2

    run(go)


def test_a_stream_waits_for_a_session_of_its_own_while_one_can_be_opened(
    tmp_path: Path,
) -> None:
    """A big file's range (``stream=True``) is not stacked on a busy session while the
    side may open another: each connection has its own window. At the cap it shares."""

    async def go() -> None:
        async with one_busy_session(tmp_path, 2) as (store, pool, first):
            got: dict[str, object] = {}
            held, release = asyncio.Event(), asyncio.Event()

            async def streamer() -> None:
                async with pool.session(stream=True) as own:
                    got["own"] = own
                    held.set()
                    await release.wait()

            task = asyncio.ensure_future(streamer())
            await until(lambda: store.connects == 2)
            assert not held.is_set()  # not lent the busy session
            store.gate.set()
            await held.wait()
            assert got["own"] is not first
            async with pool.session(stream=True) as third:  # at the cap: shares
                assert third in (first, got["own"])
            release.set()
            await task

    run(go)


def test_a_stream_waits_for_a_login_under_way_rather_than_share_a_busy_session(
    tmp_path: Path,
) -> None:
    """A login ahead is on its way and every open session is busy: a big file's range
    waits for that login (it would carry its whole length on the busy one: on SFTP at 60
    ms large files moved a third less in some runs), and no third login starts."""

    async def go() -> None:
        async with one_busy_session(tmp_path, 4) as (store, pool, first):
            pool.open_ahead(1)
            await until(lambda: store.connects == 2)  # at the gate
            got: dict[str, object] = {}
            held = asyncio.Event()

            async def streamer() -> None:
                async with pool.session(stream=True) as own:
                    got["own"] = own
                    held.set()

            task = asyncio.ensure_future(streamer())
            for _ in range(50):
                await asyncio.sleep(0)
            assert not held.is_set() and store.connects == 2  # waits, logs in nothing
            store.gate.set()
            await task
            assert got["own"] is not first and store.connects == 2

    run(go)


def test_a_session_refused_beside_busy_ones_caps_the_side_at_what_it_has(
    tmp_path: Path,
) -> None:
    async def go() -> None:
        store = GatedLocalStore(parse_endpoint(str(tmp_path)), failures=0)
        pool = SessionPool(store, max_sessions=8)
        try:
            store.gate.set()
            async with pool.session():
                store.failures = 1
                async with pool.session():
                    await until(lambda: pool.max_sessions != 8)
                    assert pool.max_sessions == 1
                    async with pool.session():
                        pass
            assert store.connects == 2 and pool.stats.opened == 1
        finally:
            await pool.aclose()

    run(go)


class RefusingFtpStore(CountingFtpStore):
    """Its first ``refusals`` logins are refused as "too many connections" (what a
    server with a connection cap answers while other sessions hold its places)."""

    refusals = 0

    async def open_client(self) -> FtpClient:
        if self.refusals:
            self.refusals -= 1
            self.logins += 1
            raise TooManySessionsError("421 too many connections (test)")
        return await super().open_client()


@pytest.mark.parametrize("refused", [2, SESSIONS_BEFORE_PROBE])
def test_logins_ahead_refused_as_too_many_never_fail_the_probe(
    vsftpd_server: RunningServer, fresh_subdir: Callable[[RunningServer], RunningServer],
    refused: int,
) -> None:
    """Logins ahead refused with a 421 (a transient refusal): the probe takes the one
    that logged in, or (all refused) logs in anew, as it would have without logins
    ahead, instead of failing with the 421."""
    server = fresh_subdir(vsftpd_server)

    async def go() -> None:
        url = server.url(with_password=True)
        store = RefusingFtpStore(parse_endpoint(url), timeout=20.0, read_only=False)
        store.refusals = refused
        pool = SessionPool(store, max_sessions=4)
        try:
            pool.open_ahead(2)
            await logins_started(store, SESSIONS_BEFORE_PROBE)
            await asyncio.wait(list(store._ahead))
            assert len(store.clients) == SESSIONS_BEFORE_PROBE - refused
            assert (await pool.capabilities()).rename
            await hold_at_once(pool, 1)
        finally:
            await pool.aclose()

    run(go)


def test_a_borrower_that_can_wait_leaves_the_idle_session_to_others(
    vsftpd_server: RunningServer, fresh_subdir: Callable[[RunningServer], RunningServer],
) -> None:
    """``spare`` (the scout's listings below the root): the pool's one idle session is
    left to the next borrower while another can be logged in; at the cap it is taken
    as by anyone (a borrower that waits for nothing must never starve)."""
    server = fresh_subdir(vsftpd_server)

    async def go() -> None:
        store = counting_store(server, read_only=True)
        pool = SessionPool(store, max_sessions=2)
        try:
            async with pool.session() as first:
                assert (await first.stat("")).kind is EntryKind.DIR
            # ``first`` is idle now.
            async with pool.session(spare=1) as waiting:
                assert waiting is not first  # logged in its own
                assert store.logins == 2
                async with pool.session() as other:
                    assert other is first  # the idle one was there for this borrower
            # Two idle: one is left, the other taken.
            async with pool.session(spare=1):
                assert store.logins == 2
                # At the cap: the last idle one is taken rather than wait.
                async with pool.session(spare=1):
                    assert store.logins == 2
        finally:
            await pool.aclose()

    run(go)

