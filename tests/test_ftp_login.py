"""How an FTP session logs in: on a server known to read commands in order across the
login (vsftpd, pure-ftpd, proftpd: ``LOGIN_AT_ONCE_SERVERS``), the whole login goes in
one write after the greeting; any other server gets one command at a time. Run against
each real server: a server that lost what follows PASS would fail here, not in a user's
migration."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import replace

import pytest

from fsmove.transfers.backend import AuthError
from fsmove.transfers.ftp import client as ftp_client
from fsmove.transfers.ftp.client import FtpClient
from tests.servers import RunningServer, start_vsftpd
from tests.servers.catalog import THIRD_PARTY_FTP_SERVERS
from tests.test_ftp_backend import ftp_store, run

pytestmark = pytest.mark.interop

Wire = dict[int, list[list[str]]]

#: The servers of LOGIN_AT_ONCE_SERVERS; pyftpdlib is not one: with a wrong password it
#: answers the commands after PASS ("530 Log in with USER and PASS first") before PASS's
#: own refusal, which it delays.
AT_ONCE = tuple(f for f in THIRD_PARTY_FTP_SERVERS if f != "pyftpdlib_server")


def _record_writes(monkeypatch: pytest.MonkeyPatch) -> Wire:
    """Each client's writes (one list of command verbs per write), in order. The bytes
    on the wire are unchanged."""
    writes: Wire = {}
    send, send_many = FtpClient.send, FtpClient.send_many

    async def sent(self: FtpClient, line: str) -> None:
        writes.setdefault(id(self), []).append([line.split(" ", 1)[0]])
        await send(self, line)

    async def sent_many(self: FtpClient, lines: list[str]) -> None:
        writes.setdefault(id(self), []).append([line.split(" ", 1)[0] for line in lines])
        await send_many(self, lines)

    monkeypatch.setattr(ftp_client.FtpClient, "send", sent)
    monkeypatch.setattr(ftp_client.FtpClient, "send_many", sent_many)
    return writes


@pytest.mark.parametrize("fixture", AT_ONCE)
def test_a_known_server_s_login_is_one_write(
    fixture: str, request: pytest.FixtureRequest, monkeypatch: pytest.MonkeyPatch,
) -> None:
    """The store's first login asks FEAT and the login folder with the rest; a later one
    (FEAT known) does not. Both sessions then work: the replies were read in step, the
    port asked at login is the one a transfer can use."""
    server: RunningServer = request.getfixturevalue(fixture)
    writes = _record_writes(monkeypatch)
    tls = server.scheme == "ftps"
    secure = [["AUTH"]] if tls else []
    data = ["PBSZ", "PROT"] if tls else []
    port = [] if tls else ["EPSV"]

    async def go() -> None:
        store = ftp_store(server)
        first = await store.open_client()
        second = await store.open_client()
        try:
            assert store.features is not None and store.features.answered
            assert store.home == "/"
            utf8 = ["OPTS"] if store.features.utf8 else []
            assert writes[id(first)] == [*secure, ["USER", "PASS", *data, "FEAT", "OPTS",
                                                   "TYPE", "PWD", *port]]
            assert writes[id(second)] == [*secure, ["USER", "PASS", *data, *utf8, "TYPE",
                                                    *port]]
            for client in (first, second):
                assert (client.port_at_login is not None) is not tls
                assert (await client.cmd("NOOP")).code == 200  # nothing left unread
                pwd = await client.cmd("PWD")
                assert pwd.code == 257 and '"/"' in pwd.last
        finally:
            first.close()
            second.close()

    run(go)


@pytest.mark.parametrize("fixture", THIRD_PARTY_FTP_SERVERS)
def test_a_wrong_password_sent_at_once_is_refused_cleanly(
    fixture: str, request: pytest.FixtureRequest,
) -> None:
    """The refusal is PASS's (not a later command's "log in first"), says what to check,
    and names no password; the store then logs in with the right one."""
    server: RunningServer = request.getfixturevalue(fixture)
    wrong = "Not-The-Pw-9f3a"

    async def go() -> None:
        bad = ftp_store(replace(server, password=wrong))
        with pytest.raises(AuthError) as refused:
            await bad.open_client()
        assert not refused.value.retryable
        assert "check the user and password" in str(refused.value)
        assert wrong not in str(refused.value)
        assert bad.features is None  # nothing after the refusal was read as FEAT
        good = await ftp_store(server).open_client()
        try:
            assert (await good.cmd("NOOP")).code == 200
        finally:
            good.close()

    run(go)


def test_a_user_refused_at_user_gets_the_server_s_own_words(
    own_server: Callable[..., RunningServer],
) -> None:
    """vsftpd refuses a listed user at USER ("530 Permission denied."): the error is
    that refusal, whatever follows for the PASS sent with it (the login stops at the
    USER reply: a server that closes the connection there must not turn it into a
    network error)."""
    server = own_server(start_vsftpd, refuse_user=True)

    async def go() -> None:
        with pytest.raises(AuthError, match="Permission denied"):
            await ftp_store(server).open_client()

    run(go)


def test_an_unknown_server_logs_in_one_command_at_a_time(
    aioftp_server: RunningServer, monkeypatch: pytest.MonkeyPatch,
) -> None:
    """aioftp's server (its greeting names no known server, and it runs a connection's
    commands concurrently): USER, then PASS after the 331, each in its own write."""
    writes = _record_writes(monkeypatch)

    async def go() -> None:
        client = await ftp_store(aioftp_server).open_client()
        try:
            assert writes[id(client)][:2] == [["USER"], ["PASS"]]
            assert (await client.cmd("NOOP")).code in (200, 502)
        finally:
            client.close()

    run(go)



def test_another_server_logs_in_one_command_at_a_time(
    pyftpdlib_server: RunningServer, monkeypatch: pytest.MonkeyPatch,
) -> None:
    """A server not in LOGIN_AT_ONCE_SERVERS (pyftpdlib): USER, PASS and FEAT each
    after the last one's reply, then the rest in one write; the session works."""
    writes = _record_writes(monkeypatch)

    async def go() -> None:
        store = ftp_store(pyftpdlib_server)
        client = await store.open_client()
        try:
            assert writes[id(client)] == [["USER"], ["PASS"], ["FEAT"],
                                          ["OPTS", "TYPE", "PWD", "EPSV"]]
            assert (await client.cmd("NOOP")).code == 200
        finally:
            client.close()

    run(go)
