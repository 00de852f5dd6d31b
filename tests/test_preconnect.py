"""A store's first TCP connection opened while its protocol's code is imported
(transfers/preconnect.py): on real sockets on 127.0.0.1, OpenSSH's sshd and vsftpd
(plain and explicit FTPS).

What is pinned: the socket goes to the first connection only, and only when that
connection goes to the same host and port straight (an ssh config that redirects, a
proxy, a bound address or family: the connection is asyncssh's own and the early socket
is closed); a failed early connect is the store's failure with its usual message; a
socket left unused (the store closed) or waiting too long is closed; ``open_store``
starts it for an SFTP endpoint. Over SSH the early socket also carries asyncssh's
version line: the server gets it once, and a connection that would start with another
line never takes that socket.
"""

from __future__ import annotations

import asyncio
import socket
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest

from fsmove.endpoint_access import ConnectOptions, connect_early, open_store
from fsmove.transfers import preconnect
from fsmove.transfers.backend import ConnectError, EntryKind
from fsmove.transfers.endpoint import parse_endpoint
from fsmove.transfers.hostkeys import HostKeyChecker, KnownHostsFile
from fsmove.transfers.preconnect import Preconnect, asyncssh_hello
from fsmove.transfers.sftp import SftpStore
from fsmove.transfers.sftp.quick_start import ssh_version_line
from fsmove.transfers.sftp.store import _Client
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


def _read_to_close(accepted: socket.socket) -> bytes:
    """What the peer sent before it closed the connection."""
    accepted.settimeout(20)
    said = b""
    while chunk := accepted.recv(64):
        said += chunk
    return said


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


def test_the_hello_is_sent_once_connected_and_taken_only_by_a_connection_that_sends_it(
    listener: socket.socket
) -> None:
    async def go() -> None:
        hello = b"SSH-2.0-Test_1\r\n"
        early = Preconnect("127.0.0.1", _port(listener), timeout=20, hello=hello)
        accepted, _ = listener.accept()
        with accepted:
            accepted.settimeout(20)
            got = b""
            while len(got) < len(hello):  # sent before anyone asked for the socket
                got += accepted.recv(64)
            assert got == hello
            assert await early.take("127.0.0.1", _port(listener)) is None  # no line
            assert _sees_close(accepted)
        other = Preconnect("127.0.0.1", _port(listener), timeout=20, hello=hello)
        accepted, _ = listener.accept()
        with accepted:
            wrong = b"SSH-2.0-Test_2\r\n"
            assert await other.take("127.0.0.1", _port(listener), hello=wrong) is None
            assert accepted.recv(64) == hello and _sees_close(accepted)
        third = Preconnect("127.0.0.1", _port(listener), timeout=20, hello=hello)
        accepted, _ = listener.accept()
        with accepted:
            sock = await third.take("127.0.0.1", _port(listener), hello=hello)
            assert sock is not None
            sock.close()

    asyncio.run(go())


def test_the_hello_is_the_line_asyncssh_sends_with_fsmove_s_options() -> None:
    import asyncssh

    line = ssh_version_line(asyncssh.SSHClientConnectionOptions(host="h", config=()))
    assert asyncssh_hello() == line == f"SSH-2.0-AsyncSSH_{asyncssh.__version__}\r\n".encode()


def test_closed_unused_the_early_socket_is_closed(listener: socket.socket) -> None:
    early = Preconnect("127.0.0.1", _port(listener), timeout=20)
    accepted, _ = listener.accept()
    with accepted:
        early.close()
        assert _sees_close(accepted)


def test_connections_started_early_wait_for_the_store_of_their_place(
    listener: socket.socket
) -> None:
    """Two for one place (a copy between two folders of one server), taken in order;
    another place gets a new one; those no store took are closed by the command."""
    port = _port(listener)
    preconnect.start_early("127.0.0.1", port, timeout=20)
    preconnect.start_early("127.0.0.1", port, timeout=20)
    preconnect.start_early("127.0.0.1", port, timeout=20, hello=b"SSH-2.0-X\r\n")
    first = preconnect.early_for("127.0.0.1", port, timeout=20)
    second = preconnect.early_for("127.0.0.1", port, timeout=20)
    assert first is not second and not first.hello and not second.hello
    accepted = [listener.accept()[0] for _ in range(3)]  # all three connected
    elsewhere = preconnect.early_for("127.0.0.1", port, timeout=20, hello=b"SSH-2.0-Y\r\n")
    accepted.append(listener.accept()[0])  # a new one: nothing waited for that place
    try:
        first.close()
        second.close()
        elsewhere.close()
        preconnect.close_unclaimed()  # the third: no store took it
        said = sorted(_read_to_close(sock) for sock in accepted)  # all four closed
        assert said == [b"", b"", b"SSH-2.0-X\r\n", b"SSH-2.0-Y\r\n"]
        assert preconnect.early_for("127.0.0.1", port, timeout=20,
                                    hello=b"SSH-2.0-X\r\n") is not None
        listener.accept()[0].close()  # ... that one was new too
    finally:
        for sock in accepted:
            sock.close()
        preconnect.close_unclaimed()


def test_connect_early_starts_one_per_sftp_endpoint_and_open_store_takes_it(
    listener: socket.socket
) -> None:
    """Local paths, clever:// URLs, text that does not parse and a bad timeout start
    nothing (the command says what is wrong), nor does FTP (measured slower started
    this early: its store starts its own); an SFTP endpoint gets its connection, which
    its store then holds."""
    port = _port(listener)
    connect_early(["/some/where", "clever://app_x/www", "nonsense://h/x", "sftp://",
                   f"ftp://u@127.0.0.1:{port}/a", f"ftps://u@127.0.0.1:{port}/a"],
                  timeout=20)
    connect_early([f"sftp://u@127.0.0.1:{port}/b"], timeout=float("nan"))
    connect_early([f"sftp://u@127.0.0.1:{port}/b"], timeout=20)
    try:
        sftp_side = listener.accept()[0]
        with sftp_side:
            sftp = open_store(parse_endpoint(f"sftp://u:pw@127.0.0.1:{port}/b"),
                              ConnectOptions(timeout=20))
            listener.settimeout(0.5)
            with pytest.raises(TimeoutError):
                listener.accept()  # nothing else connected: the store took that one
            assert sftp._preconnect.hello == asyncssh_hello()  # type: ignore[attr-defined]
            asyncio.run(sftp.aclose())
            assert _read_to_close(sftp_side) == asyncssh_hello()
    finally:
        preconnect.close_unclaimed()


_RECORD_EARLY_START = """
import sys
from fsmove.transfers import preconnect
started = []
real = preconnect.start_early
def start_early(host, port, **kw):
    started.append((host, port, "fsmove.commands.copy" in sys.modules,
                    "asyncssh" in sys.modules))
    real(host, port, **kw)
preconnect.start_early = start_early
from fsmove.cli import main
try:
    main()
finally:
    print(started, file=sys.stderr)
"""


def test_a_copy_starts_its_connections_before_importing_the_copy_s_code(
    tmp_path: Path
) -> None:
    """What the early start is for: the round trips overlap the copy's imports."""
    import subprocess
    import sys

    port = _closed_port()
    done = subprocess.run(
        [sys.executable, "-c", _RECORD_EARLY_START, "copy", str(tmp_path),
         f"sftp://u@127.0.0.1:{port}/x", "--quiet", "--timeout", "20",
         "--journal", str(tmp_path / "j.sqlite")],
        capture_output=True, text=True, timeout=120,
        env={"PATH": "/usr/bin:/bin", "HOME": str(tmp_path),
             "XDG_STATE_HOME": str(tmp_path / "state"), "FSMOVE_DST_PASSWORD": "pw"})
    assert "connection refused" in done.stderr and done.returncode == 1
    assert done.stderr.strip().splitlines()[-1] == f"[('127.0.0.1', {port}, False, False)]"


_RECORD_FTP_EARLY_START = _RECORD_EARLY_START.replace(
    '"asyncssh" in sys.modules', '"fsmove.transfers.ftp" in sys.modules')


def test_an_ftp_copy_starts_both_connections_before_the_ftp_backend_is_imported(
    tmp_path: Path
) -> None:
    """FTP -> FTP: the destination's first connection starts with the source's, not
    once the source's store has imported the FTP backend (~0.1 s later); both before
    that import, after the copy's own code (started earlier still, the first byte of
    small-ftp-60ms came later: benchmarks/README.md "Session 19")."""
    import subprocess
    import sys

    src_port, dst_port = _closed_port(), _closed_port()
    done = subprocess.run(
        [sys.executable, "-c", _RECORD_FTP_EARLY_START, "copy",
         f"ftp://u@127.0.0.1:{src_port}/x", f"ftp://u@127.0.0.1:{dst_port}/y", "--quiet",
         "--timeout", "20", "--journal", str(tmp_path / "j.sqlite")],
        capture_output=True, text=True, timeout=120,
        env={"PATH": "/usr/bin:/bin", "HOME": str(tmp_path),
             "XDG_STATE_HOME": str(tmp_path / "state"), "FSMOVE_SRC_PASSWORD": "pw",
             "FSMOVE_DST_PASSWORD": "pw"})
    assert "connection refused" in done.stderr and done.returncode == 1, done.stderr
    assert done.stderr.strip().splitlines()[-1] == (
        f"[('127.0.0.1', {src_port}, True, False), ('127.0.0.1', {dst_port}, True, False)]")


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

    async def take(self, host: str, port: int, *, hello: bytes = b"") -> socket.socket | None:
        sock = await super().take(host, port, hello=hello)
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


@pytest.mark.parametrize("hello", [False, True], ids=["connected", "version-line-sent"])
def test_the_store_s_first_connection_runs_on_the_early_socket(
    sshd_server: RunningServer, fresh_subdir: Callable[[RunningServer], RunningServer],
    hello: bool
) -> None:
    """With the version line sent by the thread, sshd must get it once (a second line
    is a broken packet to it: the login fails) and the login must not wait for it."""
    server = fresh_subdir(sshd_server)

    async def go() -> None:
        early = _Recording(server.host, server.port, timeout=20,
                           hello=asyncssh_hello() if hello else b"")
        st = _sftp(server, early)
        first = await st.connect()
        second = await st._open_session()
        await _check_first_on_early(early, first, second, _local_address)
        await st.aclose()

    asyncio.run(go())


def test_the_first_login_sends_the_password_first_though_another_gets_in_before_it(
    sshd_server: RunningServer, fresh_subdir: Callable[[RunningServer], RunningServer],
    monkeypatch: pytest.MonkeyPatch
) -> None:
    """The store's first login (on the early socket) holds the right to send the
    password first from its start: a login started after it, which here gets in while
    the first still waits for its socket, asks ``none`` first."""
    from fsmove.transfers.sftp import store as sftp_store

    server = fresh_subdir(sshd_server)
    asked_first: list[tuple[str, int]] = []
    ask = sftp_store.ask_password_first

    def recording_ask(conn: Any) -> bool:
        asked_first.append(tuple(conn.get_extra_info("sockname")[:2]))
        return ask(conn)

    monkeypatch.setattr(sftp_store, "ask_password_first", recording_ask)

    async def go() -> None:
        early = _Recording(server.host, server.port, timeout=20, hello=asyncssh_hello())
        release = asyncio.Event()
        take = early.take

        async def held_take(host: str, port: int, *, hello: bytes = b"") -> Any:
            await release.wait()  # until the second login is in
            return await take(host, port, hello=hello)

        early.take = held_take  # type: ignore[method-assign]
        st = _sftp(server, early)
        first_login = asyncio.create_task(st._open_session())
        await asyncio.sleep(0)  # the first login starts (and claims) first
        second = await st._open_session()
        release.set()
        first = await first_login
        assert early.handed == _local_address(first) != _local_address(second)
        assert asked_first[0] == early.handed  # the second asked ``none`` first
        await st.aclose()

    asyncio.run(go())


def test_the_capabilities_are_asked_on_the_first_login_not_on_one_of_their_own(
    sshd_server: RunningServer, fresh_subdir: Callable[[RunningServer], RunningServer]
) -> None:
    """Asked while the store's first login (on the early socket) is on its way, they
    wait for it: one login, not a second one that would end later."""
    server = fresh_subdir(sshd_server)

    async def go() -> None:
        early = _Recording(server.host, server.port, timeout=20, hello=asyncssh_hello())
        st = _sftp(server, early)
        first_login = asyncio.create_task(st._open_session())
        await asyncio.sleep(0)
        caps = await st.capabilities()
        first = await first_login
        assert caps.remote and st._sessions == {first}  # type: ignore[attr-defined]
        assert _local_address(first) == early.handed
        await st.aclose()

    asyncio.run(go())


def test_the_first_login_s_error_is_the_capabilities_error() -> None:
    port = _closed_port()

    async def go() -> None:
        st = SftpStore(parse_endpoint(f"sftp://u:pw@127.0.0.1:{port}/x"), timeout=20.0)
        first_login = asyncio.create_task(st._open_session())
        await asyncio.sleep(0)
        with pytest.raises(ConnectError, match="connection refused") as caught:
            await st.capabilities()
        assert caught.value is st._first_login_error  # type: ignore[attr-defined]
        with pytest.raises(ConnectError):
            await first_login
        await st.aclose()

    async def failed_before() -> None:
        """A first login that failed before the capabilities were asked (a blip at the
        start) is not their answer: they log in themselves, as any borrower would."""
        st = SftpStore(parse_endpoint(f"sftp://u:pw@127.0.0.1:{port}/x"), timeout=20.0)
        with pytest.raises(ConnectError):
            await st._open_session()
        with pytest.raises(ConnectError, match="connection refused") as caught:
            await st.capabilities()
        assert caught.value is not st._first_login_error  # type: ignore[attr-defined]
        await st.aclose()

    asyncio.run(go())
    asyncio.run(failed_before())


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
            client = _Client(HostKeyChecker(KnownHostsFile(None)))
            assert await st._preconnected(options, client) is None
            assert not client.version_sent
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
        accepted.settimeout(20)
        assert accepted.recv(64) == early.hello == asyncssh_hello() != b""
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
