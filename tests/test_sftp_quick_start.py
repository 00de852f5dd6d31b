"""An SFTP session's start in fewer round trips (transfers/sftp/quick_start.py), against
OpenSSH's sshd and asyncssh's own server on 127.0.0.1.

What is pinned: a given password is the first method asked (no ``none`` first), a
server that refuses passwords still takes the key, ``PreferredAuthentications`` without
password keeps asyncssh's order, nothing is sized before the server's limits are
known although the session is handed over before they answer, and on OpenSSH the first
authentication request leaves before the service request was accepted and the first
SFTP requests before the VERSION is back (another server keeps asyncssh's order; a
failed version exchange is the session's error).
"""

from __future__ import annotations

import asyncio
import contextlib
import os
from collections.abc import AsyncIterator, Callable, Iterator
from pathlib import Path
from typing import Any

import asyncssh
import pytest
from asyncssh.constants import (
    FXP_INIT,
    FXP_STAT,
    FXP_VERSION,
    MSG_SERVICE_ACCEPT,
    MSG_USERAUTH_REQUEST,
)
from asyncssh.sftp import SAFE_SFTP_READ_LEN

from fsmove.transfers.backend import ConnectError, EntryKind
from fsmove.transfers.endpoint import parse_endpoint
from fsmove.transfers.sftp import SftpStore
from fsmove.transfers.sftp import store as sftp_store
from fsmove.transfers.sftp.channel import posix_rename_advertised
from fsmove.transfers.sftp.quick_start import sent_auth_early, start_sftp
from tests.servers import RunningServer, start_sshd


@pytest.fixture
def server(
    sshd_server: RunningServer, fresh_subdir: Callable[[RunningServer], RunningServer]
) -> RunningServer:
    return fresh_subdir(sshd_server)


def _method(args: tuple[bytes, ...]) -> bytes:
    """The method of a USERAUTH_REQUEST, whose payload starts ``String(user),
    String(service), String(method)``."""
    blob = b"".join(args)
    for _ in range(2):
        blob = blob[4 + int.from_bytes(blob[:4], "big"):]
    return blob[4 : 4 + int.from_bytes(blob[:4], "big")]


@pytest.fixture
def auth_methods(monkeypatch: pytest.MonkeyPatch) -> Iterator[list[list[bytes]]]:
    """The authentication methods each of the SFTP store's connections asks, in order
    (one list per connection, in the order they started): recorded from the packets
    the connection sends (its ``connection_made`` comes first)."""
    asked: list[list[bytes]] = []
    made = sftp_store._Client.connection_made

    def record(self: Any, conn: asyncssh.SSHClientConnection) -> None:
        mine: list[bytes] = []
        asked.append(mine)
        send_packet = conn.send_packet

        def recording(pkttype: int, *args: bytes, handler: object = None) -> None:
            if pkttype == MSG_USERAUTH_REQUEST:
                mine.append(_method(args))
            send_packet(pkttype, *args, handler=handler)

        conn.send_packet = recording  # type: ignore[method-assign]
        made(self, conn)

    monkeypatch.setattr(sftp_store._Client, "connection_made", record)
    yield asked


@pytest.fixture
def packet_order(monkeypatch: pytest.MonkeyPatch
                 ) -> Iterator[list[tuple[asyncssh.SSHClientConnection, list[str]]]]:
    """Per connection of the SFTP store: the authentication requests it sent and the
    service accept it received, in the order they happened ("auth <method>",
    "accept"), and the connection itself."""
    seen: list[tuple[asyncssh.SSHClientConnection, list[str]]] = []
    made = sftp_store._Client.connection_made

    def record(self: Any, conn: asyncssh.SSHClientConnection) -> None:
        events: list[str] = []
        seen.append((conn, events))
        send_packet = conn.send_packet
        log_received = conn.log_received_packet

        def sending(pkttype: int, *args: bytes, handler: object = None) -> None:
            if pkttype == MSG_USERAUTH_REQUEST:
                events.append("auth " + _method(args).decode())
            send_packet(pkttype, *args, handler=handler)

        def received(pkttype: int, *args: Any) -> None:
            if pkttype == MSG_SERVICE_ACCEPT:
                events.append("accept")
            log_received(pkttype, *args)

        conn.send_packet = sending  # type: ignore[method-assign]
        conn.log_received_packet = received  # type: ignore[method-assign]
        made(self, conn)

    monkeypatch.setattr(sftp_store._Client, "connection_made", record)
    yield seen


@contextlib.asynccontextmanager
async def _asyncssh_server(tmp_path: Path, **options: Any) -> AsyncIterator[tuple[int, Path]]:
    """asyncssh's own SSH server (not OpenSSH) on 127.0.0.1 serving SFTP in
    ``tmp_path/root``: (its port, a known_hosts file naming its key)."""
    root = tmp_path / "root"
    root.mkdir()
    host_key = asyncssh.generate_private_key("ssh-ed25519")
    options.setdefault(
        "sftp_factory", lambda chan: asyncssh.SFTPServer(chan, chroot=os.fsencode(root)))
    server = await asyncssh.listen("127.0.0.1", 0, server_host_keys=[host_key], **options)
    try:
        port = server.sockets[0].getsockname()[1]
        known = tmp_path / "known_hosts"
        known.write_text(f"[127.0.0.1]:{port} "
                         f"{host_key.export_public_key().decode().strip()}\n")
        yield port, known
    finally:
        server.close()
        await server.wait_closed()


def _store(server: RunningServer, *, password: str | None, **options: Any) -> SftpStore:
    ep = parse_endpoint(server.url())
    if password is not None:
        ep = ep.with_password(password)
    options.setdefault("known_hosts", server.known_hosts)
    options.setdefault("timeout", 20.0)
    return SftpStore(ep, **options)


def test_a_password_is_the_first_method_asked(
    server: RunningServer, auth_methods: list[list[bytes]]
) -> None:
    async def go() -> None:
        st = _store(server, password=server.password, client_keys=[])
        session = await st.connect()
        assert (await session.stat("")).kind is EntryKind.DIR
        await st.aclose()

    asyncio.run(go())
    assert auth_methods == [[b"password"]]


def test_one_login_at_a_time_tries_the_password_first_until_one_got_in_with_it(
    server: RunningServer, auth_methods: list[list[bytes]]
) -> None:
    """Logins started together: one sends the password first, the others ask ``none``
    first (asyncssh's order); once it got in, every later login sends it first."""
    async def go() -> None:
        st = _store(server, password=server.password, client_keys=[])
        together = await asyncio.gather(*(st._open_session() for _ in range(3)))
        later = await st._open_session()
        for session in (*together, later):
            assert (await session.stat("")).kind is EntryKind.DIR
        await st.aclose()

    asyncio.run(go())
    first, later = auth_methods[:3], auth_methods[3]
    assert sorted(first) == [[b"none", b"password"], [b"none", b"password"], [b"password"]]
    assert later == [b"password"]


def test_without_a_password_asyncssh_asks_none_first_as_before(
    server: RunningServer, auth_methods: list[list[bytes]]
) -> None:
    async def go() -> None:
        st = _store(server, password=None, client_keys=[server.client_key])
        await (await st.connect()).stat("")
        await st.aclose()

    asyncio.run(go())
    assert auth_methods[0][0] == b"none"
    assert auth_methods[0][-1] == b"publickey"


def test_a_server_that_refuses_passwords_still_takes_the_key_and_is_not_asked_again(
    own_server: Callable[..., RunningServer], auth_methods: list[list[bytes]]
) -> None:
    """Password first, never instead: the refusal names what the server takes, and the
    key given beside the password logs in. The refusal is a failed login in the
    server's log (fail2ban counts them): the store's later logins ask ``none`` first."""
    sshd = own_server(start_sshd, password_auth=False)

    async def go() -> None:
        st = _store(sshd, password=sshd.password, client_keys=[sshd.client_key])
        assert (await (await st.connect()).stat("")).kind is EntryKind.DIR
        for _ in range(2):
            await (await st._open_session()).stat("")
        await st.aclose()

    asyncio.run(go())
    assert auth_methods[0][0] == b"password"
    assert b"none" not in auth_methods[0]
    assert auth_methods[0][-1] == b"publickey"
    for later in auth_methods[1:]:
        assert later[0] == b"none" and b"password" not in later, later
        assert later[-1] == b"publickey"


def test_preferred_authentications_without_password_keeps_asyncssh_s_order(
    server: RunningServer, auth_methods: list[list[bytes]], tmp_path: Path
) -> None:
    config = tmp_path / "ssh_config"
    config.write_text("PreferredAuthentications publickey\n")

    async def go() -> None:
        st = _store(server, password=server.password, client_keys=[server.client_key],
                    ssh_config=config)
        await (await st.connect()).stat("")
        await st.aclose()

    asyncio.run(go())
    assert all(b"password" not in methods for methods in auth_methods)
    assert auth_methods[0][0] == b"none"


@pytest.mark.parametrize("auth", ["password", "key"])
def test_on_openssh_the_first_auth_request_leaves_before_the_service_is_accepted(
    server: RunningServer, packet_order: list[tuple[Any, list[str]]], auth: str
) -> None:
    """One round trip less per login: the request is not held for the accept (the
    server's reply to a request it read first). By key, asyncssh's ``none`` goes early
    and the key follows the refusal; the accept is still read and checked."""
    async def go() -> None:
        if auth == "password":
            st = _store(server, password=server.password, client_keys=[])
        else:
            st = _store(server, password=None, client_keys=[server.client_key])
        assert (await (await st.connect()).stat("")).kind is EntryKind.DIR
        await st.aclose()

    asyncio.run(go())
    (conn, events), = packet_order
    first = "auth password" if auth == "password" else "auth none"
    assert events[:2] == [first, "accept"], events
    asked = [event for event in events if event != "accept"]
    assert asked[-1] == ("auth password" if auth == "password" else "auth publickey")
    assert asked.count(first) == 1  # the accept did not start the login over
    assert events.count("accept") == 1
    assert sent_auth_early(conn)
    assert conn._next_service is None  # the accept was taken


def test_a_server_not_known_to_read_in_order_gets_the_auth_request_after_the_accept(
    tmp_path: Path, packet_order: list[tuple[Any, list[str]]]
) -> None:
    """asyncssh's own server (its version string is not OpenSSH's): asyncssh's order."""
    async def go() -> None:
        async with _asyncssh_server(tmp_path, password_auth=True,
                                    server_factory=_PasswordServer) as (port, known):
            st = SftpStore(
                parse_endpoint(f"sftp://tester@127.0.0.1:{port}/").with_password("pw"),
                known_hosts=known, client_keys=[], timeout=20.0)
            assert (await (await st.connect()).stat("")).kind is EntryKind.DIR
            await st.aclose()

    asyncio.run(go())
    (conn, events), = packet_order
    assert events == ["accept", "auth password"], events
    assert not sent_auth_early(conn)


class _PasswordServer(asyncssh.SSHServer):
    def password_auth_supported(self) -> bool:
        return True

    def validate_password(self, username: str, password: str) -> bool:
        return username == "tester" and password == "pw"


def test_the_first_read_and_write_are_sized_by_the_server_s_limits(server: RunningServer
                                                                  ) -> None:
    """The session is handed over before the limits answer; its first read still asks
    OpenSSH's read limit (255 KiB), not asyncssh's 16 KiB default."""
    data = os.urandom(3 * 256 * 1024)
    (server.root / "big.bin").write_bytes(data)
    os.chown(server.root / "big.bin", *server.owner)

    async def go() -> None:
        st = _store(server, password=server.password, client_keys=[])
        session = await st.connect()
        first = None
        got = bytearray()
        async for piece in session.read("big.bin"):
            first = len(piece) if first is None else first
            got += piece
        assert bytes(got) == data
        limit = session._sftp.limits.max_read_len
        assert limit > SAFE_SFTP_READ_LEN
        assert first == limit
        fresh = await st._open_session()  # its limits not asked for yet

        async def one(data: bytes) -> AsyncIterator[bytes]:
            yield data

        assert await fresh.write("copy.bin", one(data)) == len(data)
        assert fresh._write_len == fresh._sftp.limits.max_write_len > SAFE_SFTP_READ_LEN
        await st.aclose()

    asyncio.run(go())
    assert (server.root / "copy.bin").read_bytes() == data


def test_a_server_not_known_to_answer_in_order_gives_its_limits_before_the_capabilities(
    tmp_path: Path,
) -> None:
    """asyncssh's own server (not OpenSSH): the capabilities wait for the limits answer,
    whose handle limit may be below the requests a session would otherwise carry."""
    client_key = asyncssh.generate_private_key("ssh-ed25519")
    key_file = tmp_path / "id"
    client_key.write_private_key(str(key_file))
    authorized = asyncssh.import_authorized_keys(client_key.export_public_key().decode())

    async def go() -> None:
        async with _asyncssh_server(tmp_path, authorized_client_keys=authorized
                                    ) as (port, known):
            st = SftpStore(parse_endpoint(f"sftp://tester@127.0.0.1:{port}/"),
                           known_hosts=known, client_keys=[key_file], timeout=20.0)
            caps = await st.capabilities()
            session = await st.connect()
            assert session._limits is None  # waited for
            assert any(note.startswith("read/write requests of ") for note in caps.notes)
            await st.aclose()

    asyncio.run(go())


def test_on_openssh_the_first_requests_travel_behind_the_init(
    server: RunningServer, sftp_packets: list[int]
) -> None:
    """One round trip less per session: the client is handed over once its INIT is
    written, its first request goes out before the VERSION is back, and its answer
    and the extensions the VERSION told (posix-rename) come as before."""
    async def go() -> tuple[bool, bool]:
        async with asyncssh.connect(
            server.host, server.port, username=server.user, password=server.password,
            client_keys=None, known_hosts=str(server.known_hosts),
        ) as conn:
            start = await start_sftp(conn, version_timeout=20.0)
            pending = not start.version.done()
            attrs = await start.client.stat(server.url_path)
            await start.version
            await start.limits
            assert attrs.type == asyncssh.FILEXFER_TYPE_DIRECTORY
            start.client.exit()
            return pending, posix_rename_advertised(start.client)

    pending, posix_rename = asyncio.run(go())
    assert pending and posix_rename
    assert sftp_packets[:3] == [FXP_INIT, FXP_STAT, -FXP_VERSION], sftp_packets


def test_a_server_not_known_to_answer_in_order_has_its_version_awaited_first(
    tmp_path: Path, sftp_packets: list[int]
) -> None:
    """asyncssh's own server: asyncssh's order (the VERSION back before the client is
    handed over)."""
    async def go() -> bool:
        async with _asyncssh_server(tmp_path, password_auth=True,
                                    server_factory=_PasswordServer) as (port, known):
            async with asyncssh.connect("127.0.0.1", port, username="tester", password="pw",
                                        client_keys=None, known_hosts=str(known)) as conn:
                start = await start_sftp(conn, version_timeout=20.0)
                done = start.version.done()
                await start.client.stat("/")
                start.client.exit()
                return done

    assert asyncio.run(go())
    assert sftp_packets[:3] == [FXP_INIT, -FXP_VERSION, FXP_STAT], sftp_packets


def _no_sftp_here(chan: object) -> asyncssh.SFTPServer:
    """An ``sftp`` subsystem that fails as it starts (a server whose sftp-server is
    broken or missing): the channel ends instead of a VERSION."""
    raise OSError("no sftp-server here")


def test_a_failed_version_exchange_is_the_session_s_error_not_a_file_s(
    tmp_path: Path,
) -> None:
    """A server that says it is OpenSSH (so the first requests travel behind the INIT)
    and ends the channel instead of a VERSION: the request sent meanwhile fails with
    the start's error, said as a refused SFTP start (a connection error, not a file's),
    within the timeout, and the session is no longer usable."""
    async def go() -> None:
        async with _asyncssh_server(tmp_path, password_auth=True,
                                    server_factory=_PasswordServer,
                                    server_version="OpenSSH_9.2p1 not-really",
                                    sftp_factory=_no_sftp_here) as (port, known):
            st = SftpStore(
                parse_endpoint(f"sftp://tester@127.0.0.1:{port}/").with_password("pw"),
                known_hosts=known, client_keys=[], timeout=20.0)
            session = await st.connect()
            with pytest.raises(ConnectError, match="refused the SFTP subsystem"):
                await session.stat("")
            assert not session.usable
            await st.aclose()

    asyncio.run(go())
