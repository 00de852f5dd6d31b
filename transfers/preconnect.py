"""A store's first TCP connection, opened while the code that will use it is imported.

Between ``open_store`` and a store's first connection fsmove imports the protocol's
code (asyncssh and the SFTP backend: ~0.1 s on an idle machine, more on a busy one;
aioftp and the FTP backend: ~30 ms) and sets up the copy. The connection's handshake
needs nothing of that: a thread started before the import resolves the host and
connects, so the round trip of the TCP handshake (60 ms through the benchmark's WAN
relay) and the server's own start of a session (sshd forks and re-executes itself for
each connection, vsftpd forks; both then greet) overlap the import instead of following
it (``benchmarks/README.md``, "Session 18").

The socket is handed to the store's first connection only if that connection goes
where the thread connected. FTP always connects to the URL's host and port; over SFTP
the store checks the user's ssh config first: the same host and port after it, and no
ProxyCommand, ProxyJump, BindAddress or AddressFamily, else the store connects on its
own exactly as before and the thread's socket is closed unused. A failed connect of the
thread is the store's first connection failing: the same error, met one connect timeout
earlier, not after two.

The one thing ever sent here is an SSH client's version line (``hello``): the first
line of every SSH connection, the same for every connection of a build (RFC 4253,
section 4.2), and what the server waits for before it sends its key-exchange offer. Sent
by the thread, the server's offer is waiting when asyncssh starts, and the key exchange
begins one round trip earlier (``benchmarks/README.md``, "Session 19"). ``take`` hands
such a socket only to a connection that would have sent that very line (the store then
tells asyncssh not to send it again: ``transfers/sftp/quick_start.py``, item 4).
"""

from __future__ import annotations

import asyncio
import concurrent.futures
import contextlib
import importlib.util
import re
import socket
import threading
import time

#: Seconds a connected socket may wait to be taken. A store whose first connection comes
#: later (a command that opens it long before it needs it) connects anew: the server may
#: have given up on a connection that said nothing (sshd's LoginGraceTime is 120 s,
#: often set lower), and a socket it closed would fail the login.
FRESH_FOR = 10.0


class Preconnect:
    """One TCP connection to ``host``:``port``, started at once in a daemon thread."""

    def __init__(self, host: str, port: int, *, timeout: float, hello: bytes = b"") -> None:
        self.host = host
        self.port = port
        #: Sent as soon as the connection is up (an SSH client's version line), or b"".
        self.hello = hello
        self._timeout = timeout
        self._lock = threading.Lock()
        #: What the thread got (None while it runs), and when (``time.monotonic``).
        self._outcome: socket.socket | OSError | None = None
        self._at = 0.0
        #: Set by the thread when ``_outcome`` is there (awaited by ``take``).
        self._ended: concurrent.futures.Future[None] = concurrent.futures.Future()
        self._given = False  # taken, asked for elsewhere, or closed: asked no more
        self._taking = False  # a ``take`` waits for the thread: the socket is its
        threading.Thread(target=self._connect, name=f"preconnect {host}:{port}",
                         daemon=True).start()

    def _connect(self) -> None:
        outcome: socket.socket | OSError
        try:
            outcome = socket.create_connection((self.host, self.port), timeout=self._timeout)
        except OSError as exc:  # the store's own connection will say why
            outcome = exc
        else:
            try:
                if self.hello:
                    outcome.sendall(self.hello)
            except OSError as exc:  # the server hung up at once: the store says why
                outcome.close()
                outcome = exc
        with self._lock:
            self._outcome, self._at = outcome, time.monotonic()
            if self._given and not self._taking:
                self._drop_locked()
        # InvalidStateError: the ``take`` that waited for it was cancelled.
        with contextlib.suppress(concurrent.futures.InvalidStateError):
            self._ended.set_result(None)

    async def take(self, host: str, port: int, *, hello: bytes = b"") -> socket.socket | None:
        """The connected socket, once, for a connection about to be made to
        ``host``:``port`` whose first bytes would be ``hello`` (sent already when the
        socket is handed over; waited for while the thread's connect is under way).
        None when it was taken already, the connection goes elsewhere or would start
        otherwise, or the socket waited longer than ``FRESH_FOR``: the caller connects
        on its own. The thread's error
        (``OSError``: refused, no such host, a timeout) when its connect to that same
        place failed: what the caller's own connect would have met, one connect
        timeout earlier."""
        with self._lock:
            if self._given:
                return None
            self._given = True
            if (host, port, hello) != (self.host, self.port, self.hello):
                self._drop_locked()
                return None
            self._taking = True
        try:
            await asyncio.wrap_future(self._ended)
        except asyncio.CancelledError:
            with self._lock:
                self._taking = False
                self._drop_locked()
            raise
        with self._lock:
            self._taking = False
            outcome, self._outcome = self._outcome, None
        if isinstance(outcome, OSError):
            raise outcome
        assert outcome is not None
        if time.monotonic() - self._at > FRESH_FOR:
            outcome.close()  # stale: the caller connects anew
            return None
        outcome.setblocking(False)
        return outcome

    def close(self) -> None:
        """Give the socket up (the store is closed without having taken it)."""
        with self._lock:
            self._given = True
            if not self._taking:
                self._drop_locked()

    def _drop_locked(self) -> None:
        sock = self._outcome
        if isinstance(sock, socket.socket):
            sock.close()
            self._outcome = None


#: Early connects a command started as soon as it knew its endpoints, before importing
#: the code that runs it (``fsmove.endpoint_access.connect_early``), each waiting for
#: the store of its place (``early_for``). A list per place: a copy between two folders
#: of one server opens two stores there.
_waiting: dict[tuple[str, int, bytes], list[Preconnect]] = {}
_waiting_lock = threading.Lock()


def start_early(host: str, port: int, *, timeout: float, hello: bytes = b"") -> None:
    """Start a connection to ``host``:``port`` now, for a store opened later there."""
    early = Preconnect(host, port, timeout=timeout, hello=hello)
    with _waiting_lock:
        _waiting.setdefault((host, port, hello), []).append(early)


def early_for(host: str, port: int, *, timeout: float, hello: bytes = b"") -> Preconnect:
    """The connection ``start_early`` started for that place, or one started now."""
    with _waiting_lock:
        started = _waiting.get((host, port, hello))
        early = started.pop(0) if started else None
    return early if early is not None else Preconnect(host, port, timeout=timeout,
                                                      hello=hello)


def close_unclaimed() -> None:
    """Close the early connections no store took (the command ended before opening
    one: a usage error, a locked job)."""
    with _waiting_lock:
        left = [early for started in _waiting.values() for early in started]
        _waiting.clear()
    for early in left:
        early.close()


def asyncssh_hello() -> bytes:
    """The version line asyncssh sends first with its default ``client_version``
    (``SSH-2.0-AsyncSSH_<version>``), read from its ``version.py`` without importing
    asyncssh (the point of starting early); b"" when it cannot be read. The store
    compares it with what its connection would send before taking a socket that
    carried it."""
    spec = importlib.util.find_spec("asyncssh")
    folders = spec.submodule_search_locations if spec is not None else None
    if not folders:
        return b""
    try:
        with open(f"{next(iter(folders))}/version.py", encoding="ascii") as file:
            found = re.search(r"""^__version__ = '([0-9A-Za-z.+-]+)'$""", file.read(),
                              re.MULTILINE)
    except (OSError, ValueError):
        return b""
    return f"SSH-2.0-AsyncSSH_{found[1]}\r\n".encode("ascii") if found else b""
