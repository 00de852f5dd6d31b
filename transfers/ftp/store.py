"""The FTP and FTPS store: ``FtpStore`` logs in ``FtpSession``s (one control connection
each, one operation at a time) and probes, once, what the server can do.

Login: greeting, ``AUTH TLS`` (FTPS), ``USER``/``PASS``, ``PBSZ 0``/``PROT P`` (FTPS),
``FEAT`` (read once per store), ``OPTS UTF8 ON``, and ``TYPE I`` once per session; on
vsftpd, pure-ftpd and proftpd all of it in one write (``LOGIN_AT_ONCE_SERVERS``), on
any other server one command at a time. The ``USER`` round trip is measured:
``capabilities()`` reports the shortest one seen, and the pool decides how many
sessions are worth opening from it (transfers/session_count.py).

The write probe (probe.py) runs once per store written to, on the first session, with
two more sessions logging in meanwhile to run parts of it; all three are lent to the
pool afterwards (``connect`` hands them out first).

``log_in_ahead`` starts logins before anyone asks for a session (the pool calls it as
soon as the store is known, transfers/pool.py): a login is several round trips (and a
PAM password check on the server), so the sessions the run's first steps need log in
at once and in parallel instead of one after the other. ``connect`` and the probe take
them first. A login writes nothing: the destination's probe still waits until the
source proved readable (transfers/survey.py).
"""

from __future__ import annotations

import asyncio
import contextlib
import ssl
from collections.abc import Callable
from dataclasses import replace
from typing import Protocol, runtime_checkable

from ..backend import (
    SERVER_PATH_MAX,
    BackendError,
    Capabilities,
    PermanentError,
    Session,
    check_relpath,
)
from ..endpoint import Endpoint
from ..preconnect import Preconnect
from ..round_trips import RoundTripReadings
from ..together import mark_seen
from .client import FtpClient, Reply
from .errors import login_error, network_error, reply_error
from .names import NameChecks
from .probe import (
    Features,
    ProbeResult,
    early_capabilities,
    parse_feat,
    probe_capabilities,
    read_only_capabilities,
    remove_scratch,
)
from .session import FtpSession
from .tls import FtpsClient, TlsSetupError, make_ssl_context

_ANONYMOUS_PASSWORD = "anonymous@"
#: vsftpd's longest command line (``VSFTP_MAX_COMMAND_LINE``): a longer one ends the
#: session.
FTP_COMMAND_LINE_MAX = 4096
#: What the longest command adds around a path ("MDTM 20261207021712.123 " and CRLF).
FTP_PATH_COMMAND_ROOM = 32
#: Servers (named in their greeting, lower case) that read a control connection's
#: commands one after the other across the login, so the whole login goes in one write
#: (``FtpStore._log_in_at_once``). Each is tested so (tests/test_ftp_login.py); vsftpd
#: reads a command line by peeking, so what follows PASS stays in the socket for the
#: process that serves the logged-in session. Any other server logs in step by step,
#: as lftp does by default ("ftp:sync-mode"): some servers and routers lose commands
#: sent ahead of a reply.
LOGIN_AT_ONCE_SERVERS = ("vsftpd", "pure-ftpd", "proftpd")
#: How long closing a store may spend removing a cut probe's late scratch files.
LATE_LEFTOVERS_SECONDS = 10.0
#: Sessions the write probe runs on (its own and two helpers).
PROBE_SESSIONS = 3
#: Sessions for the first files, written while the probe runs (``survey.py``).
FIRST_FILE_SESSIONS = 2
#: What a store that will be written logs in ahead at least: the probe's sessions, the
#: one the survey's look at the destination root takes just before the probe, and the
#: first files'. With one fewer, a helper of the probe logged in only when the probe
#: began: 3-4 round trips on the probe's path; without the first files', they waited
#: for the wave of logins that starts once the first folder is decided (vsftpd behind
#: the 60 ms relay, benchmarks/README.md).
SESSIONS_BEFORE_PROBE = PROBE_SESSIONS + 1 + FIRST_FILE_SESSIONS


@runtime_checkable
class _RunsProbe(Protocol):
    async def run_probe(self) -> ProbeResult: ...


class FtpStore:
    """An FTP or FTPS (explicit ``AUTH TLS``) account and a root folder on it."""

    def __init__(
        self,
        endpoint: Endpoint,
        *,
        tls: bool = False,
        timeout: float = 30.0,
        ssl_context: ssl.SSLContext | None = None,
        read_only: bool = False,
        preconnect: Preconnect | None = None,
    ) -> None:
        if endpoint.scheme not in ("ftp", "ftps"):
            raise ValueError(f"FtpStore needs an ftp:// or ftps:// endpoint, not {endpoint!r}")
        self.endpoint = endpoint
        self.tls = tls or endpoint.scheme == "ftps"
        self.timeout = timeout
        #: Only read through this store (a copy's source, a verify): the capability
        #: probe writes nothing and comes from FEAT alone.
        self.read_only = read_only
        self.display = endpoint.display
        self.user = endpoint.user or "anonymous"
        port = endpoint.effective_port
        self.port = port if port is not None else 21
        self.where = f"{endpoint.host}:{self.port}"
        self.root = endpoint.path if endpoint.path.startswith("/") else "/" + endpoint.path
        #: ``/~`` and ``/~/x`` name the login folder and a folder in it, as on SFTP
        #: (``sftp.store.server_root``) and as curl and lftp read an ftp:// URL: the rest
        #: after the ``~`` (``""`` or ``/x``) until the first login's PWD made ``root``
        #: of it (``_home_known``). Before session 35 the ``~`` was a folder name: a copy
        #: to ``ftp://h/~/www`` made a folder named ``~`` at the server's root.
        self._under_home: str | None = None
        if self.root == "/~" or self.root.startswith("/~/"):
            self._under_home = self.root[2:].rstrip("/")
        self._ssl_context = ssl_context
        #: The first control connection's TCP handshake, started before this package was
        #: imported (``transfers/preconnect.py``; ``fsmove.endpoint_access.open_store``).
        self._preconnect = preconnect
        if self.tls and ssl_context is None:
            self._ssl_context = make_ssl_context(cafile=None, insecure=False)
        #: FEAT, read by the first session and shared by the later ones.
        self.features: Features | None = None
        #: Scratch files of a probe that failed mid-way (removed before the next one).
        self._probe_leftovers: list[str] = []
        #: Those removed before a probe ran again: removed once more at ``aclose``.
        self._probe_leftovers_removed: list[str] = []
        self._probe: ProbeResult | None = None
        self._probe_lock = asyncio.Lock()
        #: Sessions that ran the probe, until connect() takes them.
        self._spares: list[FtpSession] = []
        #: Logins started ahead (``log_in_ahead``), until connect() or the probe takes them.
        self._ahead: list[asyncio.Task[FtpClient]] = []
        #: The command round trip each login measured (``WatchesRoundTrip``: the pool).
        self._round_trips = RoundTripReadings()
        #: Folders below the root that a listing of this store showed to be real folders
        #: (or that it created), and names it showed to be symlinks: FTP servers follow
        #: links in CWD, STOR and MKD, so a write goes only into folders known real.
        self.real_dirs: set[str] = set()
        self.links: set[str] = set()
        #: Real folders whose every entry this store saw (listed whole, or made by it):
        #: a name missing there is missing, no listing needed to tell.
        self.complete_dirs: set[str] = set()
        #: Whether a ``LIST -a`` of this server showed a folder's "." entry: then one
        #: without it is not a folder's content (vsftpd lists an unreadable folder as
        #: itself, proftpd's LIST lists nothing: ``FolderSession._listing``).
        self.lists_dots = False
        #: Whether ``SITE CHMOD`` is offered (``SITE HELP``: asked by the probe, else
        #: at the first place).
        self.site_chmod: bool | None = None
        #: The login folder (PWD), asked once at login where commands can be pipelined.
        self.home: str | None = None
        #: Which risky names this server keeps as sent (``names.py``), asked as met.
        self._names = NameChecks()
        #: The write probe wrote a file into the root, moments ago: ``stat("")`` of this
        #: run answers "a folder" without asking again (the destination's root is checked
        #: twice right after the probe: 4 round trips, 0.24 s at 60 ms). Never kept
        #: beyond this store (one run).
        self.root_is_folder = False
        #: Why this server is no longer asked for the next passive port before a
        #: transfer's final reply (transfer.py), or None while it is.
        self.early_passive_off: str | None = None
        #: The greeting names vsftpd, which never reads its control connection during a
        #: transfer (unless ABOR comes as urgent data): commands sent at a download's
        #: end are run in order after its 226, so the source's re-stat rides along
        #: (file_io.py). Any other server gets its re-stat as a command of its own.
        self.runs_commands_after_transfers = False
        #: The server's MLSD and MLST describe a symbolic link as what it points at
        #: (pyftpdlib: "type=dir" for a link to a folder; its LIST says "l"): fsmove
        #: lists with LIST there, or it would write through a destination's link into
        #: a folder outside the destination root (tests/security/test_destination_links).
        self.mlsx_follows_links = False

    def stop_early_passive(self, why: str) -> None:
        """Ask for passive ports only after a transfer's final reply from now on (the
        server reads commands during transfers, or answered out of turn)."""
        if self.early_passive_off is None:
            self.early_passive_off = why

    def __repr__(self) -> str:
        return f"FtpStore({self.display!r})"

    def abs_path(self, path: str) -> str:
        """The server path of a store-relative path (refusing unsafe ones)."""
        check_relpath(path)
        if not path:
            return self.root
        return f"{self.root.rstrip('/')}/{path}"

    def path_room(self) -> int:
        """``backend.LimitsPaths``: a server path is at most ``SERVER_PATH_MAX`` bytes,
        and vsftpd drops a session whose command line passes 4,096 bytes (the longest
        command carrying a path: ``MDTM``/``MFMT`` with a time, ~26 bytes around it)."""
        root = self.root.rstrip("/").encode("utf-8", "surrogateescape")
        return min(SERVER_PATH_MAX, FTP_COMMAND_LINE_MAX - FTP_PATH_COMMAND_ROOM) \
            - len(root) - 1

    def log_in_ahead(self, count: int) -> None:
        """Start logging in ``count`` sessions now, in parallel, in the background
        (``SESSIONS_BEFORE_PROBE`` at least on a store that will be written and not
        probed yet);
        ``connect`` and the probe take them first. A failed login surfaces, unchanged,
        in the ``connect`` that takes it."""
        if not self.read_only and self._probe is None:
            count = max(count, SESSIONS_BEFORE_PROBE)
        for _ in range(count - len(self._ahead) - len(self._spares)):
            self._ahead.append(asyncio.ensure_future(self.open_client()))

    def _take_ahead(self) -> asyncio.Task[FtpClient] | None:
        """A login started ahead: one logged in already first, then one under way, then
        a failed one (None: none left)."""
        def rank(task: asyncio.Task[FtpClient]) -> int:
            if not task.done():
                return 1
            return 0 if not task.cancelled() and task.exception() is None else 2

        if not self._ahead:
            return None
        best = min(range(len(self._ahead)), key=lambda i: rank(self._ahead[i]))
        return self._ahead.pop(best)

    async def _client_ahead(self) -> FtpClient | None:
        """A client logged in ahead; None when none is left. One that met a transient
        refusal (a 421/530 "too many connections" while the others logged in, a network
        error) is passed over for the next: on a server that takes two sessions, three
        logins ahead leave two good ones, and logging in now instead would be refused
        while they are held (proftpd, tests/faults/test_server_faults.py). A permanent
        refusal (a wrong password) is the caller's error at once."""
        while (task := self._take_ahead()) is not None:
            try:
                # Awaited directly: a caller cancelled meanwhile cancels the login, whose
                # connection open_client closes.
                return await task
            except BackendError as exc:
                if not exc.retryable:
                    raise
        return None

    def has_spare(self) -> bool:
        """``HasSpares``: ``connect`` would return at once with a session logged in."""
        return (any(s.usable for s in self._spares)
                or any(t.done() and not t.cancelled() and t.exception() is None
                       for t in self._ahead))

    async def connect(self) -> FtpSession:
        while self._spares:
            spare = self._spares.pop()
            if spare.usable:
                return spare  # a probe's session: logged in already
            await spare.close()
        client = await self._client_ahead()
        session = FtpSession(self, client if client is not None else await self.open_client())
        session.open_login_port()
        return session

    async def open_client(self) -> FtpClient:
        """A new logged-in control connection (what a session runs on)."""
        client: FtpClient
        if self.tls:
            assert self._ssl_context is not None
            client = FtpsClient(timeout=self.timeout, ssl_context=self._ssl_context)
        else:
            client = FtpClient(timeout=self.timeout)
        try:
            # The login in a task of its own under wait_for: a cancel of this task is
            # then always honoured, even when aioftp's own wait_for around the connect
            # swallows the one it gets (it returns a connect that completed in the
            # same turn; asyncio.timeout here let such a cancelled reader go on and
            # hang on its queue: tests/test_resume.py, network cuts, loaded machine).
            # wait_for only waits for a task it cancelled and never reads its error:
            # ``mark_seen`` does, else Python prints it at exit as "Task exception was
            # never retrieved" (seen once in CI: tests/security/test_connect_errors.py).
            login = asyncio.ensure_future(self._log_in(client))
            login.add_done_callback(mark_seen)
            await asyncio.wait_for(login, self.timeout * 3)
        except BaseException as exc:
            client.close()
            if isinstance(exc, Exception) and not isinstance(exc, BackendError):
                raise network_error(exc, where=self.where, action="connect to",
                                    connecting=True) from exc
            raise
        return client

    async def _log_in(self, client: FtpClient) -> None:
        early = self._preconnect
        sock = await early.take(self.endpoint.host, self.port) if early is not None else None
        greeting = await client.open(self.endpoint.host, self.port, sock=sock)
        if greeting.code != 220:
            raise login_error(greeting, user=self.user, where=self.where)
        server = " ".join(greeting.lines).lower()
        if "vsftpd" in server:
            self.runs_commands_after_transfers = True
        if "pyftpdlib" in server:
            self.mlsx_follows_links = True
        if isinstance(client, FtpsClient):
            auth = await client.secure_control(self.endpoint.host)
            if auth.code != 234:
                raise TlsSetupError(
                    f"{self.where} refused AUTH TLS (server replied {auth.text!r}): it does "
                    "not offer explicit FTPS; use ftp:// only if plain FTP is acceptable"
                )
        if any(name in server for name in LOGIN_AT_ONCE_SERVERS):
            await self._log_in_at_once(client)
        else:
            await self._log_in_step_by_step(client)

    def _usable(self, features: Features) -> Features:
        """FEAT's features less those fsmove must not use on this server (MLST where its
        facts follow links: ``mlsx_follows_links``)."""
        if not (self.mlsx_follows_links and features.mlst):
            return features
        return replace(features, lines=frozenset(
            line for line in features.lines if line != "MLST" and not line.startswith("MLST ")))

    def _secret(self) -> str:
        password = self.endpoint.password
        return password.reveal() if password else (
            _ANONYMOUS_PASSWORD if self.user == "anonymous" else "")

    async def _log_in_at_once(self, client: FtpClient) -> None:
        """The whole login in one write, on a server known to read a control
        connection's commands one after the other across the login (``LOGIN_AT_ONCE_
        SERVERS``): USER, PASS, (PBSZ 0, PROT P,) FEAT on the store's first logins,
        OPTS UTF8 ON, TYPE I, the first time PWD, and the first passive port. One round
        trip after the greeting instead of four (three once FEAT is known): at 60 ms,
        ~0.18 s off every session's start, the first byte's included.

        The replies are read in order; a refused login stops at its reply (what was
        sent after it is answered "log in first" or never: the connection is closed).
        A USER answered 230 (no password asked) leaves PASS answered "already logged
        in", ignored. OPTS UTF8 ON is sent before FEAT is read: these servers accept it
        exactly when their FEAT lists UTF8, and a refusal changes nothing we rely on."""
        tls = isinstance(client, FtpsClient)
        known = self.features
        lines = [f"USER {self.user}", f"PASS {self._secret()}"]
        if tls:
            lines += ["PBSZ 0", "PROT P"]
        if known is None:
            lines.append("FEAT")
        utf8 = known is None or known.utf8
        if utf8:
            lines.append("OPTS UTF8 ON")
        lines.append("TYPE I")
        ask_home = self.home is None
        if ask_home:
            lines.append("PWD")
        ask_port = not tls  # each FTPS data connection's TLS belongs to its transfer
        if ask_port:
            lines.append("EPSV")
        loop = asyncio.get_running_loop()
        started = loop.time()
        await client.send_many(lines)
        user = await client.reply()
        self._round_trips.seen(loop.time() - started)
        if user.code == 331:
            login = await client.reply()
        elif user.is_success():
            await client.reply()  # PASS after a login that needed none: ignored
            login = user
        else:
            # Refused at USER (a 421 "too many", a 530): its own words, before a server
            # that closes the connection turns the rest into a network error.
            login = user
        if not login.is_success():
            raise login_error(login, user=self.user, where=self.where)
        if tls:
            self._secure_data_replies([await client.reply() for _ in range(2)])
        if known is None:
            self.features = self._usable(parse_feat(await client.reply()))
        if utf8:
            await client.reply()
        binary = await client.reply()
        if not binary.is_success():
            raise reply_error(binary, where=self.where, action="set binary mode (TYPE I)")
        if ask_home:
            pwd = await client.reply()  # read even if a login beside this one set it
            self._home_known(self.home or self._login_folder(client, pwd), pwd)
        if ask_port:
            self._port_at_login(client, await client.reply())

    def watch_round_trip(self, watcher: Callable[[float, int], None]) -> None:
        """``WatchesRoundTrip``: ``watcher(shortest, samples)`` after each login."""
        self._round_trips.watch(watcher)

    def _secure_data_replies(self, replies: list[Reply]) -> None:
        for line, reply in zip(("PBSZ 0", "PROT P"), replies, strict=True):
            if not reply.is_success():
                raise TlsSetupError(f"{self.where} refused {line} (server replied "
                                    f"{reply.text!r}): data connections cannot be secured")

    async def _log_in_step_by_step(self, client: FtpClient) -> None:
        """A server not known to read commands in order across the login: USER, then
        PASS, (then PBSZ and PROT,) then FEAT the first time, each after the last one's
        reply; the commands after FEAT in one write where the server answered it."""
        started = asyncio.get_running_loop().time()
        reply = await client.cmd(f"USER {self.user}")
        self._round_trips.seen(asyncio.get_running_loop().time() - started)
        if reply.code == 331:
            reply = await client.cmd(f"PASS {self._secret()}")
        if not reply.is_success():
            raise login_error(reply, user=self.user, where=self.where)
        if isinstance(client, FtpsClient):
            self._secure_data_replies([await client.cmd(line) for line in ("PBSZ 0", "PROT P")])
        if self.features is None:
            features = parse_feat(await client.cmd("FEAT"))
            if not features.lines and await self._answers_mlst(client):
                # No FEAT (aioftp's server), but MLST answers: use it rather than LIST.
                features = Features(frozenset({"MLST"}))
            self.features = self._usable(features)
        # The commands after FEAT, in one round trip where the server reads commands in
        # order (FEAT answered): OPTS UTF8 ON (a refusal changes nothing we rely on),
        # TYPE I, and the first time the login folder, which every folder check returns
        # to (control.py; the same for every session of the account).
        lines = ["OPTS UTF8 ON"] if self.features.utf8 else []
        lines.append("TYPE I")
        ask_home = self.home is None and (self.features.answered
                                          or self._under_home is not None)
        if ask_home:
            lines.append("PWD")
        # And the first passive port, in the same write: the session's first transfer
        # then finds its data connection open (transfer.py, "Opened ahead"), two round
        # trips fewer on each session's first file or listing. Not for FTPS (each data
        # connection's TLS belongs to its transfer).
        ask_port = self.features.answered and not isinstance(client, FtpsClient)
        if ask_port:
            lines.append("EPSV")
        if self.features.answered:
            await client.send_many(lines)
            replies = [await client.reply() for _ in lines]
        else:
            replies = [await client.cmd(line) for line in lines]
        if ask_port:
            self._port_at_login(client, replies.pop())
        if ask_home:
            self._home_known(self.home or self._login_folder(client, replies[-1]),
                             replies[-1])
        reply = replies[1 if self.features.utf8 else 0]
        if not reply.is_success():
            raise reply_error(reply, where=self.where, action="set binary mode (TYPE I)")

    @staticmethod
    def _port_at_login(client: FtpClient, reply: Reply) -> None:
        """The login's EPSV answered: the session knows its passive mode and has a port
        to connect to ahead. Refused (a server without EPSV): the first transfer asks
        as before (EPSV, then PASV)."""
        if reply.code == 229:
            client.passive_mode = "EPSV"
            port = client.passive_port(reply)
            if port is not None:
                client.port_at_login = (port, asyncio.get_running_loop().time())

    def _home_known(self, home: str | None, pwd: Reply | None = None) -> None:
        """The login folder, from the first login's PWD; a ``~`` root becomes the path
        the server names (the same for every session of the account). A PWD refused or
        not understood (``home`` None) is "/" for the folder checks' way back, but a
        ``~`` root is refused: taken as "/", a copy to ``ftp://h/~`` with ``--delete``
        emptied the server's root (session 36's adversarial pass, proftpd with PWD
        denied)."""
        if home is None:
            if self._under_home is not None:
                said = f" (it replied {pwd.text.strip()!r})" if pwd is not None else ""
                raise PermanentError(
                    f"{self.where} does not say where this login lands (PWD{said}), so "
                    f"{self.display} cannot be placed in the login folder: write the "
                    "folder's path from the server's root instead of ~", path="")
            home = "/"
        self.home = home
        if self._under_home is not None:
            self.root = (home.rstrip("/") + self._under_home) or "/"
            self._under_home = None

    @staticmethod
    def _login_folder(client: FtpClient, pwd: Reply) -> str | None:
        """The folder a PWD reply names (None when it names none)."""
        if pwd.code == 257:
            try:
                return str(client.parse_directory_response(pwd.last))
            except (IndexError, ValueError):
                pass
        return None

    async def _answers_mlst(self, client: FtpClient) -> bool:
        """MLST on the root, else (a root not made yet: the first copy into a new
        folder) on the login folder: a server that knows MLST answers one of them."""
        if (await client.cmd(f"MLST {self.root}")).code == 250:
            return True
        return (await client.cmd("MLST")).code == 250

    async def capabilities(self) -> Capabilities:
        if self._probe is not None:
            return self._with_facts(self._probe.capabilities)
        session = await self.connect()
        try:
            caps = self._with_facts((await session.run_probe()).capabilities)
        except BaseException:
            await session.close()
            raise
        # Lent to the next connect() (a login is several round trips on a slow link).
        if session.usable:
            self._spares.append(session)
        else:
            await session.close()
        return caps

    def early_capabilities(self) -> Capabilities | None:
        """``WritesBeforeProbe``: what holds while the write probe runs (once a login
        told the server's FEAT and round trip); None once it is done, or where
        nothing is probed (a read-only store)."""
        if self.read_only or self._probe is not None or self.features is None:
            return None
        return self._with_facts(early_capabilities(self.features))

    async def probe_with(self, session: Session) -> Capabilities:
        """``WritesBeforeProbe``: the write probe on a session the pool lends (an
        ``FtpSession``, maybe behind decorators, which pass ``run_probe`` on)."""
        if not isinstance(session, _RunsProbe):
            raise TypeError(f"not an FTP session: {session!r}")
        return self._with_facts((await session.run_probe()).capabilities)

    def _with_facts(self, caps: Capabilities) -> Capabilities:
        """What the pool needs to size itself (transfers/session_count.py decides): the
        login round trip measured, and whether each transfer costs a TLS handshake."""
        return replace(caps, round_trip=self._round_trips.shortest,
                       round_trip_samples=self._round_trips.samples,
                       tls_per_transfer=self.tls)

    @property
    def probe_result(self) -> ProbeResult | None:
        """The cached probe result (None until ``capabilities`` ran)."""
        return self._probe

    async def probe_on(self, session: FtpSession) -> ProbeResult:
        """Probe on a session the caller already holds (cached when final)."""
        async with self._probe_lock:
            if self._probe is not None:
                return self._probe
            if self.read_only:
                result = read_only_capabilities(self.features or Features())
            else:
                result = await self._probe_with_helpers(session)
            if result.final:
                self._probe = result
            if result.root_is_folder:
                self.root_is_folder = True
            if result.site_chmod is not None and self.site_chmod is None:
                self.site_chmod = result.site_chmod
            return result

    async def _probe_with_helpers(self, session: FtpSession) -> ProbeResult:
        """The write probe, with two more sessions logging in meanwhile to run parts of
        it in parallel (kept afterwards as spares for the pool). A server that refuses
        more connections gets the probe on one session."""
        features = self.features or Features()
        if self._probe_leftovers:
            # A probe cut off mid-way (its connection lost) could not remove its
            # scratch files: removed now, before this one, so that a run that ends
            # well leaves none (a killed run's are removed by the next copy).
            # A removal cut off too keeps them for the probe after this one (dropped,
            # they stayed: tests/test_resume.py network cuts, ten cuts in a row).
            await remove_scratch(session, self._probe_leftovers, features)
            self._probe_leftovers_removed.extend(self._probe_leftovers)
            self._probe_leftovers = []
        logins = [self._take_ahead() or asyncio.ensure_future(self.open_client())
                  for _ in range(2)]
        helpers: list[FtpSession] = []

        async def get_helpers() -> list[FtpSession]:
            got = await asyncio.gather(*logins, return_exceptions=True)
            clients = [c for c in got if isinstance(c, FtpClient)]
            if len(clients) < 2:
                for client in clients:
                    client.close()
                return []
            helpers.extend(FtpSession(self, client) for client in clients)
            return helpers

        made: list[str] = []
        try:
            return await probe_capabilities(session, features, get_helpers, made=made)
        except BaseException:
            self._probe_leftovers.extend(made)
            raise
        finally:
            for task in logins:
                if not task.done():
                    task.cancel()
            got = await asyncio.gather(*logins, return_exceptions=True)
            if not helpers:
                for client in got:
                    if isinstance(client, FtpClient):
                        client.close()
            for helper in helpers:
                if helper.usable:
                    self._spares.append(helper)
                else:
                    await helper.close()

    async def _remove_late_leftovers(self) -> None:
        """The scratch files of a probe cut off mid-way, removed before the next probe
        ran, removed again as the store closes: the server's process for the cut
        connection may still have been on its way (a STOR read before the cut, run
        after the removal: seen under load, tests/test_resume.py network cuts, a
        scratch file left by a run that ended well). Best effort and bounded: one
        that stays is removed by the next copy (``tree.is_probe_leftover``)."""
        # Those of a probe never run again too (the run ended, or failed, before).
        paths = self._probe_leftovers_removed + self._probe_leftovers
        self._probe_leftovers_removed, self._probe_leftovers = [], []
        spare = next((s for s in self._spares if s.usable), None)
        session: FtpSession | None = None
        try:
            async with asyncio.timeout(min(self.timeout, LATE_LEFTOVERS_SECONDS)):
                if spare is not None:
                    try:
                        async with asyncio.timeout(LATE_LEFTOVERS_SECONDS / 2):
                            await remove_scratch(spare, paths, self.features or Features())
                        return
                    except (BackendError, OSError):  # a timeout is an OSError
                        # A spare kept from the probe may have been cut since (its loss
                        # not noticed yet, as in the network-cut tests): a fresh login.
                        pass
                session = FtpSession(self, await self.open_client())
                await remove_scratch(session, paths, self.features or Features())
        except (BackendError, OSError, TimeoutError):
            pass
        finally:
            if session is not None:
                with contextlib.suppress(Exception):
                    await asyncio.wait_for(session.close(), 5)

    def name_known(self, name: str) -> bool:
        return self._names.known(name)

    async def name_refusal(self, name: str, session: Session | None) -> str | None:
        """``backend.RewritesNames``: asked on a session the copy lends."""
        assert session is None or isinstance(session, FtpSession)
        return await self._names.refusal(name, session)

    async def aclose(self) -> None:
        """Close the probe's sessions and the logins ahead nobody took (every other
        session is closed by whoever opened it); first remove once more what a cut
        probe left (``_remove_late_leftovers``)."""
        if self._preconnect is not None:
            self._preconnect.close()
        if self._probe_leftovers_removed or self._probe_leftovers:
            await self._remove_late_leftovers()
        spares, self._spares = self._spares, []
        ahead, self._ahead = self._ahead, []
        for task in ahead:
            task.cancel()
        for got in await asyncio.gather(*ahead, return_exceptions=True):
            if isinstance(got, FtpClient):  # done before the cancel came
                got.close()
        await asyncio.gather(*(s.close() for s in spares), return_exceptions=True)
