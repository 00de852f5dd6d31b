"""``SftpStore``: an SFTP endpoint. Each ``connect()`` opens its own SSH connection
carrying one SFTP channel (why: see the package docstring).

**Host keys** (``hostkeys.py``): known_hosts (``~/.ssh/known_hosts`` and
``/etc/ssh/ssh_known_hosts``, or the given file), ``[host]:port`` entries off port 22,
Clever Cloud FSBucket fingerprints pinned for ``*.services.clever-cloud.com``; an
unknown key is refused with its fingerprint unless ``accept_new_host_key`` (which
records it, OpenSSH's ``accept-new``); a changed key or key type is always refused.

**Auth**: the URL's password (only handed to asyncssh), explicit ``client_keys`` or
else the default keys and ssh-agent, and ``~/.ssh/config`` (or ``ssh_config``): Host
aliases, HostName, User, Port, IdentityFile.
"""

from __future__ import annotations

import asyncio
import socket
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

import asyncssh

from ..backend import (
    SERVER_PATH_MAX,
    AuthError,
    BackendError,
    Capabilities,
    ConnectError,
    HostKeyError,
    OffsetWrites,
)
from ..cork import cork_connection
from ..endpoint import Endpoint
from ..hostkeys import HostKeyChecker, HostKeyProbe, KnownHostsFile, accepts_new_keys
from ..preconnect import Preconnect
from . import fast_recv, fast_send
from .errors import one_line, socket_reason, translate
from .lean import lighten, sftp_channel
from .quick_start import (
    PasswordFirst,
    ask_password_first,
    auth_behind_service_request,
    can_ask_password_first,
    ssh_version_line,
    start_sftp,
    version_sent_ahead,
)
from .round_trip import RoundTrips
from .session import SftpSession

#: Fastest cipher on CPUs with AES-NI (FACTS.md); asyncssh's defaults follow.
_PREFERRED_CIPHERS = ("aes128-gcm@openssh.com",)
#: OpenSSH's host-key preference, so the key we show and record is the one ``ssh`` shows.
_PREFERRED_HOST_KEY_ALGS = (
    "ssh-ed25519",
    "ecdsa-sha2-nistp256",
    "ecdsa-sha2-nistp384",
    "ecdsa-sha2-nistp521",
    "rsa-sha2-512",
    "rsa-sha2-256",
)
_KEEPALIVE_INTERVAL = 15.0
#: SSH channel window: bounds one session's throughput to window / RTT (measured at
#: 60 ms RTT: 15 MB/s down with asyncssh's 2 MiB default, 39 MB/s with 8 MiB; same
#: speed and CPU at 0 RTT). SFTP data only flows in answer to our requests, so memory
#: stays bounded by the requests in flight, not by this window.
_WINDOW = 8 * 1024 * 1024
#: How many operations the engine may run at once on one session (measured, see above).
OPS_PER_SESSION = 32
#: Borrowers a session carries before the capabilities are asked (``SharesSessionsEarly``):
#: the destination root's look (a stat, then maybe a mkdir) and its listing (one
#: directory handle) share the first session, one round trip sooner than the listing
#: following the look (the second login comes ~0.2 s after the first at 60 ms).
EARLY_OPS_PER_SESSION = 4


def _encryption_algs() -> list[str]:
    defaults = [alg.decode() for alg in asyncssh.encryption.get_default_encryption_algs()]
    first = [alg for alg in _PREFERRED_CIPHERS if alg in defaults]
    return first + [alg for alg in defaults if alg not in first]


def _host_key_algs() -> list[str]:
    supported = [alg.decode() for alg in asyncssh.public_key.get_default_public_key_algs()]
    first = [alg for alg in _PREFERRED_HOST_KEY_ALGS if alg in supported]
    return first + [alg for alg in supported if alg not in first]


class _Client(asyncssh.SSHClient):
    """Hands asyncssh's "is this host key trusted?" question to the checker."""

    def __init__(self, checker: HostKeyChecker | HostKeyProbe,
                 password_first: PasswordFirst | None = None, *, first: bool = False) -> None:
        self._checker = checker
        self._password_first = password_first
        #: The store's first login claims the right to send the password first as it
        #: starts: it runs on the early socket, ahead of the logins started beside it,
        #: and would otherwise find the right taken by one of them (whichever reached
        #: ``connection_made`` first) and pay a round trip for ``none``.
        self._claimed = first and password_first is not None and password_first.claim()
        #: Whether this login sent the password first (then it settles ``password_first``).
        self.tried_password_first = False
        #: Whether the connection's socket carried its version line already
        #: (``transfers/preconnect.py``): asyncssh must not send it again.
        self.version_sent = False

    def validate_host_public_key(
        self, host: str, addr: str, port: int, key: asyncssh.SSHKey
    ) -> bool:
        return self._checker.validate(host, port, key)

    def connection_made(self, conn: asyncssh.SSHClientConnection) -> None:
        if self.version_sent:
            version_sent_ahead(conn)  # quick_start.py, item 4
        # A given password is the first method tried: one round trip less than asking
        # with ``none`` first, where the store's logins show it works
        # (transfers/sftp/quick_start.py).
        policy = self._password_first
        if policy is not None and can_ask_password_first(conn) and (
                self._claimed or policy.claim()):
            self.tried_password_first = ask_password_first(conn)
        self.release_claim()  # claimed, but no password to send first
        # ... sent right behind the request for the auth service, not a round trip
        # after it, on an OpenSSH server (quick_start.py).
        auth_behind_service_request(conn)

    def release_claim(self) -> None:
        """Give back a claim this login did not use (no password to send, or it never
        got as far as ``connection_made``)."""
        if self._claimed and not self.tried_password_first and self._password_first:
            self._password_first.settle(None, refused=False)
        self._claimed = False


def server_root(path: str) -> str:
    """The root as sent to the server. ``/~`` and ``/~/x`` name the login's home folder
    and a folder in it, as curl, lftp and rclone read an ``sftp://`` URL (Clever Cloud's
    and most hosts' SFTP accounts land in their home): sent as ``.`` and ``x``, paths the
    server resolves from the home folder itself (SFTP, draft 02, 6.2), so no round trip
    asks where it is. Before session 33 the ``~`` was a literal folder name: a copy to
    ``sftp://h/~/site`` failed at ``/~``, or made a folder named ``~``."""
    if path == "/~" or path == "/~/":
        return "."
    if path.startswith("/~/"):
        return path[3:].rstrip("/") or "."
    return path


class SftpStore:
    """An SFTP endpoint (``sftp://user@host[:port]/path``)."""

    def __init__(
        self,
        endpoint: Endpoint,
        *,
        known_hosts: str | Path | None = None,
        accept_new_host_key: bool = False,
        client_keys: Sequence[str | Path] | None = None,
        ssh_config: str | Path | None = None,
        timeout: float = 30.0,
        # 12, not 16: with 16 streams of big files over a 60 ms link, 16 requests of
        # 255 KiB each way per stream held fsmove at 179-195 MiB RSS (medium-sftp-60ms;
        # limit 200), 12 at 153-158 MiB for 3-4 % less rate (benchmarks/README.md).
        requests_in_flight: int = 12,
        preconnect: Preconnect | None = None,
        read_only: bool = False,
    ) -> None:
        if endpoint.scheme != "sftp":
            raise ValueError(f"not an sftp endpoint: {endpoint.display}")
        self._endpoint = endpoint
        self.display = endpoint.display
        self._known_hosts = KnownHostsFile(known_hosts)
        #: --known-hosts given: ~/.ssh/config's UserKnownHostsFile does not apply.
        self._known_hosts_chosen = known_hosts is not None
        self._accept_new = accept_new_host_key
        self._client_key_paths = (
            None if client_keys is None else [str(Path(p).expanduser()) for p in client_keys]
        )
        self._client_keys: list[asyncssh.SSHKeyPair] | None = None
        self._ssh_config = ssh_config
        self._timeout = timeout
        self._requests_in_flight = requests_in_flight
        self._caps: Capabilities | None = None
        self._caps_lock = asyncio.Lock()
        self._sessions: set[SftpSession] = set()
        self._spare: SftpSession | None = None
        #: Folders checked to be real (not links), shared by every session.
        self._real_dirs: set[str] = set()
        self._password_first = PasswordFirst()
        #: Done when the store's first login ended, either way (None before it started):
        #: it takes the early socket, if any, and the capabilities are asked on it.
        self._first_login: asyncio.Future[None] | None = None
        self._first_login_error: BackendError | None = None
        #: The first connection's TCP handshake, started before asyncssh was imported
        #: (``transfers/preconnect.py``; ``fsmove.endpoint_access.open_store``).
        self._preconnect = preconnect
        #: asyncssh without its per-packet extras (``lean.py``); False only to measure.
        self._lean = True
        #: The SFTP channel's data packets assembled and taken apart with fewer copies
        #: (``fast_send.py``, ``fast_recv.py``); False only to measure.
        self._fast_channel = True
        #: Nothing is ever written here (a copy's source): the capabilities need nothing
        #: of the server's VERSION (``_probe``).
        self._read_only = read_only
        #: The shortest round trip its sessions measured (``round_trip.py``).
        self._round_trips = RoundTrips()

    def _target(self) -> str:
        e = self._endpoint
        user = f"{e.user}@" if e.user else ""
        port = f":{e.port}" if e.port else ""
        return f"{user}{e.host}{port}"

    def _load_client_keys(self) -> list[asyncssh.SSHKeyPair] | None:
        if self._client_key_paths is None:
            return None
        if self._client_keys is None:
            try:
                self._client_keys = asyncssh.load_keypairs(self._client_key_paths)
            except (asyncssh.KeyImportError, OSError, ValueError) as exc:
                reason = one_line(getattr(exc, "strerror", None) or exc)
                raise AuthError(
                    f"cannot load the SSH key(s) {', '.join(self._client_key_paths)}: "
                    f"{reason} (a passphrase-protected key must be loaded in ssh-agent)"
                ) from None
        return self._client_keys

    def _connect_options(self, checker: HostKeyChecker, client: _Client) -> dict[str, Any]:
        e = self._endpoint
        options: dict[str, Any] = {
            "host": e.host,
            "known_hosts": checker.known_hosts_callback,
            "client_factory": lambda: client,
            "encryption_algs": _encryption_algs(),
            "compression_algs": ["none"],
            "connect_timeout": self._timeout,
            "login_timeout": self._timeout,
            "keepalive_interval": _KEEPALIVE_INTERVAL,
            "window": _WINDOW,
        }
        if e.port:
            options["port"] = e.port
        if e.user:
            options["username"] = e.user
        if e.password is not None:
            options["password"] = e.password.reveal()
        keys = self._load_client_keys()
        if keys is not None:
            options["client_keys"] = keys
        # ``()`` makes asyncssh read ~/.ssh/config now (its options default to none; only
        # connect() would read it, too late for the host-key settings read from it).
        options["config"] = () if self._ssh_config is None else \
            [str(Path(self._ssh_config).expanduser())]
        return options

    async def _resolve_options(
        self, checker: HostKeyChecker, client: _Client
    ) -> tuple[asyncssh.SSHClientConnectionOptions, str]:
        """Options with ~/.ssh/config applied, and "user@host:port" for messages.

        With no key on record for the host, offer host-key types in OpenSSH's order
        (ED25519 first) so the key shown and recorded is the one ``ssh`` shows; with keys
        on record, asyncssh offers only their types (a key of another type is CHANGED).
        """
        try:
            options = await asyncssh.SSHClientConnectionOptions.construct(
                **self._connect_options(checker, client)
            )
        except (asyncssh.Error, OSError, ValueError) as exc:
            raise ConnectError(f"bad SSH options for {self._target()}: {one_line(exc)}") from None
        # ~/.ssh/config for this host, as ssh reads it (transfers/hostkeys.py).
        from_config = None if self._known_hosts_chosen else \
            KnownHostsFile.from_ssh_config(options.config)
        if from_config is not None:
            self._known_hosts = checker.known_hosts = from_config
        if accepts_new_keys(options.config):
            checker.accept_new = True
        host = options.host_key_alias or options.host
        port = options.port if options.port != 22 else None
        target = f"{options.username}@{options.host}:{options.port}"
        on_record = self._known_hosts.lookup(host, port)
        if (
            not on_record.host_keys
            and not on_record.ca_keys
            and not options.config.get("HostKeyAlgorithms", ())
        ):
            options = await asyncssh.SSHClientConnectionOptions.construct(
                options, server_host_key_algs=_host_key_algs()
            )
        return options, target

    async def _open_connection(self, *, first: bool = False) -> asyncssh.SSHClientConnection:
        """An SSH connection logged in; ``first``: the store's first (it takes the early
        socket, if any, and sends the password first: ``_Client``)."""
        checker = HostKeyChecker(self._known_hosts, accept_new=self._accept_new)
        client = _Client(checker, self._password_first, first=first)
        try:
            options, target = await self._resolve_options(checker, client)
        except BaseException:
            client.release_claim()
            raise
        conn: asyncssh.SSHClientConnection | None = None
        refused = False
        try:
            sock = await self._preconnected(options, client) if first else None
            conn = await asyncssh.connect(self._endpoint.host, options=options, sock=sock)
        except asyncssh.HostKeyNotVerifiable as exc:
            raise checker.refusal or HostKeyError(
                f"host key for {target} refused: {one_line(exc.reason)}"
            ) from None
        except asyncssh.PermissionDenied:
            checker.record_accepted()  # the key exchange proved the host key
            refused = True
            raise AuthError(
                f"login refused for {target}: wrong password, or no key was accepted"
            ) from None
        except (asyncssh.Error, OSError) as exc:
            await self._raise_if_key_changed(checker, options)
            if isinstance(exc, asyncssh.Error):
                raise ConnectError(
                    f"SSH connection to {target} failed: {one_line(exc.reason)}"
                ) from None
            if isinstance(exc, TimeoutError):
                raise ConnectError(
                    f"cannot connect to {target}: no answer in {self._timeout:g} s"
                ) from None
            raise ConnectError(f"cannot connect to {target}: {socket_reason(exc)}") from None
        finally:
            if client.tried_password_first:
                self._password_first.settle(conn, refused=refused)
            client.release_claim()
        assert conn is not None
        checker.record_accepted()
        cork_connection(conn)
        return conn

    async def _preconnected(self, options: asyncssh.SSHClientConnectionOptions,
                            client: _Client) -> socket.socket | None:
        """The socket connected ahead for this store's first connection, where it goes
        straight to the same host and port and would start with the version line the
        socket carried, if any (``transfers/preconnect.py``); else None."""
        early = self._preconnect
        if early is None:
            return None
        direct = (not options.tunnel and not options.proxy_command
                  and not options.local_addr and options.family == socket.AF_UNSPEC)
        if not direct:
            early.close()
            return None
        hello = ssh_version_line(options) if early.hello else b""
        sock = await early.take(options.host, options.port, hello=hello)
        client.version_sent = sock is not None and hello != b""
        return sock

    async def _raise_if_key_changed(
        self, checker: HostKeyChecker, options: asyncssh.SSHClientConnectionOptions
    ) -> None:
        """After a failed handshake with a host on record, tell a changed key type.

        asyncssh offers only the recorded key types; a server that has none of them
        hangs up before showing a key. Ask again offering every type (recorded ones
        first) without trusting anything, and judge the key it shows.
        """
        if checker.target is None or not checker.on_record.host_keys:
            return
        probe = HostKeyProbe()
        recorded = [
            alg.decode() for key in checker.on_record.host_keys for alg in key.sig_algorithms
        ]
        algs = recorded + [alg for alg in _host_key_algs() if alg not in recorded]
        try:
            probe_options = await asyncssh.SSHClientConnectionOptions.construct(
                options,
                known_hosts=probe.known_hosts_callback,
                client_factory=lambda: _Client(probe),
                server_host_key_algs=algs,
            )
            conn = await asyncssh.connect(self._endpoint.host, options=probe_options)
            conn.close()
        except (asyncssh.Error, OSError, ValueError):
            pass
        offered = probe.offered
        if offered is None or offered in checker.on_record.host_keys:
            return
        host, port = checker.target
        if not checker.validate(host, port, offered) and checker.refusal is not None:
            raise checker.refusal

    async def _open_session(self) -> SftpSession:
        first = self._first_login is None
        if not first:
            return await self._log_in()
        ended = self._first_login = asyncio.get_running_loop().create_future()
        try:
            return await self._log_in(first=True)
        except BackendError as exc:
            self._first_login_error = exc  # what ``capabilities`` would meet too
            raise
        finally:
            if not ended.done():
                ended.set_result(None)

    async def _log_in(self, *, first: bool = False) -> SftpSession:
        conn = await self._open_connection(first=first)
        try:
            async with asyncio.timeout(self._timeout):
                start = await start_sftp(conn, version_timeout=self._timeout)
            if self._lean:
                lighten(conn, start.client)
                if self._fast_channel:
                    channel = sftp_channel(start.client)
                    fast_send.install(channel)
                    fast_recv.install(conn, channel)
        except BaseException as exc:
            conn.close()
            raise self._start_failure(exc) from None
        session = SftpSession(
            conn=conn,
            sftp=start.client,
            root=server_root(self._endpoint.path),
            timeout=self._timeout,
            requests_in_flight=self._requests_in_flight,
            on_close=self._sessions.discard,
            real_dirs=self._real_dirs,
            limits=start.limits,
            version=start.version,
            start_failure=self._start_failure,
        )
        self._sessions.add(session)
        self._round_trips.measure(start.client, session._version_known)
        return session

    def path_room(self) -> int:
        """``backend.LimitsPaths``: the server works on the root joined with the path
        (``channel._full``), at most ``SERVER_PATH_MAX`` bytes."""
        root = server_root(self._endpoint.path).rstrip("/").encode("utf-8",
                                                                  "surrogateescape")
        return SERVER_PATH_MAX - len(root) - (1 if root else 0)

    def watch_round_trip(self, watcher: Callable[[float, int], None]) -> None:
        """``WatchesRoundTrip``: ``watcher(shortest, samples)`` after each sample."""
        self._round_trips.watch(watcher)

    def _start_failure(self, exc: BaseException) -> BaseException:
        """What a failed SFTP start (the subsystem, the version exchange) is said as."""
        if isinstance(exc, asyncssh.ChannelOpenError | asyncssh.SFTPError):
            return ConnectError(
                f"{self._target()}: the server refused the SFTP subsystem "
                f"({one_line(exc.reason)})"
            )
        if isinstance(exc, asyncssh.Error | OSError):
            return ConnectError(f"{self._target()}: {translate(exc, '')}")
        return exc

    async def connect(self) -> SftpSession:
        spare, self._spare = self._spare, None
        if spare is not None and not spare._closed:
            return spare
        return await self._open_session()

    async def capabilities(self) -> Capabilities:
        async with self._caps_lock:
            if self._caps is None:
                session = self._open_one()
                first = self._first_login
                if session is None and first is not None and not first.done():
                    # The first login (on the early socket, the password sent first) is
                    # on its way: asked on it, not on one more login started beside it
                    # that would end later (benchmarks/README.md, "Session 19").
                    await asyncio.shield(first)
                    session = self._open_one()
                    if session is None and self._first_login_error is not None:
                        # Its error (refused, no answer in time, a host key) is what a
                        # login of its own would meet, only a connect timeout later.
                        # (One that failed before they were asked is not reused: they
                        # log in themselves, as the pool's borrowers do.)
                        raise self._first_login_error
                if session is None:
                    session = await self._open_session()
                    self._spare = session  # lent by the next connect()
                self._caps = await self._probe(session)
            return self._caps

    def early_ops_per_session(self) -> int:
        """``SharesSessionsEarly``: asking the capabilities writes nothing here, and a
        session pipelines requests from its start."""
        return EARLY_OPS_PER_SESSION

    def _open_one(self) -> SftpSession | None:
        return next((s for s in self._sessions if not s._closed), None)

    async def _probe(self, session: SftpSession) -> Capabilities:
        if not self._read_only:
            # What the server's VERSION told (its extensions: posix-rename), on its way
            # behind the first requests on OpenSSH (quick_start.py, item 5): answered
            # before any of them. A store only read (a source) uses none of it: its
            # capabilities, and so its root's check and listing, do not wait for it.
            await session._version_known()
        if not session.ordered_requests:
            # Its answer may say fewer open handles than OPS_PER_SESSION: wait for it.
            await session._limits_known()
        # OpenSSH answers in order and names its open-file limit less 5 (1,019 by
        # default) as its handle limit, far above OPS_PER_SESSION: the copy's first
        # requests go out behind the limits request, not one round trip after it.
        sizes = (
            f"read/write requests of {session._read_len} / {session._write_len} bytes"
            if session._limits is None or session._limits.done()
            else "read/write requests sized by the server's limits@openssh.com answer"
        )
        rename_replaces = session._posix_rename
        sftp = session._sftp
        version = sftp.version
        server = session._conn.get_extra_info("server_version") or "unknown server"
        return Capabilities(
            ranged_read=True,
            bounded_read=True,
            offset_writes=OffsetWrites.ANY,
            parallel_writes=True,
            set_mtime=True,
            rename=True,
            rename_replaces=rename_replaces,
            ops_per_session=min(OPS_PER_SESSION, sftp.limits.max_open_handles or OPS_PER_SESSION),
            ordered_requests=session.ordered_requests,
            round_trip=self._round_trips.shortest,
            round_trip_samples=self._round_trips.samples,
            mtime_resolution=1.0,  # SFTPv3 (asyncssh asks for v3, OpenSSH speaks v3): seconds
            notes=(
                f"{server}, SFTP v{version}",
                sizes,
                "read only: nothing renamed" if self._read_only
                else "posix-rename@openssh.com" if rename_replaces
                else "no posix-rename: rename does not replace",
            ),
        )

    async def aclose(self) -> None:
        if self._preconnect is not None:
            self._preconnect.close()
        self._spare = None
        await self._round_trips.aclose()
        sessions, self._sessions = self._sessions, set()
        await asyncio.gather(*(s.close() for s in sessions))
