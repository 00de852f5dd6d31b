"""A store's first TCP connection opened while its protocol's code is imported
(transfers/preconnect.py): on real sockets on 127.0.0.1, OpenSSH's sshd and vsftpd
(plain and explicit FTPS).

What is pinned: the socket goes to the first connection only, and only when that
connection goes to the same host and port straight (an ssh config that redirects, a
proxy, a bound address or family: the connection is asyncssh's own and the early socket
is closed); a failed early connect is the store's failure with its usual message; a
socket left unused (the store closed) or waiting too long is closed; ``open_store``
starts it for an SFTP endpoint.
"""

from __future__ import annotations

import asyncio
import socket
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest

from fsmove.endpoint_access import ConnectOptions, open_store
from fsmove.transfers import preconnect
from fsmove.transfers.backend import ConnectError, EntryKind
from fsmove.transfers.endpoint import parse_endpoint
from fsmove.transfers.preconnect import Preconnect
from fsmove.transfers.sftp import SftpStore
from tests.servers import RunningServer


@pytest.fixture
def listener() -> Iterator[socket.socket]:
    """A listening socket on 127.0.0.1 that nothing serves (connections wait in its
    backlog until a test accepts them)."""
    with socket.create_server(("127.0.0.1", 0)) as sock:
        sock.settimeout(20)
        yield sock


def _port(sock: socket.socket) -> int:
    return int(sock.getsockname()[1])


def _closed_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return _port(sock)  # nothing listens there once this returns


def _sees_close(accepted: socket.socket) -> bool:
    accepted.settimeout(20)
    return accepted.recv(1) == b""


def test_the_socket_goes_once_to_a_connection_to_the_same_place(listener: socket.socket
                                                               ) -> None:
    async def go() -> None:
        early = Preconnect("127.0.0.1", _port(listener), timeout=20)
        sock = await early.take("127.0.0.1", _port(listener))
        assert sock is not None
        accepted, peer = listener.accept()
        with sock, accepted:
            assert peer == sock.getsockname()
            assert not sock.getblocking()  # as asyncio takes it
            assert await early.take("127.0.0.1", _port(listener)) is None
            early.close()  # taken: closing the Preconnect leaves it alone
            sock.sendall(b"x")
            assert accepted.recv(1) == b"x"

    asyncio.run(go())


def test_a_connection_that_goes_elsewhere_gets_none_and_the_early_socket_is_closed(
    listener: socket.socket
) -> None:
    async def go() -> None:
        early = Preconnect("127.0.0.1", _port(listener), timeout=20)
        accepted, _ = listener.accept()  # its connect is through
        with accepted:
            assert await early.take("127.0.0.1", _port(listener) + 1) is None
            assert _sees_close(accepted)
            assert await early.take("127.0.0.1", _port(listener)) is None

    asyncio.run(go())


def test_closed_unused_the_early_socket_is_closed(listener: socket.socket) -> None:
    early = Preconnect("127.0.0.1", _port(listener), timeout=20)
    accepted, _ = listener.accept()
    with accepted:
        early.close()
        assert _sees_close(accepted)


def test_a_failed_early_connect_is_the_connection_s_error() -> None:
    async def go() -> None:
        early = Preconnect("127.0.0.1", _closed_port(), timeout=20)
        with pytest.raises(ConnectionRefusedError):
            await early.take(early.host, early.port)

    asyncio.run(go())


def test_a_socket_left_waiting_too_long_is_closed_and_not_handed_over(
    listener: socket.socket, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A store that connects long after it was opened connects anew: the server may have
    closed a connection that said nothing (sshd's LoginGraceTime)."""
    async def go() -> None:
        early = Preconnect("127.0.0.1", _port(listener), timeout=20)
        accepted, _ = listener.accept()
        with accepted:
            monkeypatch.setattr(preconnect, "FRESH_FOR", -1.0)  # any wait is too long
            assert await early.take("127.0.0.1", _port(listener)) is None
            assert _sees_close(accepted)

    asyncio.run(go())


# -- with sshd ---------------------------------------------------------------------------


class _Recording(Preconnect):
    """Records the local address of the socket it hands over."""

    handed: tuple[str, int] | None = None

    async def take(self, host: str, port: int) -> socket.socket | None:
        sock = await super().take(host, port)
        if sock is not None:
            self.handed = sock.getsockname()
        return sock


def _sftp(server: RunningServer, early: Preconnect, **options: object) -> SftpStore:
    options.setdefault("known_hosts", server.known_hosts)
    endpoint = options.pop("endpoint", None) or parse_endpoint(server.url(with_password=True))
    return SftpStore(endpoint, client_keys=[], timeout=20.0, preconnect=early,
                     **options)  # type: ignore[arg-type]


async def _check_first_on_early(early: _Recording, first: Any, second: Any,
                                address: Callable[[Any], tuple[str, int]]) -> None:
    """Both sessions work; the first runs on the early socket, the second on its own."""
    for session in (first, second):
        assert (await session.stat("")).kind is EntryKind.DIR
    assert early.handed == address(first)
    assert address(second) != early.handed


def _local_address(session: object) -> tuple[str, int]:
    conn = session._conn  # type: ignore[attr-defined]
    return tuple(conn.get_extra_info("sockname")[:2])  # type: ignore[return-value]


def test_the_store_s_first_connection_runs_on_the_early_socket(
    sshd_server: RunningServer, fresh_subdir: Callable[[RunningServer], RunningServer]
) -> None:
    server = fresh_subdir(sshd_server)

    async def go() -> None:
        early = _Recording(server.host, server.port, timeout=20)
        st = _sftp(server, early)
        first = await st.connect()
        second = await st._open_session()
        await _check_first_on_early(early, first, second, _local_address)
        await st.aclose()

    asyncio.run(go())


def test_an_ssh_config_that_redirects_gets_its_own_connection(
    sshd_server: RunningServer, fresh_subdir: Callable[[RunningServer], RunningServer],
    listener: socket.socket, tmp_path: Path
) -> None:
    """The early socket went to the URL's host and port (here a listener that is not
    the server); ~/.ssh/config sends the connection to another port: the store connects
    on its own and the early socket is closed unused."""
    server = fresh_subdir(sshd_server)
    config = tmp_path / "ssh_config"
    config.write_text(f"Host {server.host}\n  Port {server.port}\n")
    endpoint = parse_endpoint(
        f"sftp://{server.user}:{server.password}@{server.host}{server.url_path}")

    async def go() -> None:
        early = _Recording("127.0.0.1", _port(listener), timeout=20)
        accepted, _ = listener.accept()
        with accepted:
            st = _sftp(server, early, endpoint=endpoint, ssh_config=config)
            assert (await (await st.connect()).stat("")).kind is EntryKind.DIR
            await st.aclose()
            assert early.handed is None
            assert _sees_close(accepted)

    asyncio.run(go())


@pytest.mark.parametrize("setting", [
    {"proxy_command": "ssh -W %h:%p gateway"}, {"tunnel": "gateway"},
    {"local_addr": ("127.0.0.1", 0)}, {"family": socket.AF_INET},
])
def test_a_connection_through_a_proxy_or_bound_otherwise_gets_no_early_socket(
    listener: socket.socket, setting: dict[str, object]
) -> None:
    """ProxyCommand, ProxyJump, BindAddress, AddressFamily: asyncssh would connect in
    its own way; the early socket is closed unused (asked before anything connects)."""
    import asyncssh

    async def go() -> None:
        early = _Recording("127.0.0.1", _port(listener), timeout=20)
        accepted, _ = listener.accept()
        with accepted:
            st = SftpStore(parse_endpoint(f"sftp://u@127.0.0.1:{_port(listener)}/x"),
                           preconnect=early, timeout=20.0)
            options = await asyncssh.SSHClientConnectionOptions.construct(
                host="127.0.0.1", port=_port(listener), config=(), **setting)
            assert await st._preconnected(options) is None
            assert _sees_close(accepted)
            assert early.handed is None
            await st.aclose()

    asyncio.run(go())


def test_a_refused_early_connect_fails_the_store_as_before() -> None:
    port = _closed_port()

    async def go() -> None:
        endpoint = parse_endpoint(f"sftp://someone:pw@127.0.0.1:{port}/data")
        st = SftpStore(endpoint, client_keys=[], timeout=20.0,
                       preconnect=Preconnect("127.0.0.1", port, timeout=20))
        with pytest.raises(ConnectError, match=r"cannot connect to someone@127\.0\.0\.1"
                                               rf":{port}: .*refused"):
            await st.connect()
        await st.aclose()

    asyncio.run(go())


def test_open_store_starts_the_first_connection_of_an_sftp_endpoint(
    listener: socket.socket
) -> None:
    endpoint = parse_endpoint(f"sftp://someone:pw@127.0.0.1:{_port(listener)}/data")
    store = open_store(endpoint, ConnectOptions(timeout=20))
    accepted, _ = listener.accept()  # connected before anything asked the store
    with accepted:
        early = store._preconnect  # type: ignore[attr-defined]
        assert (early.host, early.port) == ("127.0.0.1", _port(listener))
        asyncio.run(store.aclose())
        assert _sees_close(accepted)


# -- with vsftpd -------------------------------------------------------------------------


def _control_address(session: object) -> tuple[str, int]:
    client = session._client  # type: ignore[attr-defined]
    return tuple(client.stream.writer.get_extra_info("sockname")[:2])  # type: ignore[return-value]


@pytest.mark.parametrize("fixture", ["vsftpd_server", "vsftpd_tls_server"])
def test_the_ftp_store_s_first_login_runs_on_the_early_socket(
    request: pytest.FixtureRequest, fresh_subdir: Callable[[RunningServer], RunningServer],
    fixture: str
) -> None:
    """Plain FTP and explicit FTPS (AUTH TLS on the early socket): the first control
    connection is the early one, the next is its own; both log in and list."""
    server = fresh_subdir(request.getfixturevalue(fixture))

    async def go() -> None:
        early = _Recording(server.host, server.port, timeout=20)
        store = open_store(parse_endpoint(server.url(with_password=True)),
                           ConnectOptions(timeout=20, ca_file=server.ca_cert))
        early_started = store._preconnect  # type: ignore[attr-defined]
        early_started.close()  # this test's own Recording takes its place
        store._preconnect = early  # type: ignore[attr-defined]
        first = await store.connect()
        second = await store.connect()
        await _check_first_on_early(early, first, second, _control_address)
        await first.close()
        await second.close()
        await store.aclose()

    asyncio.run(go())


def test_a_refused_early_connect_fails_the_ftp_store_as_it_fails_without_one() -> None:
    port = _closed_port()
    endpoint = parse_endpoint(f"ftp://someone:pw@127.0.0.1:{port}/data")

    async def failure(with_early: bool) -> str:
        from fsmove.transfers.ftp import FtpStore

        early = Preconnect("127.0.0.1", port, timeout=20) if with_early else None
        store = FtpStore(endpoint, timeout=20.0, preconnect=early)
        try:
            with pytest.raises(ConnectError) as caught:
                await store.connect()
        finally:
            await store.aclose()
        return str(caught.value)

    assert asyncio.run(failure(True)) == asyncio.run(failure(False))
    assert "refused" in asyncio.run(failure(True))
