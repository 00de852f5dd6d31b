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


def ask_password_first(conn: asyncssh.SSHClientConnection) -> bool:
    """Make ``password`` the first method ``conn`` tries, when it has a password and its
    options allow that method. Call from the client's ``connection_made`` (before the
    server accepted the auth service). Returns whether it did."""
    methods = getattr(conn, "_auth_methods", None)
    preferred = getattr(conn, "_preferred_auth", None) or ()
    if (
        methods != [b"none"]
        or getattr(conn, "_password", None) is None
        or b"password" not in preferred
    ):
        return False
    conn._auth_methods = [b"password"]  # type: ignore[attr-defined]
    return True


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
