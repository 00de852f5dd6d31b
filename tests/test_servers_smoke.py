"""The real-server fixtures work: log in, upload, list, download on each server.

Clients here are the reference ones (stdlib ftplib, asyncssh), not fsmove's.
"""

from __future__ import annotations

import asyncio
import ftplib
import io
import re
import socket
import ssl
import time
from collections.abc import Callable
from contextlib import AbstractContextManager
from pathlib import Path
from urllib.parse import quote

import asyncssh
import pytest

from tests.servers import (
    RunningServer,
    make_tree,
    start_aioftp,
    start_proftpd,
    start_pureftpd,
    start_vsftpd,
)
from tests.servers.catalog import FTP_SERVERS, FTPS_SERVERS
from tests.servers.process import open_connections
from tests.servers.vsftpd import ACCEPT_TIMEOUT

pytestmark = pytest.mark.interop

NAME = "héllo wörld.bin"
CONTENT = bytes(range(256)) * 64
#: How each server sets a file's mtime (aioftp's server cannot).
SET_TIME = {
    "vsftpd": "MDTM {stamp} {path}",
    "pure-ftpd": "MFMT {stamp} {path}",
    "proftpd": "MFMT {stamp} {path}",
}
STAMP = "20200102030405"
STAMP_EPOCH = 1577934245.0


class ReusingFTP_TLS(ftplib.FTP_TLS):
    """FTP_TLS whose data connections resume the control connection's TLS session.

    vsftpd and proftpd refuse a data connection that does not (their default).
    """

    def ntransfercmd(self, cmd: str, rest: int | str | None = None) -> tuple[socket.socket, int]:
        conn, size = ftplib.FTP.ntransfercmd(self, cmd, rest)
        if self._prot_p:  # type: ignore[attr-defined]
            assert isinstance(self.sock, ssl.SSLSocket)
            conn = self.context.wrap_socket(
                conn, server_hostname=self.host, session=self.sock.session
            )
        return conn, size


def _login(server: RunningServer, client: ftplib.FTP) -> ftplib.FTP:
    client.connect(server.host, server.port, timeout=10)
    if isinstance(client, ftplib.FTP_TLS):
        client.auth()
        client.login(server.user, server.password)
        client.prot_p()
    else:
        client.login(server.user, server.password)
    client.cwd(server.url_path)
    return client


def _tls_context(server: RunningServer) -> ssl.SSLContext:
    assert server.ca_cert is not None
    return ssl.create_default_context(cafile=str(server.ca_cert))


def _round_trip(server: RunningServer, client: ftplib.FTP) -> None:
    """Upload (resuming half way), set the time, list, download; change a given file."""
    make_tree(server, {"given/old.txt": b"from the test"})
    half = len(CONTENT) // 2
    with _login(server, client) as ftp:
        ftp.storbinary(f"STOR {NAME}", io.BytesIO(CONTENT[:half]))
        ftp.storbinary(f"STOR {NAME}", io.BytesIO(CONTENT[half:]), rest=half)
        if server.kind in SET_TIME:
            ftp.voidcmd(SET_TIME[server.kind].format(stamp=STAMP, path=NAME))
        lines: list[str] = []
        ftp.retrlines("LIST", lines.append)
        assert any(line.endswith(NAME) for line in lines), lines
        got = io.BytesIO()
        ftp.retrbinary(f"RETR {NAME}", got.write)
        assert got.getvalue() == CONTENT
        ftp.rename("given/old.txt", "given/new.txt")
        ftp.delete("given/new.txt")
        ftp.rmd("given")
    local = server.root / NAME
    assert local.read_bytes() == CONTENT
    assert (local.stat().st_uid, local.stat().st_gid) == server.owner
    assert not (server.root / "given").exists()
    if server.kind in SET_TIME:
        assert local.stat().st_mtime == STAMP_EPOCH



@pytest.mark.parametrize("fixture", FTP_SERVERS)
def test_ftp_round_trip(
    fixture: str,
    request: pytest.FixtureRequest,
    fresh_subdir: Callable[[RunningServer], RunningServer],
) -> None:
    server = fresh_subdir(request.getfixturevalue(fixture))
    _round_trip(server, ftplib.FTP())


@pytest.mark.parametrize("fixture", FTPS_SERVERS)
def test_ftps_round_trip_with_session_reuse(
    fixture: str,
    request: pytest.FixtureRequest,
    fresh_subdir: Callable[[RunningServer], RunningServer],
) -> None:
    server = fresh_subdir(request.getfixturevalue(fixture))
    assert server.scheme == "ftps"
    _round_trip(server, ReusingFTP_TLS(context=_tls_context(server)))


@pytest.mark.parametrize("fixture", FTPS_SERVERS)
def test_ftps_servers_require_session_reuse(
    fixture: str,
    request: pytest.FixtureRequest,
    fresh_subdir: Callable[[RunningServer], RunningServer],
) -> None:
    """The servers keep their default: stock FTP_TLS gets its data connection refused.

    Depending on timing the client sees the refusal on the control connection first, or
    a broken data connection (the server drops it right after the handshake) followed by
    the refusal on the control connection.
    """
    server = fresh_subdir(request.getfixturevalue(fixture))
    with _login(server, ftplib.FTP_TLS(context=_tls_context(server))) as ftp:
        try:
            ftp.storbinary("STOR x.bin", io.BytesIO(CONTENT))
        except ftplib.Error as exc:
            reply = str(exc)
        except OSError:
            reply = ftp.getline()
        else:
            pytest.fail("a data connection without TLS session reuse was accepted")
    assert reply[:3] in {"425", "522"}, reply


@pytest.mark.parametrize("fixture", FTPS_SERVERS)
def test_ftps_servers_refuse_plain_login(fixture: str, request: pytest.FixtureRequest) -> None:
    server: RunningServer = request.getfixturevalue(fixture)
    with ftplib.FTP() as ftp:
        ftp.connect(server.host, server.port, timeout=10)
        with pytest.raises(ftplib.error_perm, match=r"^5[35]0"):
            ftp.login(server.user, server.password)


#: What each server answers the connection beyond max_clients: (reply, at which step).
#: proftpd's MaxClients only bites at USER, with a 530.
LIMIT_REPLIES = {
    start_vsftpd: "421",
    start_pureftpd: "421",
    start_proftpd: "530",
    start_aioftp: "421",
}


@pytest.mark.parametrize("start", list(LIMIT_REPLIES), ids=lambda f: f.__name__)
def test_ftp_options_max_clients_and_pasv_address(
    start: Callable[..., AbstractContextManager[RunningServer]],
    own_server: Callable[..., RunningServer],
) -> None:
    server = own_server(start, max_clients=1, pasv_address="127.0.0.11")
    assert server.pasv_ports is not None
    low, high = server.pasv_ports
    with _login(server, ftplib.FTP()) as first:
        numbers = [int(n) for n in re.findall(r"\d+", first.sendcmd("PASV")[3:])[:6]]
        assert numbers[:4] == [127, 0, 0, 11]
        assert low <= numbers[4] * 256 + numbers[5] <= high
        second = ftplib.FTP()
        with pytest.raises(ftplib.Error, match=f"^{LIMIT_REPLIES[start]}"):
            _login(server, second)
        second.close()


async def _sftp_round_trip(server: RunningServer, **auth: object) -> None:
    async with (
        asyncssh.connect(
            server.host,
            server.port,
            username=server.user,
            known_hosts=str(server.known_hosts),
            **auth,  # type: ignore[arg-type]
        ) as conn,
        conn.start_sftp_client() as sftp,
    ):
        async with sftp.open(server.path(NAME), "wb") as out:
            await out.write(CONTENT)
        assert NAME in await sftp.listdir(server.url_path)
        async with sftp.open(server.path(NAME), "rb") as src:
            assert await src.read() == CONTENT
        await sftp.rename(server.path("given/old.txt"), server.path("given/new.txt"))
        await sftp.remove(server.path("given/new.txt"))
        await sftp.rmdir(server.path("given"))


@pytest.mark.parametrize("auth", ["password", "key"])
def test_sftp_round_trip(
    auth: str,
    sshd_server: RunningServer,
    fresh_subdir: Callable[[RunningServer], RunningServer],
) -> None:
    server = fresh_subdir(sshd_server)
    make_tree(server, {"given/old.txt": b"from the test"})
    assert server.client_key is not None
    options: dict[str, object] = (
        {"password": server.password, "client_keys": None}
        if auth == "password"
        else {"client_keys": [str(server.client_key)], "password": None}
    )
    asyncio.run(_sftp_round_trip(server, **options))
    local = server.root / NAME
    assert local.read_bytes() == CONTENT
    assert (local.stat().st_uid, local.stat().st_gid) == server.owner


def test_sftp_host_key_is_checked(sshd_server: RunningServer, tmp_path: Path) -> None:
    stranger = tmp_path / "known_hosts"
    stranger.write_text("")

    async def connect() -> None:
        async with asyncssh.connect(
            sshd_server.host,
            sshd_server.port,
            username=sshd_server.user,
            password=sshd_server.password,
            client_keys=None,
            known_hosts=str(stranger),
        ):
            pass

    with pytest.raises(asyncssh.HostKeyNotVerifiable):
        asyncio.run(connect())


def test_url_and_repr_keep_the_password_out(vsftpd_server: RunningServer) -> None:
    server = vsftpd_server
    assert server.url("a b/ü") == f"ftp://{server.user}@127.0.0.1:{server.port}/a%20b/%C3%BC"
    assert server.password not in server.url() and server.password not in repr(server)
    credentials = f"{server.user}:{quote(server.password, safe='')}"
    assert server.url(with_password=True) == f"ftp://{credentials}@127.0.0.1:{server.port}/"


def _raw_login(server: RunningServer) -> tuple[socket.socket, io.BufferedReader]:
    control = socket.create_connection((server.host, server.port))
    replies = control.makefile("rb")
    replies.readline()  # 220
    control.sendall(f"USER {server.user}\r\nPASS {server.password}\r\nTYPE I\r\n".encode())
    for _ in range(3):
        assert replies.readline()[:1] in (b"2", b"3")
    return control, replies


def _passive_port(control: socket.socket, replies: io.BufferedReader) -> int:
    control.sendall(b"EPSV\r\n")
    found = re.search(rb"\|\|\|(\d+)\|", replies.readline())
    assert found is not None
    return int(found.group(1))


def test_a_dead_ftp_clients_bytes_are_counted_until_written(
    own_server: Callable[..., RunningServer],
) -> None:
    """The kill tests' settle rule (``open_connections`` with the passive range): a data
    connection still in a listener's queue counts, a control connection left waiting
    for a data connection that will never come does not. vsftpd keeps the latter
    ``accept_timeout`` (60 s by default, 10 s in the tests' servers): waiting for it
    timed out the kill tests on a loaded machine."""
    server = own_server(start_vsftpd)
    assert server.pasv_ports is not None
    data_ports = range(server.pasv_ports[0], server.pasv_ports[1] + 1)
    control, replies = _raw_login(server)
    assert open_connections(server.host, server.port, data_ports) == 1
    data = socket.create_connection((server.host, _passive_port(control, replies)))
    data.sendall(CONTENT)
    data.close()  # the bytes wait in the server's queue, not yet accepted
    assert open_connections(server.host, server.port, data_ports) == 2
    control.sendall(f"STOR {server.path(NAME)}\r\n".encode())
    assert replies.readline().startswith(b"150")
    replies.close()
    control.close()  # the client is gone; the server still writes what it received
    settle(server, data_ports)
    assert (server.root / NAME).read_bytes() == CONTENT

    control, replies = _raw_login(server)
    _passive_port(control, replies)
    control.sendall(f"STOR {server.path('never.bin')}\r\n".encode())
    replies.close()
    control.close()  # killed between STOR and the data connection
    settle(server, data_ports)  # at once, not after vsftpd's accept_timeout


def settle(server: RunningServer, data_ports: range) -> None:
    # Bounded (half of accept_timeout): a state, not a pause.
    for _ in range(int(ACCEPT_TIMEOUT / 2 / 0.01)):
        if not open_connections(server.host, server.port, data_ports):
            return
        time.sleep(0.01)
    raise AssertionError("the server held the dead client's connections")
