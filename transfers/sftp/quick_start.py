"""An SFTP session started in two fewer round trips than asyncssh's own start.

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

Tried and not kept: SFTP's ``INIT`` written right behind the ``subsystem`` request (as
OpenSSH's ``sftp`` does). OpenSSH's sshd opens a session channel with a send window of
0 and grants it only once the subsystem runs, so the ``INIT`` waited for that grant: no
round trip saved, measured with ``python -m benchmarks.profile_ssh_login``.

Both are done on the one connection (instance attributes), never by changing asyncssh's
classes; asyncssh is pinned below 2.25 (pyproject.toml) because these are its private
names. Where one is missing the step is left as asyncssh does it.
"""

from __future__ import annotations

import asyncio

import asyncssh
from asyncssh.sftp import MIN_SFTP_VERSION, SFTPClient, SFTPClientHandler


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


async def start_sftp(
    conn: asyncssh.SSHClientConnection, *, path_errors: str = "surrogateescape"
) -> tuple[SFTPClient, asyncio.Future[None]]:
    """An SFTP client on ``conn``, and the future of its ``limits@openssh.com`` answer
    (done at once where the server does not offer the extension). Raises as
    ``conn.start_sftp_client`` does when the server refuses the subsystem or the
    version exchange fails."""
    writer, reader, _ = await conn.open_session(subsystem="sftp", encoding=None)
    handler = SFTPClientHandler(
        asyncio.get_running_loop(), getattr(conn, "_utf8_decode_errors", "strict"),
        reader, writer, MIN_SFTP_VERSION,
    )
    try:
        await handler.start()
    except BaseException:
        writer.channel.close()
        raise
    conn.create_task(handler.recv_packets(), handler.logger)
    limits: asyncio.Future[None] = asyncio.ensure_future(handler.request_limits())
    limits.add_done_callback(_consume)
    return SFTPClient(handler, "utf-8", path_errors), limits


def _consume(task: asyncio.Future[None]) -> None:
    """A limits request that failed (the connection dropped) is said by the next
    request; the sizes then stay asyncssh's safe defaults. Never "exception never
    retrieved"."""
    if not task.cancelled():
        task.exception()
