"""An SFTP session started in fewer round trips than asyncssh's own start.

asyncssh 2.24 logs in and starts SFTP one reply at a time. Two of those waits buy
nothing a client needs; at 60 ms of round trip they were 0.13 s of every session's
start (benchmarks/README.md, "Two round trips fewer before an SFTP session's first
request"):

1. **The ``none`` authentication.** asyncssh first asks with method ``none`` to learn
   which methods the server takes, then tries them. RFC 4252 (section 5.2) lets a
   client start with any method; paramiko's ``auth_password`` sends the password at
   once. When a password was given and the options do not rule password out
   (``PreferredAuthentications`` in the user's ssh config), the first request here is
   ``password``. A server that does not take passwords answers with the list of what
   it takes, exactly as it answers ``none``, and asyncssh goes on from that list (keys,
   keyboard-interactive) as before: the password is tried first, never instead. It is
   sent after the key exchange proved the host key, as it would be one round trip later.
   Such a refusal is a failed login in the server's log, so a store learns from its
   logins whether to go on doing it (``PasswordFirst``).
2. **Waiting for the ``limits@openssh.com`` answer.** It only sizes reads and writes
   (and tells how many handles a session may keep open). The request goes out as soon
   as the ``VERSION`` names it, and the session is handed over at once: its first
   requests travel behind it, and anything sized by the limits awaits the returned
   future, which a server answering in order has answered by then. Until it is known
   nothing is sized by asyncssh's defaults.

3. **Waiting for ``SERVICE_ACCEPT`` before the first authentication request.** asyncssh
   asks for the ``ssh-userauth`` service right behind its ``NEWKEYS`` and sends the
   first ``USERAUTH_REQUEST`` only once the server accepted it. RFC 4253 (section 10)
   asks nothing of the client in between, and OpenSSH's sshd reads its input in order:
   it accepts the service, then reads the request that followed it. On a server whose
   version string says OpenSSH the first request goes out right behind the service
   request (``auth_behind_service_request``); the accept is still checked when it
   comes (the service asked, keys in force). Another server keeps asyncssh's order: one
   that is strict about it would drop the connection, and only OpenSSH's behaviour was
   measured. A server that refuses the service disconnects, as it would have anyway.

4. **Sending the version line on a connection that carried it already.** A store's
   first connection may come on a socket whose version line was sent while asyncssh
   was being imported (``transfers/preconnect.py``): asyncssh's own ``_send_version``
   then records the line (it is part of the key exchange's hash) and sends nothing
   (``version_sent_ahead``). The socket is only taken when the line it carried is the
   one the connection's options would send (``ssh_version_line``).

5. **Waiting for SFTP's ``VERSION`` before the first requests.** asyncssh sends ``INIT``
   and hands the client over only once the server's ``VERSION`` is back. The session's
   first requests need nothing from it: fsmove asks for version 3 (the least there
   is, so the answer can only be 3), and what the ``VERSION`` tells beyond it (the
   extensions: posix-rename, limits) is read later (the capabilities wait for it).
   OpenSSH's ``sftp-server`` handles a channel's packets in order, ``INIT`` first, so
   on a server whose version string says OpenSSH the session is handed over as soon as
   ``INIT`` is written and its first requests (the root's ``stat``, its ``OPENDIR``)
   travel behind it: one round trip less before every session's first answer. The
   ``VERSION`` is read as asyncssh reads it (its ``start``, in a task); the answers
   are read only after it. A version exchange that fails fails the session's
   requests with its error (``SftpStart.version``). Another server keeps asyncssh's
   order.

Tried and not kept: SFTP's ``INIT`` written right behind the ``subsystem`` request (as
OpenSSH's ``sftp`` does). OpenSSH's sshd opens a session channel with a send window of
0 and grants it only once the subsystem runs, so the ``INIT`` waited for that grant: no
round trip saved, measured with ``python -m benchmarks.profile_ssh_login``.

All five are done on the one connection (instance attributes), never by changing
asyncssh's classes; asyncssh is pinned below 2.25 (pyproject.toml) because these are its private
names. Where one is missing the step is left as asyncssh does it.
"""

from __future__ import annotations

import asyncio
import contextlib
from dataclasses import dataclass
from typing import Any

import asyncssh
from asyncssh.constants import FXP_INIT, MSG_SERVICE_ACCEPT
from asyncssh.sftp import MIN_SFTP_VERSION, SFTPClient, SFTPClientHandler

#: The service every client login asks for first (RFC 4252).
_USERAUTH_SERVICE = b"ssh-userauth"
#: The servers whose order was measured (sshd reads a request behind the service one).
_IN_ORDER_SERVER = b"SSH-2.0-OpenSSH_"
#: asyncssh's names ``auth_behind_service_request`` relies on (private, pinned < 2.25).
_CONNECTION_NAMES = ("send_service_request", "try_next_auth", "_server_version", "_owner",
                     "_username", "_auth_in_progress", "_next_service", "_recv_encryption")


#: asyncssh's names ``version_sent_ahead`` relies on (private, pinned < 2.25).
_VERSION_NAMES = ("_send_version", "_version", "_client_version", "set_extra_info")


def ssh_version_line(options: asyncssh.SSHClientConnectionOptions) -> bytes:
    """The first bytes a connection with ``options`` sends (its version line), or b""
    where ``version_sent_ahead`` could not stop it from sending them itself: then no
    socket that carried a line may be taken."""
    if not all(hasattr(asyncssh.SSHClientConnection, name)
               for name in ("_send_version", "set_extra_info")):
        return b""
    version = getattr(options, "version", None)
    return b"SSH-2.0-" + version + b"\r\n" if isinstance(version, bytes) else b""


def version_sent_ahead(conn: asyncssh.SSHClientConnection) -> None:
    """Make ``conn`` record its version line without sending it (item 4: its socket
    carried it already). Call from the client's ``connection_made``, which asyncssh
    runs just before it sends the line."""
    missing = [name for name in _VERSION_NAMES if not hasattr(conn, name)]
    if missing:  # ssh_version_line said this cannot happen
        raise asyncssh.ProtocolError(f"cannot take over a started connection: {missing}")
    c: Any = conn

    def send_version() -> None:
        version = b"SSH-2.0-" + c._version
        c._client_version = version
        c.set_extra_info(client_version=version.decode("ascii"))

    c._send_version = send_version


def can_ask_password_first(conn: asyncssh.SSHClientConnection) -> bool:
    """Whether ``conn`` has a password, its options allow that method and it has not
    started authenticating (asyncssh's list is still ``none`` alone)."""
    preferred = getattr(conn, "_preferred_auth", None) or ()
    return (
        getattr(conn, "_auth_methods", None) == [b"none"]
        and getattr(conn, "_password", None) is not None
        and b"password" in preferred
    )


def ask_password_first(conn: asyncssh.SSHClientConnection) -> bool:
    """Make ``password`` the first method ``conn`` tries, where
    ``can_ask_password_first``. Call from the client's ``connection_made`` (before the
    server accepted the auth service). Returns whether it did."""
    if not can_ask_password_first(conn):
        return False
    conn._auth_methods = [b"password"]  # type: ignore[attr-defined]
    return True


def auth_behind_service_request(conn: asyncssh.SSHClientConnection) -> bool:
    """Make ``conn`` send its first authentication request right behind its request for
    the ``ssh-userauth`` service, where the server's version says OpenSSH (item 3 of
    this module's docstring). Call from the client's ``connection_made``. Returns
    whether it was set up (asyncssh's names found); whether a login then sends early is
    decided once the server's version is known (``sent_auth_early`` tells after)."""
    handlers = getattr(type(conn), "_packet_handlers", None)
    if not isinstance(handlers, dict) or MSG_SERVICE_ACCEPT not in handlers:
        return False
    if not all(hasattr(conn, name) for name in _CONNECTION_NAMES):
        return False
    ask_service = conn.send_service_request
    asyncssh_accept = handlers[MSG_SERVICE_ACCEPT]

    def send_service_request(service: bytes) -> None:
        ask_service(service)
        c: Any = conn
        if service != _USERAUTH_SERVICE or not c._server_version.startswith(_IN_ORDER_SERVER):
            return
        # What asyncssh does when the accept arrives (``_process_service_accept``),
        # one round trip earlier; ``_next_service`` stays set for that accept's check.
        c._fsmove_auth_early = True
        c._auth_in_progress = True
        if c._owner is not None:
            c._owner.begin_auth(c._username)
        c.try_next_auth()

    def service_accepted(self: Any, pkttype: int, pktid: int, packet: Any) -> None:
        if not getattr(self, "_fsmove_auth_early", False):
            asyncssh_accept(self, pkttype, pktid, packet)
            return
        service = packet.get_string()
        packet.check_end()
        if not self._recv_encryption:
            raise asyncssh.ProtocolError("Service accept received before kex complete")
        if service != self._next_service:
            raise asyncssh.ServiceNotAvailable("Unexpected service in service accept")
        self._next_service = None

    c: Any = conn
    c.send_service_request = send_service_request
    c._packet_handlers = {**handlers, MSG_SERVICE_ACCEPT: service_accepted}
    return True


def sent_auth_early(conn: asyncssh.SSHClientConnection) -> bool:
    """Whether ``conn``'s first authentication request went out behind its service
    request (``auth_behind_service_request``)."""
    return bool(getattr(conn, "_fsmove_auth_early", False))


class PasswordFirst:
    """Whether a store's logins send the password first, learned from its logins.

    A password the server refuses is a failed login in its log ("Failed password",
    which fail2ban counts) even when a key or keyboard-interactive then logs in, and a
    copy opens many sessions. So while it is not known, one login at a time tries the
    password first and the others ask ``none`` first as asyncssh does; once a login
    got in with the password alone, every later one sends it first; once the password
    was refused (the server takes no passwords, or not this one), none does again in
    this run. At most one refused password per store and run, where asyncssh's order
    would have sent it on every login of a server that takes passwords anyway."""

    def __init__(self) -> None:
        self._known: bool | None = None
        self._trying = False

    def claim(self) -> bool:
        """Whether the login starting now may send the password first (then it must
        ``settle``)."""
        if self._known is not None:
            return self._known
        if self._trying:
            return False
        self._trying = True
        return True

    def settle(self, conn: asyncssh.SSHClientConnection | None, *, refused: bool) -> None:
        """A login that tried the password first ended: ``conn`` when it got in,
        ``refused`` when the server said no to every method; neither (a network error,
        a cancel) teaches nothing."""
        self._trying = False
        if conn is not None:
            # A refusal resets asyncssh's list to the server's methods: still ours alone
            # means the password was the method that got in.
            self._known = getattr(conn, "_auth_methods", None) == [b"password"]
        elif refused:
            self._known = False


@dataclass(frozen=True)
class SftpStart:
    """A started SFTP client and what is still on its way when it is handed over."""

    client: SFTPClient
    #: The version exchange (item 5): done at once where it was waited for; on OpenSSH
    #: still under way when the client is handed over. Its exception, if any, is the
    #: session's: every request sent behind the ``INIT`` fails with it.
    version: asyncio.Future[None]
    #: The server's ``limits@openssh.com`` answer (item 2), asked once the version is
    #: known (done at once where the server does not offer the extension).
    limits: asyncio.Future[None]


async def start_sftp(
    conn: asyncssh.SSHClientConnection, *, version_timeout: float,
    path_errors: str = "surrogateescape",
) -> SftpStart:
    """An SFTP client on ``conn``. Raises as ``conn.start_sftp_client`` does when the
    server refuses the subsystem, and, where the version exchange is waited for (not
    OpenSSH), when it fails; ``version_timeout`` bounds a version exchange left running."""
    writer, reader, _ = await conn.open_session(subsystem="sftp", encoding=None)
    handler = SFTPClientHandler(
        asyncio.get_running_loop(), getattr(conn, "_utf8_decode_errors", "strict"),
        reader, writer, MIN_SFTP_VERSION,
    )
    client = SFTPClient(handler, "utf-8", path_errors)
    server = str(conn.get_extra_info("server_version") or "")
    if server.startswith(_IN_ORDER_SERVER.decode()) and hasattr(handler, "_cleanup"):
        version = await _start_behind(handler, conn, version_timeout)
        if version is not None:
            return SftpStart(client, version, _limits_after(version, handler))
    try:
        await handler.start()
    except BaseException:
        writer.channel.close()
        raise
    conn.create_task(handler.recv_packets(), handler.logger)
    done: asyncio.Future[None] = asyncio.get_running_loop().create_future()
    done.set_result(None)
    return SftpStart(client, done, _limits_after(done, handler))


async def _start_behind(handler: SFTPClientHandler, conn: asyncssh.SSHClientConnection,
                        version_timeout: float) -> asyncio.Future[None] | None:
    """asyncssh's ``start`` in a task of its own, returning once its ``INIT`` is
    written (item 5): the future of the version exchange. The replies are read (its
    ``recv_packets``) only once the ``VERSION`` was; if the exchange fails, every
    request sent meanwhile fails with its error. None if the ``INIT`` did not go out at
    once (then the exchange was awaited here, as asyncssh does)."""
    sent: list[bool] = []
    own = type(handler).send_packet

    def send_packet(pkttype: int, pktid: int | None, *args: bytes) -> None:
        own(handler, pkttype, pktid, *args)
        if pkttype == FXP_INIT:
            sent.append(True)
            del handler.send_packet  # the class's own again, for every later packet

    handler.send_packet = send_packet  # type: ignore[method-assign]

    async def exchange() -> None:
        try:
            async with asyncio.timeout(version_timeout):
                await handler.start()
        except BaseException as exc:
            # The requests written behind the INIT fail with the exchange's error.
            failure = exc if isinstance(exc, Exception) else None
            await handler._cleanup(failure)  # type: ignore[attr-defined]
            raise
        conn.create_task(handler.recv_packets(), handler.logger)

    version = asyncio.ensure_future(exchange())
    version.add_done_callback(_consume)
    # The task's first step (the INIT written, then waiting for the VERSION) runs
    # before this coroutine goes on: tasks step in the order they were scheduled.
    await asyncio.sleep(0)
    if sent:
        return version
    with contextlib.suppress(AttributeError):
        del handler.send_packet
    await version
    return None


def _limits_after(version: asyncio.Future[None], handler: SFTPClientHandler
                  ) -> asyncio.Future[None]:
    """The limits request, sent once the version exchange told whether the server
    offers it."""

    async def ask() -> None:
        await asyncio.shield(version)
        await handler.request_limits()

    limits = asyncio.ensure_future(ask())
    limits.add_done_callback(_consume)
    return limits


def _consume(task: asyncio.Future[None]) -> None:
    """A limits request that failed (the connection dropped) is said by the next
    request; the sizes then stay asyncssh's safe defaults. Never "exception never
    retrieved"."""
    if not task.cancelled():
        task.exception()
