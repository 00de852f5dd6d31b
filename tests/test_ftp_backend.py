"""FTP-specific behaviour of ``FtpStore`` against real servers (vsftpd, pure-ftpd, proftpd,
their FTPS variants, aioftp's server). The generic contract is in test_conformance.py."""

from __future__ import annotations

import asyncio
import os
import socket
import ssl
import time
from collections.abc import AsyncIterator, Awaitable, Callable, Iterator
from pathlib import Path
from typing import TypeVar

import pytest

from fsmove.transfers.backend import (
    AuthError,
    BackendError,
    Capabilities,
    ConnectError,
    Entry,
    EntryKind,
    NotFoundError,
    OffsetWrites,
    PermanentError,
    SessionFeatures,
    TooManySessionsError,
    TransientError,
    UnsupportedError,
)
from fsmove.transfers.endpoint import parse_endpoint
from fsmove.transfers.ftp import FtpSession, FtpStore
from fsmove.transfers.ftp.folders import MDTM_WINDOW, MDTM_WINDOWS_AHEAD, MDTM_WINDOWS_MAX
from fsmove.transfers.ftp.probe import offers_site_chmod
from fsmove.transfers.ftp.tls import TlsSetupError
from fsmove.transfers.pool import PoolStats, SessionPool
from fsmove.transfers.session_count import sessions_for_files, sessions_worth_opening
from fsmove.transfers.tree import PROBE_PREFIX
from tests.conformance_stores import list_once
from tests.faults.restartable_ftpd import RestartableFtpd
from tests.servers import RunningServer, make_tree, start_proftpd, start_vsftpd
from tests.servers.catalog import FTPS_SERVERS, THIRD_PARTY_FTP_SERVERS
from tests.servers.ports import free_port

pytestmark = pytest.mark.interop

T = TypeVar("T")

#: The third-party servers (aioftp's own server is tested where it matters).
REAL_SERVERS = THIRD_PARTY_FTP_SERVERS
TLS_SERVERS = FTPS_SERVERS


def ftp_store(server: RunningServer, *, timeout: float = 20.0, url: str | None = None) -> FtpStore:
    endpoint = parse_endpoint(url or server.url(with_password=True))
    ctx = ssl.create_default_context(cafile=str(server.ca_cert)) if server.ca_cert else None
    return FtpStore(endpoint, timeout=timeout, ssl_context=ctx)


def run(fn: Callable[[], Awaitable[T]]) -> T:
    async def main() -> T:
        return await fn()

    return asyncio.run(main())


def with_session(
    server: RunningServer, check: Callable[[FtpSession, FtpStore], Awaitable[T]]
) -> T:
    async def go() -> T:
        store = ftp_store(server)
        session = await store.connect()
        try:
            return await check(session, store)
        finally:
            await session.close()

    return run(go)


async def pieces(*chunks: bytes) -> AsyncIterator[bytes]:
    for chunk in chunks:
        yield chunk


async def read_all(s: FtpSession, path: str, **kw: int) -> bytes:
    return b"".join([p async for p in s.read(path, **kw)])


@pytest.fixture(params=REAL_SERVERS)
def real_server(
    request: pytest.FixtureRequest, fresh_subdir: Callable[[RunningServer], RunningServer]
) -> RunningServer:
    return fresh_subdir(request.getfixturevalue(request.param))


# -- the probe -------------------------------------------------------------------------------

EXPECTED_PROBE = {
    # server: (offset_writes, rename_replaces, set_mtime)
    "vsftpd_server": (OffsetWrites.ANY, True, True),  # REST+STOR seeks; MDTM-write
    "pureftpd_server": (OffsetWrites.APPEND, True, True),  # REST+STOR truncates; MFMT
    "proftpd_server": (OffsetWrites.ANY, True, True),  # test config: AllowStoreRestart on
    "aioftp_server": (OffsetWrites.ANY, False, False),  # RNTO refuses an existing target
}


@pytest.mark.parametrize("fixture", sorted(EXPECTED_PROBE))
def test_probe_finds_each_servers_semantics(
    fixture: str,
    request: pytest.FixtureRequest,
    fresh_subdir: Callable[[RunningServer], RunningServer],
) -> None:
    server = fresh_subdir(request.getfixturevalue(fixture))

    async def probe() -> tuple[Capabilities, bool | None, bool | None]:
        store = ftp_store(server)
        try:
            caps = await store.capabilities()
            # SITE HELP rode with the probe's clean-up where commands pipeline (no
            # round trip at the first placing); its answer is the server's.
            found = store.site_chmod
            session = await store.connect()
            try:
                pipelines = store.features is not None and store.features.answered
                asked = (offers_site_chmod(await session.raw_command("SITE HELP"))
                         if pipelines else None)
            finally:
                await session.close()
            return caps, found, asked
        finally:
            await store.aclose()

    caps, site_chmod, asked = run(probe)
    assert site_chmod is asked
    assert (site_chmod is not None) is (fixture != "aioftp_server"), site_chmod
    assert (caps.offset_writes, caps.rename_replaces, caps.set_mtime) == EXPECTED_PROBE[fixture]
    assert not caps.parallel_writes and caps.ops_per_session == 1
    assert caps.ranged_read and caps.bounded_read
    assert any(note.startswith("FEAT:") for note in caps.notes)
    if fixture == "proftpd_server":
        assert any("beyond the end" in note for note in caps.notes)
    assert not [p for p in server.root.iterdir() if p.name.startswith(PROBE_PREFIX)]


def test_probe_of_a_missing_root_is_not_cached(
    vsftpd_server: RunningServer, fresh_subdir: Callable[[RunningServer], RunningServer]
) -> None:
    server = fresh_subdir(vsftpd_server)

    async def go() -> tuple[OffsetWrites, OffsetWrites]:
        store = ftp_store(server, url=server.url("not-yet", with_password=True))
        before = (await store.capabilities()).offset_writes
        session = await store.connect()
        try:
            await session.mkdir("")
        finally:
            await session.close()
        return before, (await store.capabilities()).offset_writes

    assert run(go) == (OffsetWrites.NONE, OffsetWrites.ANY)


@pytest.mark.parametrize("fixture", sorted(REAL_SERVERS))
def test_a_root_s_stat_tells_folder_file_and_missing_and_stays_in_step(
    fixture: str, request: pytest.FixtureRequest,
    fresh_subdir: Callable[[RunningServer], RunningServer],
) -> None:
    """A store's root checked in one round trip where the server pipelines (SIZE, MDTM
    and the CWD there and back in one write): a folder, a file and a missing root each
    come out right, and the session answers the next command in step."""
    server = fresh_subdir(request.getfixturevalue(fixture))
    make_tree(server, {"d/x.txt": b"x", "f.txt": b"12345"})

    async def stat_root(sub: str) -> Entry | type[NotFoundError]:
        store = ftp_store(server, url=server.url(sub, with_password=True))
        session = await store.connect()
        try:
            try:
                found: Entry | type[NotFoundError] = await session.stat("")
            except NotFoundError:
                found = NotFoundError
            # In step: the next command gets its own answer, from the login folder.
            assert (await session.raw_command("PWD")).code == 257
            assert (await session.raw_command("CWD .")).code == 250
            return found
        finally:
            await session.close()
            await store.aclose()

    async def go() -> None:
        folder = await stat_root("d")
        assert isinstance(folder, Entry) and folder.kind is EntryKind.DIR
        file = await stat_root("f.txt")
        assert isinstance(file, Entry) and (file.kind, file.size) == (EntryKind.FILE, 5)
        assert await stat_root("missing") is NotFoundError

    run(go)


# -- ranged reads and ABOR -------------------------------------------------------------------


def test_ranged_reads_abort_and_keep_the_session_in_step(real_server: RunningServer) -> None:
    data = os.urandom(24 * 1024 * 1024)
    make_tree(real_server, {"big.bin": data, "small.txt": b"hello"})

    async def check(s: FtpSession, _store: FtpStore) -> None:
        for offset, length in ((1000, 300_000), (5_000_000, 3_000_000), (7, 1)):
            assert await read_all(s, "big.bin", offset=offset, length=length) == (
                data[offset : offset + length]
            )
            # the very next commands on the same control connection work
            assert (await s.stat("small.txt")).size == 5
            assert await read_all(s, "small.txt") == b"hello"
        assert sorted([e.path async for e in s.list("")]) == ["big.bin", "small.txt"]
        assert s.usable  # never lost: a session no longer logs in again by itself

    with_session(real_server, check)


def test_a_consumer_stopping_early_leaves_the_session_usable(real_server: RunningServer) -> None:
    data = os.urandom(16 * 1024 * 1024)
    make_tree(real_server, {"big.bin": data})

    async def check(s: FtpSession, _store: FtpStore) -> None:
        stream = s.read("big.bin")
        first = await anext(stream)  # type: ignore[call-overload]
        assert data.startswith(first)
        await stream.aclose()  # type: ignore[attr-defined]
        assert (await s.stat("big.bin")).size == len(data)
        assert await read_all(s, "big.bin", offset=len(data) - 10) == data[-10:]
        assert s.usable

    with_session(real_server, check)


def test_a_range_past_the_end_is_never_a_complete_read(real_server: RunningServer) -> None:
    make_tree(real_server, {"short.bin": b"x" * 1000})

    async def check(s: FtpSession, _store: FtpStore) -> None:
        with pytest.raises(TransientError, match="ended after 500 of 1000 bytes"):
            await read_all(s, "short.bin", offset=500, length=1000)
        assert await read_all(s, "short.bin", offset=990, length=10) == b"x" * 10

    with_session(real_server, check)


def test_aioftp_server_ranged_read_survives_its_abort_handling(
    aioftp_server: RunningServer, fresh_subdir: Callable[[RunningServer], RunningServer]
) -> None:
    # aioftp's server drops the whole session when its data connection is cut mid-write:
    # ABOR goes first and the data is drained until it answers; the range is exact
    # either way and the side stays usable (a session aioftp dropped says so, and the
    # pool, which alone recovers sessions, lends a new one).
    server = fresh_subdir(aioftp_server)
    data = os.urandom(32 * 1024 * 1024)
    make_tree(server, {"big.bin": data})

    async def go() -> None:
        pool = SessionPool(ftp_store(server), max_sessions=1)
        try:
            async with pool.session() as s:
                got = await read_all(s, "big.bin", offset=123, length=4567)
            assert got == data[123 : 123 + 4567]
            async with pool.session() as s:
                assert (await s.stat("big.bin")).size == len(data)
        finally:
            await pool.aclose()

    run(go)


# -- writes ----------------------------------------------------------------------------------


@pytest.mark.parametrize("fixture", ["vsftpd_server", "pureftpd_server", "proftpd_server"])
def test_offset_writes_follow_the_probe(
    fixture: str,
    request: pytest.FixtureRequest,
    fresh_subdir: Callable[[RunningServer], RunningServer],
) -> None:
    server = fresh_subdir(request.getfixturevalue(fixture))

    async def check(s: FtpSession, store: FtpStore) -> None:
        mode = (await store.capabilities()).offset_writes
        assert await s.write("f.bin", pieces(b"01234567")) == 8
        # at the current end: works everywhere (APPE or REST+STOR)
        assert await s.write("f.bin", pieces(b"89"), offset=8, create=False) == 2
        assert await read_all(s, "f.bin") == b"0123456789"
        if mode is OffsetWrites.ANY:
            await s.write("f.bin", pieces(b"ab"), offset=4, create=False)
            assert await read_all(s, "f.bin") == b"0123ab6789"
        else:
            with pytest.raises(UnsupportedError, match="only append"):
                await s.write("f.bin", pieces(b"ab"), offset=4, create=False)
            assert await read_all(s, "f.bin") == b"0123456789"
        with pytest.raises(UnsupportedError):
            await s.write("f.bin", pieces(b"x"), offset=3, create=True)

    with_session(server, check)


def test_a_failing_source_is_reported_and_the_session_survives(
    real_server: RunningServer,
) -> None:
    class SourceBroke(Exception):
        pass

    async def broken() -> AsyncIterator[bytes]:
        yield b"x" * (1024 * 1024)
        raise SourceBroke("the source failed")

    async def check(s: FtpSession, store: FtpStore) -> None:
        with pytest.raises(SourceBroke):
            await s.write("partial.bin", broken())
        if store.tls:
            # No data connection opened ahead: the upload was cut with ABOR, in step.
            assert s.usable
        elif not s.usable:
            # Plain FTP: even a session's first upload runs on the data connection its
            # login asked for, its command and first bytes out before any reply; cut
            # with those replies unread, the session says it is out of step and the
            # pool takes a new one (as after any upload on a connection opened ahead).
            await s.close()
            s = await store.connect()
        try:
            assert await s.write("ok.bin", pieces(b"fine")) == 4
            assert await read_all(s, "ok.bin") == b"fine"
        finally:
            await s.close()

    with_session(real_server, check)


def test_connections_opened_ahead_survive_refusals_and_failures(
    real_server: RunningServer, monkeypatch: pytest.MonkeyPatch
) -> None:
    """After a clean transfer the session opens the next data connection ahead (plain
    FTP): refused STOR/RETR on it, a source failing before or after its first piece,
    multi-piece uploads and stale connections all leave the session in step."""

    class SourceBroke(Exception):
        pass

    async def broken_after_first() -> AsyncIterator[bytes]:
        yield b"x" * 1000
        yield b"y" * 1000
        raise SourceBroke("the source failed")

    async def broken_at_once() -> AsyncIterator[bytes]:
        raise SourceBroke("the source failed")
        yield b""  # pragma: no cover

    async def check(s: FtpSession, store: FtpStore) -> None:
        assert await s.write("a.bin", pieces(b"a")) == 1
        # The path under test is taken (plain FTP; FTPS never opens ahead).
        assert (s._client.owes or s._ahead is not None) is not store.tls
        with pytest.raises(BackendError):
            await s.write("no/such/folder/x.bin", pieces(b"x"))  # refused on the ahead
        assert await s.write("b.bin", pieces(b"b" * 10, b"c" * 300_000)) == 300_010
        with pytest.raises(NotFoundError):
            await read_all(s, "missing.bin")
        assert await read_all(s, "b.bin") == b"b" * 10 + b"c" * 300_000
        replaced: list[FtpSession] = []
        try:
            for broken in (broken_after_first, broken_at_once):
                with pytest.raises(SourceBroke):
                    await s.write("p.bin", broken())
                if not s.usable:
                    # An upload cut with its replies unread leaves the connection out of
                    # step: the session says so, and the pool (here, the test) takes a
                    # new one; a session never logs in again by itself.
                    await s.close()
                    s = await store.connect()
                    replaced.append(s)
                assert await s.write("ok.bin", pieces(b"fine")) == 4
                assert await read_all(s, "ok.bin") == b"fine"
            assert await s.write("empty.bin", pieces()) == 0
            assert (await s.stat("empty.bin")).size == 0
            monkeypatch.setattr("fsmove.transfers.ftp.transfer.AHEAD_MAX_AGE", 0.0)  # stale
            assert await s.write("c.bin", pieces(b"c")) == 1
            await s.place("c.bin", "d.bin", mtime=None)
            assert await read_all(s, "d.bin") == b"c"
            names = sorted([e.path async for e in s.list("")])
            assert {"a.bin", "b.bin", "d.bin", "empty.bin", "ok.bin"} <= set(names)
        finally:
            for session in replaced:
                await session.close()

    with_session(real_server, check)


def test_mkdir_rename_remove_and_mtime(real_server: RunningServer) -> None:
    async def check(s: FtpSession, store: FtpStore) -> None:
        await s.mkdir("a/b c/d")
        await s.mkdir("a/b c/d")  # exists: no error
        await s.write("a/b c/d/f.txt", pieces(b"data"))
        with pytest.raises(PermanentError):
            await s.mkdir("a/b c/d/f.txt/sub")
        await s.set_mtime("a/b c/d/f.txt", 1_234_567_890)
        entry = await s.stat("a/b c/d/f.txt")
        assert (entry.kind, entry.size, entry.mtime) == (EntryKind.FILE, 4, 1_234_567_890)
        await s.write("a/other", pieces(b"o"))
        if (await store.capabilities()).rename_replaces:
            await s.rename("a/other", "a/b c/d/f.txt")
            assert await read_all(s, "a/b c/d/f.txt") == b"o"
        with pytest.raises(NotFoundError):
            await s.rename("a/missing", "a/x")
        with pytest.raises(PermanentError):
            await s.rmdir("a/b c/d")  # not empty
        with pytest.raises(NotFoundError):
            await s.remove("a/missing")
        with pytest.raises(NotFoundError):
            await s.rmdir("a/missing")
        with pytest.raises(NotFoundError):
            await read_all(s, "a/missing")

    with_session(real_server, check)


# -- listings --------------------------------------------------------------------------------


@pytest.mark.parametrize("fixture", ["vsftpd_server", "pureftpd_server", "proftpd_server"])
def test_listing_names_kinds_and_missing_folders(
    fixture: str,
    request: pytest.FixtureRequest,
    fresh_subdir: Callable[[RunningServer], RunningServer],
) -> None:
    server = fresh_subdir(request.getfixturevalue(fixture))
    names = ["plain.txt", "with space.txt", " leading", "été 日本.txt", ".hidden", "semi;colon"]
    make_tree(
        server, {f"d/{n}": b"x" * i for i, n in enumerate(names)} | {"d/sub/f": b""},
        mtime=1_500_000_000,
    )

    async def check(s: FtpSession, _store: FtpStore) -> None:
        got = {e.name: e async for e in s.list("d")}
        assert sorted(got) == sorted([*names, "sub"])
        for i, n in enumerate(names):
            assert (got[n].kind, got[n].size, got[n].path) == (EntryKind.FILE, i, f"d/{n}")
            # exact even from LIST (vsftpd): MDTM after the listing
            assert got[n].mtime == 1_500_000_000
        assert got["sub"].kind is EntryKind.DIR
        assert [e.path async for e in s.list("d/sub")] == ["d/sub/f"]
        with pytest.raises(NotFoundError):
            _ = [e async for e in s.list("nope")]
        with pytest.raises(NotFoundError):
            _ = [e async for e in s.list("d/plain.txt")]  # a file is not a folder
        assert (await s.stat("d/sub")).kind is EntryKind.DIR

    with_session(server, check)


def test_vsftpd_symlinks_and_undecodable_names(
    vsftpd_server: RunningServer, fresh_subdir: Callable[[RunningServer], RunningServer]
) -> None:
    server = fresh_subdir(vsftpd_server)
    make_tree(server, {"target.txt": b"abc"})
    os.symlink("target.txt", server.root / "link")
    raw = os.fsencode(server.root) + b"/caf\xe9.txt"  # latin-1, not UTF-8
    with open(raw, "wb") as fh:
        fh.write(b"latin")
    os.chown(raw, *server.owner)

    async def check(s: FtpSession, _store: FtpStore) -> None:
        got = {e.name: e async for e in s.list("")}
        assert got["link"].kind is EntryKind.LINK
        odd = [n for n in got if n.startswith("caf")]
        assert len(odd) == 1 and odd[0].encode("utf-8", "surrogateescape") == b"caf\xe9.txt"
        assert await read_all(s, odd[0]) == b"latin"  # the same bytes go back out
        assert (await s.stat(odd[0])).size == 5

    with_session(server, check)


@pytest.mark.parametrize("fixture", ["vsftpd_server", "pureftpd_server"])  # LIST, MLSD
def test_ten_thousand_entries_list_whole(
    fixture: str,
    request: pytest.FixtureRequest,
    fresh_subdir: Callable[[RunningServer], RunningServer],
) -> None:
    """Every one of 10,000 entries comes back once, as a file, by its name, with its
    own exact time (on a LIST-only server: MDTM replies matched to their files, the
    first windows sent with the listing's end and the rest after). (How fast a big
    listing goes is measured in benchmarks/, never asserted against a clock here.)"""
    server = fresh_subdir(request.getfixturevalue(fixture))
    folder = server.root / "many"
    folder.mkdir()
    os.chown(folder, *server.owner)
    expected = {f"file {i:05d}.txt" for i in range(10_000)}
    for name in expected:
        (folder / name).touch()
        when = 1_000_000_000 + int(name[5:10]) * 7
        os.utime(folder / name, (when, when))

    async def check(s: FtpSession, _store: FtpStore) -> list[str]:
        names = []
        async for entry in s.list("many"):
            assert entry.kind is EntryKind.FILE
            name = entry.path.rsplit("/", 1)[-1]
            assert entry.mtime == 1_000_000_000 + int(name[5:10]) * 7, name
            names.append(name)
        assert s.usable
        return names

    names = with_session(server, check)
    assert len(names) == 10_000
    assert set(names) == expected


# -- FTPS ------------------------------------------------------------------------------------


@pytest.mark.parametrize("fixture", TLS_SERVERS)
def test_ftps_round_trip(
    fixture: str,
    request: pytest.FixtureRequest,
    fresh_subdir: Callable[[RunningServer], RunningServer],
) -> None:
    server = fresh_subdir(request.getfixturevalue(fixture))
    data = os.urandom(5 * 1024 * 1024 + 3)

    async def check(s: FtpSession, _store: FtpStore) -> None:
        assert await s.write("t.bin", pieces(data[:1_000_000], data[1_000_000:])) == len(data)
        assert await read_all(s, "t.bin") == data
        assert await read_all(s, "t.bin", offset=77, length=1000) == data[77:1077]
        assert [e.path async for e in s.list("")] == ["t.bin"]

    with_session(server, check)
    assert (server.root / "t.bin").read_bytes() == data


def test_ftps_with_an_untrusted_certificate_is_refused(vsftpd_tls_server: RunningServer) -> None:
    endpoint = parse_endpoint(vsftpd_tls_server.url(with_password=True))
    store = FtpStore(endpoint, timeout=10)  # system CAs: the test certificate is unknown

    with pytest.raises(TlsSetupError, match="not trusted") as info:
        run(store.connect)
    assert not info.value.retryable


def test_ftps_against_a_plain_server_is_refused(vsftpd_server: RunningServer) -> None:
    url = vsftpd_server.url(with_password=True).replace("ftp://", "ftps://", 1)
    with pytest.raises(TlsSetupError, match="AUTH TLS"):
        run(FtpStore(parse_endpoint(url), timeout=10).connect)


# -- connecting ------------------------------------------------------------------------------


def test_wrong_password_is_an_auth_error(vsftpd_server: RunningServer) -> None:
    url = vsftpd_server.url().replace("@", ":Wr0ng-Secret@", 1)
    with pytest.raises(AuthError) as info:
        run(FtpStore(parse_endpoint(url), timeout=10).connect)
    message = str(info.value)
    assert vsftpd_server.user in message and f"{vsftpd_server.port}" in message
    assert "PASSWORD" in message and "Wr0ng-Secret" not in message
    assert "\n" not in message


def test_refused_port_is_a_connect_error() -> None:
    port = free_port()
    with pytest.raises(ConnectError, match="refused") as info:
        run(FtpStore(parse_endpoint(f"ftp://u:pw@127.0.0.1:{port}/"), timeout=5).connect)
    assert info.value.retryable


@pytest.fixture
def silent_listener() -> Iterator[int]:
    """A port that accepts TCP connections (kernel backlog) and never says a word."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        sock.listen(8)
        yield int(sock.getsockname()[1])


def test_a_silent_server_times_out(silent_listener: int) -> None:
    store = FtpStore(parse_endpoint(f"ftp://u:pw@127.0.0.1:{silent_listener}/"), timeout=0.5)
    started = time.perf_counter()
    with pytest.raises(ConnectError, match="no answer"):
        run(store.connect)
    assert time.perf_counter() - started < 5


@pytest.mark.parametrize("start", [start_vsftpd, start_proftpd], ids=["vsftpd", "proftpd"])
def test_a_connection_cap_gives_too_many_sessions(
    start: Callable[..., object], servers_root: Path, request: pytest.FixtureRequest
) -> None:
    workdir = servers_root / f"capped-{request.node.callspec.id}"
    with start(workdir, max_clients=1) as server:  # type: ignore[attr-defined]
        store = ftp_store(server, timeout=10)

        async def go() -> None:
            first = await store.connect()
            try:
                with pytest.raises(TooManySessionsError) as info:
                    await store.connect()
                assert info.value.retryable and "connections" in str(info.value)
                assert (await first.stat("")).kind is EntryKind.DIR
            finally:
                await first.close()

        run(go)


def test_no_password_in_reprs_or_errors(vsftpd_server: RunningServer) -> None:
    store = ftp_store(vsftpd_server)

    async def go() -> list[str]:
        session = await store.connect()
        try:
            try:
                await session.stat("missing")
            except NotFoundError as exc:
                return [repr(store), repr(session), str(exc), store.display]
            raise AssertionError("stat of a missing file succeeded")
        finally:
            await session.close()

    for text in run(go):
        assert vsftpd_server.password not in text


# -- session health: the pool alone recovers sessions ----------------------------------------


def test_the_pool_checks_a_session_that_sat_idle_and_replaces_it_when_dead(
    tmp_path: Path,
) -> None:
    """A server restart drops every session while the side sits idle (as servers and
    NAT boxes drop idle connections): the pool asks the idle session (NOOP) before
    lending it again, drops it, and the borrower gets a new session instead of a failed
    file. On the old pool the borrower got the dead session."""
    root = tmp_path / "srv"
    root.mkdir()
    (root / "f.txt").write_bytes(b"hello")
    server = RestartableFtpd(root)
    with server.running():
        url = server.url().replace("@", f":{server.password}@", 1)
        # Read-only: the probe runs on one session only, lent to the pool first.
        store = FtpStore(parse_endpoint(url), timeout=20, read_only=True)

        async def go() -> PoolStats:
            pool = SessionPool(store, max_sessions=1, idle_check_after=0.0)
            try:
                async with pool.session() as s:
                    assert (await s.stat("f.txt")).size == 5
                await asyncio.to_thread(server.stop)  # every session dropped
                await asyncio.to_thread(server.start)  # same port, same files
                async with pool.session() as s:
                    assert (await s.stat("f.txt")).size == 5
                return pool.stats
            finally:
                await pool.aclose()

        stats = run(go)
    # The server's restart closed the connection (its FIN arrived): seen without a
    # NOOP since session 32 (``FtpSession.usable``); a connection dropped silently (a
    # NAT box) still gets its NOOP.
    assert (stats.idle_checks, stats.dropped, stats.opened) == (0, 1, 2)


def test_a_session_reused_at_once_is_not_checked(vsftpd_server: RunningServer) -> None:
    """Small files on a busy side pay nothing: no NOOP before a session that was just
    used (the check waits for ``idle_check_after`` seconds of idleness)."""

    async def go() -> tuple[PoolStats, bool]:
        pool = SessionPool(ftp_store(vsftpd_server), max_sessions=1,
                           idle_check_after=3600.0)
        try:
            for _ in range(3):
                async with pool.session() as s:
                    assert (await s.stat("")).kind is EntryKind.DIR
                    features = SessionFeatures.of(s)
            return pool.stats, features.idle_check
        finally:
            await pool.aclose()

    stats, can_check = run(go)
    assert can_check  # FTP sessions can be checked: the pool chose not to
    assert (stats.idle_checks, stats.opened, stats.dropped) == (0, 1, 0)


# -- how many sessions: the pool decides from what the store measured -------------------------


def test_how_many_sessions_follows_the_round_trip() -> None:
    """The policy (transfers/session_count.py), from facts only: few on a LAN (a file
    costs CPU there), fewer still a switch away (each login costs the server a password
    check that more sessions do not repay), many over a WAN (Little's law), fewer for
    FTPS (a TLS handshake per data connection); no fact, no opinion (the per-scheme
    default stays)."""
    assert sessions_worth_opening(Capabilities()) is None
    # A run's start; a long run may grow (sessions_for_files: 8 and 16 a switch away,
    # 64 over a WAN).
    assert sessions_worth_opening(Capabilities(round_trip=0.0004)) == 4  # loopback
    assert sessions_worth_opening(Capabilities(round_trip=0.002)) == 4
    assert sessions_worth_opening(Capabilities(round_trip=0.005)) == 16
    assert sessions_worth_opening(Capabilities(round_trip=0.012)) == 16
    assert sessions_worth_opening(Capabilities(round_trip=0.06)) == 32
    assert sessions_worth_opening(Capabilities(round_trip=0.06, tls_per_transfer=True)) == 32
    assert sessions_for_files(Capabilities(round_trip=0.0004), 10**6) == 16
    assert sessions_for_files(Capabilities(round_trip=0.0004), 600) == 8
    assert sessions_for_files(Capabilities(round_trip=0.06), 600) == 64
    assert sessions_for_files(Capabilities(round_trip=0.06, tls_per_transfer=True),
                              10**6) is None


@pytest.mark.parametrize("fixture", ["vsftpd_server", "vsftpd_tls_server"])
def test_an_ftp_store_reports_facts_and_the_pool_sizes_itself(
    fixture: str, request: pytest.FixtureRequest
) -> None:
    server: RunningServer = request.getfixturevalue(fixture)

    async def go(auto_cap: bool) -> tuple[Capabilities, int]:
        pool = SessionPool(ftp_store(server), max_sessions=5, auto_cap=auto_cap)
        try:
            return await pool.capabilities(), pool.stats.cap
        finally:
            await pool.aclose()

    caps, cap = run(lambda: go(True))
    assert caps.round_trip is not None and 0 < caps.round_trip < 20  # the login's USER
    assert caps.tls_per_transfer is (fixture == "vsftpd_tls_server")
    assert cap == sessions_worth_opening(caps)
    assert run(lambda: go(False))[1] == 5  # the user's cap is never overridden


def test_a_big_folder_gets_each_file_s_own_time_from_mdtm(
    vsftpd_server: RunningServer, fresh_subdir: Callable[[RunningServer], RunningServer]
) -> None:
    """vsftpd lists with LIST only: each file's exact time comes from MDTM, pipelined in
    windows whose number in flight grows (transfers/ftp/folders.py). A folder past the
    windows sent along with the listing's end, the growth and the cap gets each file's
    own time, never a neighbour's (a time shifted by one window would skip or re-copy
    the wrong files)."""
    ftp = fresh_subdir(vsftpd_server)
    count = MDTM_WINDOW * (MDTM_WINDOWS_AHEAD + MDTM_WINDOWS_MAX) + 7
    names = [f"f{i:05d}" for i in range(count)]
    make_tree(ftp, dict.fromkeys(names, b""))
    base = 1_600_000_000
    for i, name in enumerate(names):
        os.utime(ftp.root / name, (base + 61 * i, base + 61 * i))

    listed = list_once(ftp)
    assert len(listed) == count
    assert {e.path: e.mtime for e in listed} == {
        name: float(base + 61 * i) for i, name in enumerate(names)}


def test_a_big_folder_s_first_files_come_before_its_last_mdtm_and_leaving_early_is_safe(
    vsftpd_server: RunningServer, fresh_subdir: Callable[[RunningServer], RunningServer]
) -> None:
    """A LIST-only server: a big folder's files come out window by window as their MDTM
    replies are read, so the first ones can be decided (and copied) while the rest are
    still being asked about. A reader that leaves after the first file leaves replies
    owed: the session must then never run another command (it would read an MDTM reply
    as its own); a fresh session lists the folder whole, each file with its own time."""
    ftp = fresh_subdir(vsftpd_server)
    count = MDTM_WINDOW * (MDTM_WINDOWS_AHEAD + 4)
    names = [f"f{i:05d}" for i in range(count)]
    make_tree(ftp, dict.fromkeys(names, b"x"))
    base = 1_600_000_000
    for i, name in enumerate(names):
        os.utime(ftp.root / name, (base + 61 * i, base + 61 * i))

    async def go() -> tuple[Entry, str | None, list[Entry]]:
        store = ftp_store(ftp)
        try:
            session = await store.connect()
            try:
                listing = session.list("")
                first = await anext(listing)
                await listing.aclose()
                broken = session._broken  # type: ignore[attr-defined]
                with pytest.raises(TransientError):
                    await session.stat(first.path)
            finally:
                await session.close()
            again = await store.connect()
            try:
                whole = [e async for e in again.list("")]
            finally:
                await again.close()
            return first, broken, whole
        finally:
            await store.aclose()

    first, broken, whole = asyncio.run(go())
    assert first.path in names and first.mtime == float(base + 61 * names.index(first.path))
    assert broken is not None and "MDTM" in broken
    assert {e.path: e.mtime for e in whole} == {
        name: float(base + 61 * i) for i, name in enumerate(names)}
