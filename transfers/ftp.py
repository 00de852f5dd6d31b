"""The FTP and FTPS store: ``FtpStore`` opens ``FtpSession``s (one control connection
each, one operation at a time).

Speed rules (FACTS.md): never let aioftp LIST a directory per file (its ``stat``,
``exists``, ``download`` and ``upload`` do, 31 files/s against vsftpd); single-file
commands only (``MLST``, or ``SIZE`` + ``MDTM`` pipelined in one round trip); data moves
in big blocks; ``TYPE I`` once per session.

Paths: every command carries an absolute path joined from the store root, so the
session's working directory never matters (and is restored after a ``CWD`` probe).

Listings: ``MLSD`` when FEAT lists MLST (exact mtimes, streamed as parsed), else ``LIST
-a`` parsed by ``ftp_listing``. ``LIST`` times are imprecise (minutes, or days, local
time), so they are never used: once the listing is complete, its files get exact times
from ``MDTM``, pipelined ``MDTM_WINDOW`` at a time (vsftpd: ~1 round trip per 32 files);
``mtime`` stays None only where the server has no MDTM.

Data connections opened ahead: once a transfer ended cleanly, the session sends the next
``EPSV`` at once without waiting (its reply is read by whatever comes next on that
connection) and connects the data socket in the background, so the next transfer sends
``RETR``/``STOR`` straight away: two round trips less per file on a slow link. Only on
servers that answered ``FEAT`` (they read commands in order), never for FTPS (each data
connection's TLS is tied to its transfer). A connection older than ``AHEAD_MAX_AGE``, or
one the server did not take (425), is dropped and the transfer opens a fresh one.

Ranged reads: ``REST`` + ``RETR``; at the end of the range the data connection is cut,
``ABOR`` is sent and the replies are brought back in step with a ``PWD`` marker. If a
server leaves the control connection out of step, the session is closed and marked
``broken`` (the pool drops it) and TransientError is raised.
"""

from __future__ import annotations

import asyncio
import posixpath
import ssl
from collections.abc import AsyncIterable, AsyncIterator, Callable
from dataclasses import replace
from types import TracebackType

import aioftp

from .backend import (
    BackendError,
    Capabilities,
    Entry,
    EntryKind,
    NotFoundError,
    OffsetWrites,
    PermanentError,
    TransientError,
    UnsupportedError,
    check_relpath,
    join_relpath,
    link_refusal,
    parent_of,
)
from .endpoint import Endpoint
from .ftp_client import DATA_BUFFER, FtpClient, ProtocolError, Reply
from .ftp_data import DataStream
from .ftp_errors import (
    error_for_550,
    login_error,
    looks_denied,
    looks_missing,
    network_error,
    reply_error,
)
from .ftp_listing import (
    LineSplitter,
    Listed,
    ListingLineError,
    facts_to_listed,
    format_timeval,
    parse_facts,
    parse_list_line,
    parse_mlsx_line,
    parse_timeval,
)
from .ftp_probe import (
    Features,
    ProbeResult,
    parse_feat,
    probe_capabilities,
    read_only_capabilities,
)
from .ftp_tls import FtpsClient, TlsSetupError, make_ssl_context

#: Exceptions that mean the connection itself failed (the session is then unusable).
_NETWORK_ERRORS = (
    OSError,
    TimeoutError,
    asyncio.IncompleteReadError,
    ssl.SSLError,
    ProtocolError,
    aioftp.AIOFTPException,
)

_ANONYMOUS_PASSWORD = "anonymous@"
#: After a ranged read, read on to EOF rather than ABOR when at most this much is left.
DRAIN_LIMIT = 1024 * 1024
#: MDTM commands sent at once after a LIST (exact mtimes for LIST-only servers).
MDTM_WINDOW = 32
#: How long to wait for a reply to ABOR beyond three round trips before cutting the data.
ABOR_GRACE = 0.05
#: A login round trip under this means a LAN (see ``FtpStore._with_suggestion``).
LAN_RTT = 0.005
#: Most entries one folder listing may hold: a server streaming an endless listing
#: ends in an error at this count, with memory bounded (the LIST path and the walk
#: hold a folder's entries; ~250 bytes each).
MAX_LISTING_ENTRIES = 1_000_000
#: A data connection opened ahead is used only this young (servers and middleboxes may
#: drop idle connections; a fresh one costs two round trips, a dead one a timeout).
AHEAD_MAX_AGE = 15.0


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
        self._ssl_context = ssl_context
        if self.tls and ssl_context is None:
            self._ssl_context = make_ssl_context(cafile=None, insecure=False)
        #: FEAT, read by the first session and shared by the later ones.
        self.features: Features | None = None
        self._probe: ProbeResult | None = None
        self._probe_lock = asyncio.Lock()
        #: Sessions that ran the probe, until connect() takes them.
        self._spares: list[FtpSession] = []
        #: The shortest command round trip seen at login (seconds).
        self.rtt = float("inf")
        #: Folders below the root that a listing of this store showed to be real folders
        #: (or that it created), and names it showed to be symlinks: FTP servers follow
        #: links in CWD, STOR and MKD, so a write goes only into folders known real.
        self.real_dirs: set[str] = set()
        self.links: set[str] = set()
        #: Real folders whose every entry this store saw (listed whole, or made by it):
        #: a name missing there is missing, no listing needed to tell.
        self.complete_dirs: set[str] = set()
        #: Whether ``SITE CHMOD`` is offered (``SITE HELP``; asked at the first place).
        self.site_chmod: bool | None = None

    def __repr__(self) -> str:
        return f"FtpStore({self.display!r})"

    def abs_path(self, path: str) -> str:
        """The server path of a store-relative path (refusing unsafe ones)."""
        check_relpath(path)
        if not path:
            return self.root
        return f"{self.root.rstrip('/')}/{path}"

    async def connect(self) -> FtpSession:
        while self._spares:
            spare = self._spares.pop()
            if not spare.broken:
                return spare  # a probe's session: logged in already
            await spare.close()
        return FtpSession(self, await self.open_client())

    async def open_client(self) -> FtpClient:
        """A new logged-in control connection (what a session runs on)."""
        client: FtpClient
        if self.tls:
            assert self._ssl_context is not None
            client = FtpsClient(timeout=self.timeout, ssl_context=self._ssl_context)
        else:
            client = FtpClient(timeout=self.timeout)
        try:
            await asyncio.wait_for(self._log_in(client), self.timeout * 3)
        except BaseException as exc:
            client.close()
            if isinstance(exc, Exception) and not isinstance(exc, BackendError):
                raise network_error(exc, where=self.where, action="connect to",
                                    connecting=True) from exc
            raise
        return client

    async def _log_in(self, client: FtpClient) -> None:
        greeting = await client.open(self.endpoint.host, self.port)
        if greeting.code != 220:
            raise login_error(greeting, user=self.user, where=self.where)
        if isinstance(client, FtpsClient):
            auth = await client.secure_control(self.endpoint.host)
            if auth.code != 234:
                raise TlsSetupError(
                    f"{self.where} refused AUTH TLS (server replied {auth.text!r}): it does "
                    "not offer explicit FTPS; use ftp:// only if plain FTP is acceptable"
                )
        started = asyncio.get_running_loop().time()
        reply = await client.cmd(f"USER {self.user}")
        self.rtt = min(self.rtt, asyncio.get_running_loop().time() - started)
        if reply.code == 331:
            password = self.endpoint.password
            secret = password.reveal() if password else (
                _ANONYMOUS_PASSWORD if self.user == "anonymous" else "")
            reply = await client.cmd(f"PASS {secret}")
        if not reply.is_success():
            raise login_error(reply, user=self.user, where=self.where)
        if isinstance(client, FtpsClient):
            for line in ("PBSZ 0", "PROT P"):
                reply = await client.cmd(line)
                if not reply.is_success():
                    raise TlsSetupError(f"{self.where} refused {line} (server replied "
                                        f"{reply.text!r}): data connections cannot be secured")
        if self.features is None:
            features = parse_feat(await client.cmd("FEAT"))
            if not features.lines and await self._answers_mlst(client):
                # No FEAT (aioftp's server), but MLST answers: use it rather than LIST.
                features = Features(frozenset({"MLST"}))
            self.features = features
        if self.features.utf8:
            await client.cmd("OPTS UTF8 ON")  # a refusal changes nothing we rely on
        reply = await client.cmd("TYPE I")
        if not reply.is_success():
            raise reply_error(reply, where=self.where, action="set binary mode (TYPE I)")

    async def _answers_mlst(self, client: FtpClient) -> bool:
        """MLST on the root, else (a root not made yet: the first copy into a new
        folder) on the login folder: a server that knows MLST answers one of them."""
        if (await client.cmd(f"MLST {self.root}")).code == 250:
            return True
        return (await client.cmd("MLST")).code == 250

    async def capabilities(self) -> Capabilities:
        if self._probe is not None:
            return self._with_suggestion(self._probe.capabilities)
        session = await self.connect()
        try:
            caps = self._with_suggestion((await session.run_probe()).capabilities)
        except BaseException:
            await session.close()
            raise
        # Lent to the next connect() (a login is several round trips on a slow link).
        if session.broken:
            await session.close()
        else:
            self._spares.append(session)
        return caps

    def _with_suggestion(self, caps: Capabilities) -> Capabilities:
        """Sessions worth opening (Little's law): on a LAN a file costs CPU, not waiting,
        and more sessions only add overhead (measured: 16 sessions moved small files
        15 % faster than 32 at RTT 0); over a WAN each file waits several round trips
        and only more files in flight hide them (64 sessions: +33 % at 60 ms, what
        rclone's --ftp-concurrency allows). FTPS stays at 32: each data connection is
        a TLS handshake."""
        if self.rtt < LAN_RTT:
            wanted = 16
        else:
            wanted = 32 if self.tls else 64
        return replace(caps, suggested_sessions=wanted)

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
            return result

    async def _probe_with_helpers(self, session: FtpSession) -> ProbeResult:
        """The write probe, with two more sessions logging in meanwhile to run parts of
        it in parallel (kept afterwards as spares for the pool). A server that refuses
        more connections gets the probe on one session."""
        logins = [asyncio.ensure_future(self.open_client()) for _ in range(2)]
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

        try:
            return await probe_capabilities(session, self.features or Features(),
                                            get_helpers)
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
                if helper.broken:
                    await helper.close()
                else:
                    self._spares.append(helper)

    async def aclose(self) -> None:
        """Close the probe's sessions nobody took (every other session is closed by
        whoever opened it)."""
        spares, self._spares = self._spares, []
        await asyncio.gather(*(s.close() for s in spares), return_exceptions=True)


class _Op:
    """Guards one session operation: one at a time, network failures break the session."""

    __slots__ = ("action", "path", "session")

    def __init__(self, session: FtpSession, action: str, path: str | None) -> None:
        self.session = session
        self.action = action
        self.path = path

    async def __aenter__(self) -> None:
        await self.session._enter(self.action)

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> bool:
        session = self.session
        session._busy = None
        if exc is None or isinstance(exc, (BackendError, GeneratorExit)):
            return False
        if isinstance(exc, _NETWORK_ERRORS):
            session._mark_broken(f"{type(exc).__name__} during {self.action}")
            raise network_error(exc, where=session.where, action=self.action,
                                path=self.path) from exc
        if isinstance(exc, BaseException) and not isinstance(exc, Exception):
            session._mark_broken(f"{type(exc).__name__} during {self.action}")
        return False


class FtpSession:
    """One logged-in FTP control connection."""

    def __init__(self, store: FtpStore, client: FtpClient) -> None:
        self._store = store
        self._client = client
        self.where = store.where
        self.root = store.root
        self._features = store.features or Features()
        self._busy: str | None = None
        self._broken: str | None = None
        self._closed = False
        self._home: str | None = None
        self._list_plain = False  # the server refused "LIST -a": use "LIST"
        #: Dependent commands may be pipelined and data connections opened ahead.
        self._pipelining = self._features.answered
        #: The data connection opened ahead for the next transfer (see the module doc).
        self._ahead: asyncio.Task[tuple[DataStream, DataStream]] | None = None
        self._ahead_at = 0.0
        #: How many times the session logged in again after a lost control connection.
        self.reconnects = 0

    def __repr__(self) -> str:
        return f"FtpSession({self._store.display!r})"

    # -- state ---------------------------------------------------------------------------

    @property
    def broken(self) -> bool:
        """True once the control connection failed or fell out of step (the error was
        raised to the operation that saw it). The next operation logs in again; a pool
        may as well drop the session."""
        return self._broken is not None or self._closed

    async def _enter(self, action: str) -> None:
        if self._closed:
            raise TransientError(f"{action} on {self.where}: session already closed")
        if self._busy is not None:
            raise RuntimeError(f"FTP session busy with {self._busy}: one operation at a time")
        self._busy = action
        if self._broken is not None:
            # The control connection was lost or fell out of step after an earlier
            # operation (which reported it): log in again before this one.
            try:
                self._client.close()
                self._client = await self._store.open_client()
            except BaseException:
                self._busy = None
                raise
            self._broken = None
            self._home = None
            self.reconnects += 1

    def _mark_broken(self, reason: str) -> None:
        if self._broken is None:
            self._broken = reason
        self._drop_ahead()
        self._client.close()

    # -- data connections opened ahead ---------------------------------------------------

    def _can_open_ahead(self) -> bool:
        return not (not self._pipelining or self._store.tls or self._ahead is not None
                    or self._client.passive_mode is None or self._broken is not None
                    or self._closed or self._client.owes)

    async def _open_ahead(self) -> None:
        """After a clean transfer: ask for the next passive port without waiting (the
        reply is read in the background, which then connects)."""
        if not self._can_open_ahead():
            return
        assert self._client.passive_mode is not None
        await self._client.send(self._client.passive_mode)
        self._client.owe(self._on_ahead_reply)

    def _on_ahead_reply(self, reply: Reply) -> None:
        port = self._client.passive_port(reply)
        if port is None or self._closed or self._broken is not None:
            return  # refused (or closing): the next transfer asks again
        self._drop_ahead()
        self._ahead = asyncio.ensure_future(self._client.open_data(port))
        self._ahead_at = asyncio.get_running_loop().time()

    async def _take_ahead(self) -> tuple[DataStream, DataStream] | None:
        """The data connection opened ahead, if there is a usable one (owed replies are
        read first)."""
        if self._client.owes:
            await self._client.settle()
        task, self._ahead = self._ahead, None
        if task is None:
            return None
        try:
            reader, writer = await task
        except (TimeoutError, OSError):
            return None
        if asyncio.get_running_loop().time() - self._ahead_at > AHEAD_MAX_AGE:
            writer.transport.abort()
            return None
        return reader, writer

    def _drop_ahead(self) -> None:
        task, self._ahead = self._ahead, None
        if task is not None:
            task.add_done_callback(_abort_channel)
            task.cancel()

    async def _fresh_passive(self) -> None:
        """Before a PASV/EPSV of our own: no data connection opened ahead may remain (the
        new passive port replaces the one it was opened to)."""
        if self._client.owes:
            await self._client.settle()
        self._drop_ahead()

    def _op(self, action: str, path: str | None) -> _Op:
        return _Op(self, action, path)

    # -- raw helpers (no guard; used by the operations and by ftp_probe) -------------------

    async def raw_command(self, line: str) -> Reply:
        reply = await self._client.cmd(line)
        if reply.code == 421:
            self._mark_broken("the server closed the session (421)")
        return reply

    async def _refusal(self, reply: Reply, *, abs_path: str, path: str, action: str
                       ) -> BackendError:
        """The error for a refused command; an ambiguous 550 gets an existence check."""
        if action == "list" and reply.code in (501, 550) and not looks_denied(reply):
            if not await self.raw_is_dir(abs_path):
                return NotFoundError(f"list {path!r} on {self.where}: no such folder "
                                     f"(server replied {reply.text!r})", path=path)
        if reply.code == 550 and not looks_denied(reply) and not looks_missing(reply):
            exists = await self._exists(abs_path)
            return error_for_550(reply, exists=exists, where=self.where, action=action,
                                 path=path)
        return reply_error(reply, where=self.where, action=action, path=path)

    async def _exists(self, abs_path: str) -> bool:
        if self._features.mlst:
            return (await self.raw_command(f"MLST {abs_path}")).code == 250
        if (await self.raw_command(f"SIZE {abs_path}")).code == 213:
            return True
        return await self.raw_is_dir(abs_path)

    async def raw_is_dir(self, abs_path: str) -> bool:
        """CWD probe (the working directory is restored)."""
        if self._home is None:
            reply = await self.raw_command("PWD")
            self._home = "/"
            if reply.code == 257:
                try:
                    self._home = str(self._client.parse_directory_response(reply.last))
                except (IndexError, ValueError):
                    self._home = "/"
        reply = await self.raw_command(f"CWD {abs_path}")
        if not reply.is_success():
            if 400 <= reply.code < 500:
                raise reply_error(reply, where=self.where, action="check folder", path=abs_path)
            return False
        back = await self.raw_command(f"CWD {self._home}")
        if not back.is_success():
            self._mark_broken("cannot restore the working directory")
            raise TransientError(f"cannot return to {self._home!r} on {self.where} after a "
                                 f"folder check ({back.text!r})")
        return True

    async def _size(self, abs_path: str, *, path: str) -> int | None:
        """The file size (None when the file does not exist)."""
        reply = await self.raw_command(f"SIZE {abs_path}")
        if reply.code == 213:
            try:
                return int(reply.last.strip())
            except ValueError as exc:
                raise ProtocolError(f"bad SIZE reply {reply.text!r}") from exc
        if reply.code == 550 and not looks_denied(reply):
            return None
        raise reply_error(reply, where=self.where, action="size of", path=path)

    async def _start_transfer(
        self, command: str, *, rest: int, abs_path: str, path: str, action: str,
        before: tuple[str, ...] = (),
    ) -> tuple[DataStream, DataStream]:
        """PASV/EPSV, connect, (REST), the transfer command; returns the data streams once
        the server accepted the command (1xx), TLS already set up.

        Without REST, once passive mode is known, the command is pipelined after EPSV
        (one round trip less per file). REST is never pipelined: a refused REST followed
        by STOR would truncate the file.
        """
        pipelined = rest == 0 and self._client.passive_mode is not None
        if before and not (pipelined and self._pipelining):
            for line in before:  # one at a time: this server may not keep order
                await self.raw_command(line)
            before = ()
        ahead = await self._take_ahead() if not before else None
        if ahead is not None:
            started = await self._start_on_ahead(ahead, command, rest=rest, abs_path=abs_path,
                                                 path=path, action=action)
            if started is not None:
                return started
        self._drop_ahead()
        if pipelined:
            refusal, port = await self._client.passive_then(f"{command} {abs_path}",
                                                            before=before)
        else:
            refusal, port = await self._client.passive()
        if refusal is not None or port is None:
            assert refusal is not None
            raise reply_error(refusal, where=self.where, action=f"{action} (passive mode)",
                              path=path)
        try:
            reader, writer = await self._client.open_data(port)
        except OSError:
            if not pipelined:
                raise
            # The server may have refused the pipelined command (550) and closed its
            # passive port before we connected: its reply says so.
            reply = await self._client.reply()
            if reply.is_preliminary() or reply.is_success():
                raise
            raise await self._refusal(reply, abs_path=abs_path, path=path,
                                      action=action) from None
        try:
            if pipelined:
                reply = await self._client.reply()
                if reply.code == 421:
                    self._mark_broken("the server closed the session (421)")
            else:
                reply = await self._transfer_command(command, rest=rest, abs_path=abs_path,
                                                     path=path, action=action)
            if not reply.is_preliminary():
                if reply.is_success():
                    raise ProtocolError(f"{command} answered {reply.text!r} without 1xx")
                raise await self._refusal(reply, abs_path=abs_path, path=path, action=action)
            await self._client.start_data_tls(writer)
        except BaseException:
            writer.transport.abort()
            raise
        return reader, writer

    async def _transfer_command(
        self, command: str, *, rest: int, abs_path: str, path: str, action: str
    ) -> Reply:
        """[REST, then] the transfer command; its first reply. A refused REST is raised
        before the command is sent (a STOR after a refused REST would truncate)."""
        if rest:
            reply = await self.raw_command(f"REST {rest}")
            if reply.code != 350:
                raise reply_error(reply, where=self.where,
                                  action=f"{action} from offset {rest}", path=path)
        return await self.raw_command(f"{command} {abs_path}")

    async def _start_on_ahead(
        self,
        ahead: tuple[DataStream, DataStream],
        command: str,
        *,
        rest: int,
        abs_path: str,
        path: str,
        action: str,
    ) -> tuple[DataStream, DataStream] | None:
        """The transfer command on the data connection opened ahead: the streams once
        the server accepted it, None if the server did not take that connection (425:
        the caller opens a fresh one), or the refusal raised."""
        reader, writer = ahead
        try:
            reply = await self._transfer_command(command, rest=rest, abs_path=abs_path,
                                                 path=path, action=action)
            if reply.is_preliminary():
                return reader, writer
            writer.transport.abort()
            if reply.code in (425, 426):
                return None
            if reply.is_success():
                raise ProtocolError(f"{command} answered {reply.text!r} without 1xx")
            raise await self._refusal(reply, abs_path=abs_path, path=path, action=action)
        except BaseException:
            writer.transport.abort()
            raise

    async def _finish_transfer(self, *, path: str, action: str) -> None:
        """Wait for the transfer's final reply (226/250)."""
        reply = await self._client.final_reply()
        if reply.is_success():  # 226 / 250 (aioftp's server says 200)
            return
        if reply.code == 421:
            self._mark_broken("the server closed the session (421)")
        raise reply_error(reply, where=self.where, action=action, path=path)

    async def _abort_transfer(
        self, writer: DataStream, reader: DataStream | None
    ) -> None:
        """Stop a transfer and bring the control connection back in step.

        Downloads (``reader`` given): send ABOR first and keep reading the data. Servers
        that watch the control connection during a transfer (aioftp, which drops the
        whole session if its data connection is reset mid-write) stop, reply and close
        the data connection; the others (vsftpd) keep sending until the data connection
        is cut, which happens once ``DRAIN_LIMIT`` bytes and a few round trips passed
        with no reply. Uploads: cut first (the server would wait for data), then ABOR.
        Then read replies until a PWD marker comes back, whatever the server sent
        (426 then 226, 226 then 225, a lone 226...).
        """
        client = self._client
        try:
            async with asyncio.timeout(client.timeout):
                if reader is None:
                    writer.transport.abort()
                    await client.cmd("ABOR")
                else:
                    await client.send("ABOR")
                    first = asyncio.ensure_future(client.reply())
                    try:
                        await self._drain_until(reader, first)
                    finally:
                        writer.transport.abort()
                    await first
                reply = await client.cmd("PWD")
                for _ in range(4):
                    if reply.code == 257:
                        return
                    reply = await client.reply()
        except _NETWORK_ERRORS as exc:
            writer.transport.abort()
            self._mark_broken(f"ABOR failed ({type(exc).__name__})")
            raise TransientError(f"abort of a transfer on {self.where} failed "
                                 f"({type(exc).__name__}); the session is closed") from exc
        self._mark_broken("replies out of step after ABOR")
        raise TransientError(f"the server at {self.where} answered ABOR out of step; "
                             "the session is closed")

    async def _drain_until(
        self, reader: DataStream, reply: asyncio.Future[Reply]
    ) -> None:
        """Read and drop data until EOF, until ``reply`` arrives, or until the server
        clearly ignores ABOR during the transfer (``DRAIN_LIMIT`` bytes and a grace
        period of a few round trips)."""
        loop = asyncio.get_running_loop()
        grace_end = loop.time() + 3 * self._client.rtt + ABOR_GRACE
        dropped = 0
        while not reply.done():
            read = asyncio.ensure_future(reader.read(DATA_BUFFER, self._client.timeout))
            await asyncio.wait({read, reply}, return_when=asyncio.FIRST_COMPLETED)
            if not read.done():
                read.cancel()
                return
            try:
                chunk = read.result()
            except _NETWORK_ERRORS:
                return  # the data connection only: the control replies tell the rest
            if not chunk:
                return
            dropped += len(chunk)
            if dropped >= DRAIN_LIMIT and loop.time() >= grace_end:
                return

    async def _drain(self, reader: DataStream, limit: int) -> bool:
        """Read and drop up to ``limit`` bytes; True if the data connection hit EOF."""
        dropped = 0
        while dropped <= limit:
            chunk = await self._read_block(reader)
            if not chunk:
                return True
            dropped += len(chunk)
        return False

    async def _read_block(self, reader: DataStream) -> bytes:
        return await reader.read(DATA_BUFFER, self._client.timeout)

    async def raw_store(self, abs_path: str, payload: bytes, *, verb: str, rest: int) -> Reply:
        """Upload ``payload`` with STOR/APPE (REST first if ``rest``); the final reply, or
        the refusal."""
        await self._fresh_passive()
        refusal, port = await self._client.passive()
        if refusal is not None or port is None:
            assert refusal is not None
            return refusal
        _reader, writer = await self._client.open_data(port)
        try:
            if rest:
                reply = await self.raw_command(f"REST {rest}")
                if reply.code != 350:
                    return reply
            reply = await self.raw_command(f"{verb} {abs_path}")
            if not reply.is_preliminary():
                return reply
            await self._client.start_data_tls(writer)
            writer.write(payload)
            await asyncio.wait_for(writer.drain(), self._client.timeout)
        finally:
            writer.close()
        return await self._client.final_reply()

    async def raw_read_all(self, abs_path: str, *, rest: int = 0) -> bytes | Reply:
        """A whole (small) file from ``rest``, or the refusal reply."""
        await self._fresh_passive()
        refusal, port = await self._client.passive()
        if refusal is not None or port is None:
            assert refusal is not None
            return refusal
        reader, writer = await self._client.open_data(port)
        try:
            if rest:
                reply = await self.raw_command(f"REST {rest}")
                if reply.code != 350:
                    return reply
            reply = await self.raw_command(f"RETR {abs_path}")
            if not reply.is_preliminary():
                return reply
            await self._client.start_data_tls(writer)
            parts = []
            while chunk := await self._read_block(reader):
                parts.append(chunk)
        finally:
            writer.close()
        final = await self._client.final_reply()
        return b"".join(parts) if final.is_success() else final

    def passive_note(self) -> str:
        mode = self._client.passive_mode or "none used yet"
        note = f"passive mode: {mode}; data connections go to the control peer address"
        advertised = self._client.pasv_advertised
        if advertised and advertised != self._client.peer_ip:
            note += f" (PASV advertised {advertised}, ignored)"
        return note

    async def run_probe(self) -> ProbeResult:
        await self._enter("capability probe")
        try:
            return await self._store.probe_on(self)
        except _NETWORK_ERRORS as exc:
            self._mark_broken(f"{type(exc).__name__} during the capability probe")
            raise network_error(exc, where=self.where, action="probe capabilities") from exc
        finally:
            self._busy = None

    # -- Session protocol ------------------------------------------------------------------

    async def stat(self, path: str) -> Entry:
        abs_path = self._store.abs_path(path)
        async with self._op("stat", path):
            if self._features.mlst:
                return await self._stat_mlst(abs_path, path)
            return await self._stat_size_mdtm(abs_path, path)

    async def _stat_mlst(self, abs_path: str, path: str) -> Entry:
        reply = await self.raw_command(f"MLST {abs_path}")
        if reply.code != 250:
            raise await self._refusal(reply, abs_path=abs_path, path=path, action="stat")
        for line in reply.lines[1:-1] or reply.lines:
            text = line[1:] if line.startswith(" ") else line
            facts_text, _sep, _name = text.partition(" ")
            facts = parse_facts(facts_text)
            if "type" in facts:
                listed = facts_to_listed(facts, path)
                if listed is None:  # "cdir": the folder itself
                    return Entry(path=path, kind=EntryKind.DIR, mtime=_mtime_of(facts))
                return Entry(path=path, kind=listed.kind, size=listed.size, mtime=listed.mtime)
        raise ProtocolError(f"MLST reply without facts: {reply.text!r}")

    async def _stat_size_mdtm(self, abs_path: str, path: str) -> Entry:
        # Both single-file commands in one round trip.
        await self._client.send(f"SIZE {abs_path}")
        await self._client.send(f"MDTM {abs_path}")
        size_reply = await self._client.reply()
        mdtm_reply = await self._client.reply()
        if size_reply.code == 213:
            try:
                size = int(size_reply.last.strip())
            except ValueError as exc:
                raise ProtocolError(f"bad SIZE reply {size_reply.text!r}") from exc
            mtime = None
            if mdtm_reply.code == 213:
                try:
                    mtime = parse_timeval(mdtm_reply.last)
                except ValueError:
                    mtime = None
            return Entry(path=path, kind=EntryKind.FILE, size=size, mtime=mtime)
        if size_reply.code in (421, 530) or 400 <= size_reply.code < 500:
            raise reply_error(size_reply, where=self.where, action="stat", path=path)
        if await self.raw_is_dir(abs_path):
            return Entry(path=path, kind=EntryKind.DIR)
        raise NotFoundError(f"stat {path!r} on {self.where}: no such file or folder "
                            f"(server replied {size_reply.text!r})", path=path)

    async def list(self, path: str) -> AsyncIterator[Entry]:
        abs_path = self._store.abs_path(path)
        async with self._op("list", path):
            entries = self._listing(abs_path, path, exact_times=True)
            try:
                async for entry in entries:
                    yield entry
            finally:
                # Closed here, inside the guard: a consumer that stops early gets the
                # transfer aborted before the session is free again.
                await entries.aclose()

    def _remember(self, parent: str, entry: Entry) -> None:
        """Note what a listing showed: real folders and links (only below folders known
        real themselves: a folder reached through a link proves nothing)."""
        store = self._store
        if parent and parent not in store.real_dirs:
            return
        if entry.kind is EntryKind.DIR:
            store.real_dirs.add(entry.path)
            store.links.discard(entry.path)
        else:
            store.real_dirs.discard(entry.path)
            if entry.kind is EntryKind.LINK:
                store.links.add(entry.path)
            else:
                store.links.discard(entry.path)

    async def _listing(
        self, abs_path: str, path: str, *, exact_times: bool
    ) -> AsyncIterator[Entry]:
        """The entries of one folder (no guard: the caller holds the session)."""
        mlsd = self._features.mlst
        if mlsd:
            command = "MLSD"
        else:
            command = "LIST" if self._list_plain else "LIST -a"
        try:
            reader, writer = await self._start_transfer(
                command, rest=0, abs_path=abs_path, path=path, action="list")
        except BackendError as exc:
            if command != "LIST -a" or not isinstance(exc, PermanentError):
                raise
            self._list_plain = True
            command = "LIST"
            reader, writer = await self._start_transfer(
                command, rest=0, abs_path=abs_path, path=path, action="list")
        parse = parse_mlsx_line if mlsd else parse_list_line
        splitter = LineSplitter()
        # MLSD entries stream out as they are parsed. LIST entries are held until the
        # listing ends: LIST cannot tell a missing folder or a file from a folder
        # ("LIST -a" shows "." for a folder, else a CWD probe decides), and its times
        # are imprecise, so exact ones come from MDTM once the data connection closed.
        seen_dot = False
        held: list[Entry] = []
        count = 0
        finished = False
        try:
            while True:
                chunk = await self._read_block(reader)
                lines = splitter.feed(chunk) if chunk else splitter.finish()
                batch: list[Entry] = []
                for line in lines:
                    listed = _parse_line(parse, line, where=self.where, path=path)
                    if listed is None:
                        continue
                    if listed.name in (".", ".."):
                        seen_dot = True
                        continue
                    count += 1
                    if count > MAX_LISTING_ENTRIES:
                        raise PermanentError(
                            f"list {path!r} on {self.where}: more than "
                            f"{MAX_LISTING_ENTRIES} entries in one folder; the listing "
                            "was stopped (a broken or hostile server?)", path=path)
                    entry = _entry_of(path, listed, where=self.where)
                    self._remember(path, entry)
                    batch.append(entry)
                if mlsd:
                    for entry in batch:
                        yield entry
                else:
                    held.extend(batch)
                if not chunk:
                    break
            writer.close()
            finished = True
            await self._finish_transfer(path=path, action="list")
            await self._open_ahead()
        except BaseException as exc:
            if not finished:
                await self._after_failed_transfer(writer, reader, exc)
            raise
        if path == "" or path in self._store.real_dirs:
            self._store.complete_dirs.add(path)
        if mlsd:
            return
        if not seen_dot and not await self.raw_is_dir(abs_path):
            raise NotFoundError(f"list {path!r} on {self.where}: no such folder",
                                path=path)
        for entry in await self._with_mdtm(held) if exact_times else held:
            yield entry

    async def _listed_kind(self, path: str) -> EntryKind | None:
        """What ``path`` is according to a listing of its folder (None: not there)."""
        parent = parent_of(path)
        kind: EntryKind | None = None
        async for entry in self._listing(self._store.abs_path(parent), parent,
                                         exact_times=False):
            if entry.path == path:
                kind = entry.kind  # read on to the end: the session stays in step
        return kind

    async def _check_folders(self, path: str, *, itself: bool = False) -> list[str]:
        """Refuse a link (or a file) where a folder of ``path`` should be (``itself``:
        ``path`` too); return the folders found missing, outermost first. Folders this
        store listed or made are known; any other is looked up in its parent's listing
        (once: the answer is remembered)."""
        store = self._store
        folders = _folders_of(path) + ([path] if itself else [])
        for i, folder in enumerate(folders):
            if folder in store.real_dirs:
                continue
            if folder in store.links:
                raise link_refusal(folder)
            if parent_of(folder) in store.complete_dirs:
                return folders[i:]  # its folder was listed whole (or made): not there
            kind = await self._listed_kind(folder)
            if kind is None:
                return folders[i:]
            if kind is EntryKind.LINK:
                raise link_refusal(folder)
            if kind is not EntryKind.DIR:
                raise PermanentError(f"{folder}: exists and is not a folder", path=folder)
            store.real_dirs.add(folder)
        return []

    async def _with_mdtm(self, entries: list[Entry]) -> list[Entry]:
        """Exact mtimes for listed files: MDTM, ``MDTM_WINDOW`` commands per write, so a
        folder costs one round trip per window rather than one per file."""
        if not self._features.mdtm:
            return entries
        files = [i for i, e in enumerate(entries) if e.kind is EntryKind.FILE]
        out = list(entries)
        for start in range(0, len(files), MDTM_WINDOW):
            window = files[start : start + MDTM_WINDOW]
            await self._client.send_many(
                [f"MDTM {self._store.abs_path(entries[i].path)}" for i in window])
            for i in window:
                reply = await self._client.reply()
                if reply.code == 213:
                    try:
                        out[i] = replace(entries[i], mtime=parse_timeval(reply.last))
                    except ValueError:
                        pass
        return out

    async def _after_failed_transfer(
        self, writer: DataStream, reader: DataStream, exc: BaseException
    ) -> None:
        """A transfer ended early: the consumer stopped (GeneratorExit) or an error came.
        Resync with ABOR when the control connection may still be fine, else break."""
        if isinstance(exc, (*_NETWORK_ERRORS, asyncio.CancelledError)):
            writer.transport.abort()
            self._mark_broken(f"{type(exc).__name__} during a transfer")
            return
        await self._cleanup_transfer(writer, reader)

    async def _cleanup_transfer(
        self, writer: DataStream, reader: DataStream | None
    ) -> None:
        """After an early stop: ABOR and resync, or break the session."""
        if self.broken:
            writer.transport.abort()
            return
        try:
            await self._abort_transfer(writer, reader)
        except TransientError:
            pass  # the session is marked broken; the original error is the one to report

    async def read(
        self, path: str, *, offset: int = 0, length: int | None = None,
        expect: Entry | None = None,
    ) -> AsyncIterator[bytes]:
        """REST + RETR. ``expect`` is not checked beyond the byte count: FTP has no way
        to open a file without following a link, and a listing already showed what
        the name was (the engine checks size and mtime after the transfer)."""
        abs_path = self._store.abs_path(path)
        if offset < 0 or (length is not None and length < 0):
            raise ValueError(f"bad range offset={offset} length={length}")
        if length == 0:
            return
        async with self._op("read", path):
            reader, writer = await self._start_transfer(
                "RETR", rest=offset, abs_path=abs_path, path=path, action="read")
            done = False
            try:
                remaining = length
                # Pieces arrive whole (64 KiB growing to DATA_PIECE; fewer at EOF), in
                # buffers the data connection filled in place; the last piece of the
                # range is held back until the transfer is closed cleanly.
                parts: list[bytes | bytearray] = []
                eof = False
                timeout = self._client.timeout
                while remaining is None or remaining > 0:
                    chunk = await reader.read_piece(timeout)
                    if not chunk:
                        eof = True
                        break
                    if remaining is not None:
                        if len(chunk) > remaining:
                            del chunk[remaining:]
                        remaining -= len(chunk)
                    if parts:
                        yield parts.pop()
                    parts.append(chunk)
                if not eof:
                    # The range is complete. Near the end of the file, reading on to EOF
                    # is cheaper than ABOR (two round trips) and keeps every server happy.
                    eof = await self._drain(reader, DRAIN_LIMIT)
                if eof:
                    writer.close()
                    done = True
                    await self._finish_transfer(path=path, action="read")
                    if not remaining:
                        await self._open_ahead()
                    if remaining:
                        got = length - remaining if length is not None else 0
                        raise TransientError(
                            f"read {path!r} on {self.where}: the file ended after {got} of "
                            f"{length} bytes from offset {offset} (it is shorter than "
                            "expected: changed or truncated on the server)", path=path)
                else:
                    done = True
                    try:
                        await self._abort_transfer(writer, reader)
                    except TransientError:
                        # Every byte of the range arrived: the read succeeded even though
                        # the session is now marked broken (its next use says so).
                        pass
                if parts:
                    yield b"".join(parts)
            except BaseException as exc:
                if not done:
                    await self._after_failed_transfer(writer, reader, exc)
                raise

    async def write(
        self,
        path: str,
        data: AsyncIterable[bytes],
        *,
        offset: int = 0,
        create: bool = True,
        acked: Callable[[int], None] | None = None,
    ) -> int:
        """STOR (or REST+STOR / APPE for ``create=False``, per the probe). FTP acknowledges
        nothing before the final 226 reply, so ``acked`` is never called: the return value
        (sent only after that reply) acknowledges every byte."""
        abs_path = self._store.abs_path(path)
        if offset < 0:
            raise ValueError(f"bad offset {offset}")
        if create and offset:
            raise UnsupportedError(
                f"write {path!r}: create=True writes from offset 0 only (got {offset})",
                path=path)
        async with self._op("write", path):
            await self._check_folders(path)
            if not create and path in self._store.links:
                raise link_refusal(path)
            verb, rest = ("STOR", 0) if create else await self._offset_plan(
                abs_path, path, offset)
            # A new file: whatever has its name goes first (DELE removes a link itself;
            # STOR would write through it). Sent in the same write as the STOR.
            before = (f"DELE {abs_path}",) if create else ()
            ahead = await self._take_ahead() if rest == 0 else None
            if ahead is not None:
                sent = await self._upload_early(ahead[1], verb, abs_path, path, data,
                                                before=before)
            else:
                _reader, writer = await self._start_transfer(
                    verb, rest=rest, abs_path=abs_path, path=path, action="write",
                    before=before)
                sent = await self._send_data(writer, data, path=path)
                writer.close()
            await self._finish_transfer(path=path, action="write")
            await self._open_ahead()
            return sent

    async def _upload_early(
        self,
        writer: DataStream,
        verb: str,
        abs_path: str,
        path: str,
        data: AsyncIterable[bytes],
        *,
        before: tuple[str, ...] = (),
    ) -> int:
        """STOR on the data connection opened ahead, the first piece sent at once without
        waiting for the server's 150: a small file goes out with its command, and its 150
        and 226 come back together (one round trip per file instead of two). A server
        that refuses the command never accepted that connection, so nothing is written;
        the refusal is raised as usual. Later pieces wait for the 150."""
        pieces = aiter(data)
        await self._client.send_many([*before, f"{verb} {abs_path}"])
        try:
            first = await anext(pieces, None)
            if first is not None:
                writer.write(first)
            following = await anext(pieces, None) if first is not None else None
        except BaseException:
            # The source failed with the command out and its replies unread: this
            # connection is out of step, close it (the pool opens another).
            writer.transport.abort()
            self._mark_broken("the source failed during an upload")
            raise
        if following is None:
            writer.close()  # the whole file is out: end of data now
        try:
            for _line in before:
                await self._client.reply()  # DELE: gone or never there, both fine
            reply = await self._client.reply()
            if not reply.is_preliminary():
                if reply.is_success():
                    raise ProtocolError(f"{verb} answered {reply.text!r} without 1xx")
                if reply.code in (425, 426):
                    raise TransientError(
                        f"write {path!r} on {self.where}: the server did not take the data "
                        f"connection ({reply.text!r})", path=path)
                raise await self._refusal(reply, abs_path=abs_path, path=path,
                                          action="write")
        except BaseException:
            writer.transport.abort()
            raise
        sent = len(first) if first is not None else 0
        if following is not None:
            sent += await self._send_data(writer, _chain(following, pieces), path=path)
            writer.close()
        return sent

    async def _offset_plan(self, abs_path: str, path: str, offset: int) -> tuple[str, int]:
        """The command that writes at ``offset`` without truncating, or UnsupportedError."""
        mode = (await self._store.probe_on(self)).capabilities.offset_writes
        if mode is OffsetWrites.ANY and offset > 0:
            return "STOR", offset
        if mode is OffsetWrites.NONE:
            raise UnsupportedError(
                f"write {path!r} at offset {offset} on {self.where}: this server cannot "
                "write into an existing file; rewrite it from the start", path=path)
        size = await self._size(abs_path, path=path)
        if offset == 0 and not size:
            return "STOR", 0
        if mode is OffsetWrites.APPEND and size == offset:
            return "APPE", 0
        raise UnsupportedError(
            f"write {path!r} at offset {offset} on {self.where}: the file is "
            f"{'missing' if size is None else f'{size} bytes'} and this server can only "
            "append at its end; resume from its current size or rewrite it", path=path)

    async def _send_data(
        self, writer: DataStream, data: AsyncIterable[bytes], *, path: str
    ) -> int:
        sent = 0
        pieces = aiter(data)
        while True:
            try:
                piece = await anext(pieces)
            except StopAsyncIteration:
                return sent
            except BaseException:
                # The source failed: cut the upload so it is never acknowledged whole.
                await self._cleanup_transfer(writer, None)
                raise
            try:
                writer.write(piece)
                async with asyncio.timeout(self._client.timeout):
                    await writer.drain()
            except _NETWORK_ERRORS as exc:
                # The server cut the data connection: its reply says why (452 disk full...).
                writer.transport.abort()
                try:
                    reply = await self._client.final_reply()
                except _NETWORK_ERRORS:
                    raise exc from None
                if reply.is_success():
                    raise ProtocolError(f"data connection lost but the server replied "
                                        f"{reply.text!r}") from exc
                raise reply_error(reply, where=self.where, action="write", path=path) from exc
            sent += len(piece)

    async def mkdir(self, path: str) -> None:
        abs_path = self._store.abs_path(path)
        async with self._op("mkdir", path):
            if not path:
                await self._mkdirs(abs_path, path)  # the root: the user's own path
                return
            for folder in await self._check_folders(path, itself=True):
                reply = await self.raw_command(f"MKD {self._store.abs_path(folder)}")
                if not reply.is_success():
                    if not 500 <= reply.code < 600:
                        raise reply_error(reply, where=self.where, action="mkdir",
                                          path=folder)
                    kind = await self._listed_kind(folder)  # made meanwhile?
                    if kind is EntryKind.LINK:
                        raise link_refusal(folder)
                    if kind is not EntryKind.DIR:
                        raise PermanentError(
                            f"mkdir {folder!r} on {self.where}: cannot create it (server "
                            f"replied {reply.text!r}); a file may be in the way, or the "
                            "parent is not writable", path=folder)
                self._store.real_dirs.add(folder)
                if reply.is_success():
                    self._store.complete_dirs.add(folder)  # new, so empty

    async def _mkdirs(self, abs_path: str, path: str) -> None:
        reply = await self.raw_command(f"MKD {abs_path}")
        if reply.is_success():
            return
        if not 500 <= reply.code < 600:
            raise reply_error(reply, where=self.where, action="mkdir", path=path)
        if await self.raw_is_dir(abs_path):
            return
        parent = posixpath.dirname(abs_path)
        if parent != abs_path:
            # Create the parent unless it exists now (another session may have made it
            # since our MKD failed), then try again.
            if not await self.raw_is_dir(parent):
                await self._mkdirs(parent, path)
            reply = await self.raw_command(f"MKD {abs_path}")
            # another session may have created it meanwhile
            if reply.is_success() or await self.raw_is_dir(abs_path):
                return
        if reply.code == 550 and not looks_denied(reply):
            raise PermanentError(
                f"cannot create the folder {abs_path!r} on {self.where} (server replied "
                f"{reply.text!r}); a file may be in the way, or the parent is not writable",
                path=path)
        raise reply_error(reply, where=self.where, action="mkdir", path=path)

    async def rename(self, src: str, dst: str) -> None:
        abs_src = self._store.abs_path(src)
        abs_dst = self._store.abs_path(dst)
        async with self._op("rename", src):
            reply = await self.raw_command(f"RNFR {abs_src}")
            if reply.code != 350:
                raise await self._refusal(reply, abs_path=abs_src, path=src, action="rename")
            reply = await self.raw_command(f"RNTO {abs_dst}")
            if not reply.is_success():
                raise reply_error(reply, where=self.where, action=f"rename {src!r} to",
                                  path=dst)

    async def place(self, temp: str, final: str, *, mtime: float | None,
                    mode: int | None = None, size: int | None = None) -> None:
        """Mode (``SITE CHMOD``, where offered), time, rename; then, since FTP
        acknowledges a file only with the final 226 of its STOR, the placed file is
        checked at its final name: ``size`` bytes there and the temporary name gone.
        A server that kept part of a STOR, answered RNTO without renaming, or stored
        the file under another name (pure-ftpd turns a tab into "_") fails the file
        (retryable) instead of letting it pass for copied."""
        abs_src = self._store.abs_path(temp)
        abs_dst = self._store.abs_path(final)
        method = self._mtime_method(temp) if mtime is not None else None
        async with self._op("rename", temp):
            chmod = await self._chmod_line(mode, abs_src)
            if not self._features.answered:
                # One command at a time (the server may not keep order).
                if chmod is not None:
                    self._chmod_done(await self.raw_command(chmod))
                if method is not None:
                    assert mtime is not None
                    mtime_reply = await self.raw_command(
                        f"{method} {format_timeval(mtime)} {abs_src}")
                    if not mtime_reply.is_success():
                        if mtime_reply.code in (500, 501, 502, 504):
                            raise self._mtime_refusal(mtime_reply, temp)
                        raise await self._refusal(mtime_reply, abs_path=abs_src, path=temp,
                                                  action="set mtime")
                rnfr = await self.raw_command(f"RNFR {abs_src}")
                if rnfr.code != 350:
                    raise await self._refusal(rnfr, abs_path=abs_src, path=temp,
                                              action="rename")
                rnto = await self.raw_command(f"RNTO {abs_dst}")
                if not rnto.is_success():
                    raise reply_error(rnto, where=self.where, action=f"rename {temp!r} to",
                                      path=final)
                if size is not None:
                    await self._check_placed(temp, final, size, checks=None)
                return
            # One write, one round trip: the server reads them in order (it answered
            # FEAT). RNTO after a refused RNFR is answered 503 and renames nothing.
            lines = [f"RNFR {abs_src}", f"RNTO {abs_dst}"]
            if method is not None:
                assert mtime is not None
                lines.insert(0, f"{method} {format_timeval(mtime)} {abs_src}")
            if chmod is not None:
                lines.insert(0, chmod)
            checks = self._placed_checks(abs_src, abs_dst) if size is not None else []
            lines += checks
            # With no data connection ready for this session's next transfer, ask for
            # its port in the same write: it comes back with the rest.
            ahead = self._can_open_ahead()
            if ahead:
                assert self._client.passive_mode is not None
                lines.append(self._client.passive_mode)
            await self._client.send_many(lines)
            chmod_reply = await self._client.reply() if chmod is not None else None
            mtime_reply = await self._client.reply() if method is not None else None
            rnfr = await self._client.reply()
            rnto = await self._client.reply()
            check_replies = [await self._client.reply() for _line in checks]
            if ahead:
                self._on_ahead_reply(await self._client.reply())
            if 421 in (rnfr.code, rnto.code):
                self._mark_broken("the server closed the session (421)")
            if chmod_reply is not None:
                self._chmod_done(chmod_reply)
            if rnfr.code != 350:
                raise await self._refusal(rnfr, abs_path=abs_src, path=temp, action="rename")
            if not rnto.is_success():
                raise reply_error(rnto, where=self.where, action=f"rename {temp!r} to",
                                  path=final)
            if size is not None:
                await self._check_placed(temp, final, size, checks=check_replies)
            if mtime_reply is not None and not mtime_reply.is_success():
                # In place with the bytes complete; only its time is off (so the next
                # run copies it again): say so as the set-mtime failure it is.
                raise self._mtime_refusal(mtime_reply, final)

    async def _chmod_line(self, mode: int | None, abs_path: str) -> str | None:
        """``SITE CHMOD`` for ``mode``, or None where the server does not offer it (asked
        once per store with ``SITE HELP``, which changes nothing on the server)."""
        if mode is None:
            return None
        store = self._store
        if store.site_chmod is None:
            reply = await self.raw_command("SITE HELP")
            words = " ".join(reply.lines).upper().split()
            store.site_chmod = reply.is_success() and "CHMOD" in words
        return f"SITE CHMOD {mode & 0o777:o} {abs_path}" if store.site_chmod else None

    def _chmod_done(self, reply: Reply) -> None:
        """A refused SITE CHMOD leaves the server's default mode (reported once, in the
        capability notes): the copy goes on."""
        if not reply.is_success() and reply.code != 421:
            self._store.site_chmod = False

    def _placed_checks(self, abs_src: str, abs_dst: str) -> list[str]:
        """Commands that tell what is at the final and the temporary names (pipelined
        after RNTO): SIZE where offered, else MLST; none on LIST-only servers without
        SIZE (a listing of the folder is read instead)."""
        # MLST first: its reply names the file found, so a server that stored it
        # under another name (pure-ftpd turns a tab into "_", in SIZE too) is caught.
        if self._features.mlst:
            return [f"MLST {abs_dst}", f"MLST {abs_src}"]
        if self._features.size:
            return [f"SIZE {abs_dst}", f"SIZE {abs_src}"]
        return []

    async def _check_placed(self, temp: str, final: str, size: int,
                            checks: list[Reply] | None) -> None:
        if checks is None:  # not pipelined: ask now
            lines = self._placed_checks(self._store.abs_path(temp),
                                        self._store.abs_path(final))
            checks = [await self.raw_command(line) for line in lines]
        if checks:
            at_final = self._size_in(checks[0], name=final.rsplit("/", 1)[-1])
            at_temp = self._size_in(checks[1])
        else:
            entries = {e.path: e async for e in self._listing(
                self._store.abs_path(parent_of(final)), parent_of(final),
                exact_times=False)}
            at_final = entries[final].size if final in entries else None
            at_temp = entries[temp].size if temp in entries else None
        if at_final is None:
            raise TransientError(
                f"place {final!r} on {self.where}: the server accepted the rename but no "
                "file is at that name (it may have stored it under another name)",
                path=final)
        if at_temp is not None:
            raise TransientError(
                f"place {final!r} on {self.where}: the server answered the rename but the "
                "temporary file is still there", path=final)
        if at_final != size:
            raise TransientError(
                f"place {final!r} on {self.where}: the server holds {at_final} bytes of "
                f"{size} at the final name (it kept only part of the upload)", path=final)

    def _size_in(self, reply: Reply, *, name: str | None = None) -> int | None:
        """The size a SIZE or MLST reply gives (None: no such file, or, with ``name``,
        an MLST reply that names another file)."""
        if reply.code == 213:
            try:
                return int(reply.last.strip())
            except ValueError:
                return None
        if reply.code == 250:
            for line in reply.lines:
                text = line[1:] if line.startswith(" ") else line
                facts_text, _sep, shown = text.partition(" ")
                facts = parse_facts(facts_text)
                if "type" in facts:
                    if name is not None and shown and shown.rsplit("/", 1)[-1] != name:
                        return None
                    listed = facts_to_listed(facts, "")
                    return listed.size if listed is not None else None
        if reply.code == 421:
            self._mark_broken("the server closed the session (421)")
            raise reply_error(reply, where=self.where, action="check placed file")
        return None

    async def remove(self, path: str) -> None:
        abs_path = self._store.abs_path(path)
        async with self._op("remove", path):
            reply = await self.raw_command(f"DELE {abs_path}")
            if not reply.is_success():
                raise await self._refusal(reply, abs_path=abs_path, path=path, action="remove")

    async def rmdir(self, path: str) -> None:
        abs_path = self._store.abs_path(path)
        async with self._op("rmdir", path):
            reply = await self.raw_command(f"RMD {abs_path}")
            if reply.is_success():
                return
            if reply.code == 550 and not await self.raw_is_dir(abs_path):
                raise NotFoundError(f"rmdir {path!r} on {self.where}: no such folder "
                                    f"(server replied {reply.text!r})", path=path)
            if reply.code == 550:
                raise PermanentError(f"rmdir {path!r} on {self.where}: refused, the folder "
                                     f"is not empty or not writable (server replied "
                                     f"{reply.text!r})", path=path)
            raise reply_error(reply, where=self.where, action="rmdir", path=path)

    def _mtime_method(self, path: str) -> str:
        """The command that sets an mtime here ("MFMT", or vsftpd's two-argument MDTM)."""
        probe = self._store.probe_result
        method = probe.mtime_method if probe is not None else (
            "MFMT" if self._features.mfmt else "MDTM")
        if method is None:
            raise UnsupportedError(f"set mtime of {path!r} on {self.where}: the server "
                                   "cannot set modification times", path=path)
        return method

    def _mtime_refusal(self, reply: Reply, path: str) -> BackendError:
        if reply.code in (500, 501, 502, 504):
            return UnsupportedError(f"set mtime of {path!r} on {self.where}: refused "
                                    f"({reply.text!r})", path=path)
        return reply_error(reply, where=self.where, action="set mtime", path=path)

    async def set_mtime(self, path: str, mtime: float) -> None:
        abs_path = self._store.abs_path(path)
        async with self._op("set mtime", path):
            method = self._mtime_method(path)
            reply = await self.raw_command(f"{method} {format_timeval(mtime)} {abs_path}")
            if reply.is_success():
                return
            if reply.code in (500, 501, 502, 504):
                raise self._mtime_refusal(reply, path)
            raise await self._refusal(reply, abs_path=abs_path, path=path, action="set mtime")

    async def close(self) -> None:
        if self._closed:
            return
        self._closed = True
        self._drop_ahead()
        if self._broken is None and self._busy is None:
            try:
                # Said, not awaited: the reply (221) would cost a round trip per
                # session at the end of every run and changes nothing.
                async with asyncio.timeout(min(5.0, self._client.timeout)):
                    await self._client.send("QUIT")
            except (*_NETWORK_ERRORS, asyncio.CancelledError):
                pass
        self._client.close()


def _folders_of(path: str) -> list[str]:
    """The folders leading to ``path`` below the root, outermost first ("a", "a/b")."""
    parts = path.split("/")[:-1]
    return ["/".join(parts[: i + 1]) for i in range(len(parts))]


async def _chain(head: bytes, rest: AsyncIterator[bytes]) -> AsyncIterator[bytes]:
    yield head
    async for piece in rest:
        yield piece


def _abort_channel(
    task: asyncio.Future[tuple[DataStream, DataStream]],
) -> None:
    """Close a data connection opened ahead that will not be used (and retrieve the
    connect error, if any, so it is not reported as never retrieved)."""
    if task.cancelled():
        return
    if task.exception() is None:
        task.result()[1].transport.abort()


def _mtime_of(facts: dict[str, str]) -> float | None:
    try:
        return parse_timeval(facts["modify"]) if "modify" in facts else None
    except ValueError:
        return None


def _parse_line(
    parse: Callable[[bytes], Listed | None], line: bytes, *, where: str, path: str
) -> Listed | None:
    try:
        return parse(line)
    except ListingLineError as exc:
        raise PermanentError(f"list {path!r} on {where}: {exc}; this server's listing "
                             "format is not supported", path=path) from exc


def _entry_of(parent: str, listed: Listed, *, where: str) -> Entry:
    """The listed entry as it came. A hostile name (with "/", NUL, "..") is not refused
    here, which would lose its honest siblings: ``walk`` refuses and reports that one
    entry, and every operation re-checks paths with ``check_relpath`` anyway."""
    name = listed.name
    return Entry(path=join_relpath(parent, name), kind=listed.kind, size=listed.size,
                 mtime=listed.mtime, mode=listed.mode)


__all__ = ["FtpSession", "FtpStore", "make_ssl_context"]
