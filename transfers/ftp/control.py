"""One FTP control connection as a session: the operation guard, the session's health,
the raw commands every layer above builds on, and the translation of refusals.

The layers of an FTP session, each a file, each class built on the one below:
``control`` (this one: state, health, raw commands), ``transfer`` (data connections:
passive mode, REST, ABOR, connections opened ahead), ``folders`` (stat, listings, the
folder checks before a write), ``file_io`` (read and write a file's bytes) and
``session`` (``FtpSession``: mkdir, rename, place, remove, set mtime).

**Health** (the Session protocol's ``usable``): a network failure, a 421 or replies out
of step mark the session unusable and close its connection; the operation that saw it
gets the error. The session never logs in again by itself: the pool (transfers/pool.py)
drops it and opens another. ``still_alive`` (NOOP) lets the pool check a session that
sat idle before lending it again, as rclone does.
"""

from __future__ import annotations

import asyncio
import contextlib
from types import TracebackType
from typing import TYPE_CHECKING

from ..backend import BackendError, NotFoundError, TransientError
from .client import FtpClient, ProtocolError, Reply
from .data import DataStream
from .errors import (
    NETWORK_ERRORS,
    error_for_550,
    looks_denied,
    looks_missing,
    network_error,
    reply_error,
)
from .probe import Features, ProbeResult

if TYPE_CHECKING:
    from .store import FtpStore

#: Longest wait for the answer to a NOOP health check (bounded by the session timeout).
NOOP_TIMEOUT = 10.0


class _Op:
    """Guards one session operation: one at a time, network failures break the session."""

    __slots__ = ("action", "path", "session")

    def __init__(self, session: ControlSession, action: str, path: str | None) -> None:
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
        if session._passive_owed:
            # The operation ended (an error) with the reply to a passive command sent
            # early still unread: the next command would read it as its own.
            session._passive_owed = False
            session._mark_broken(f"a passive reply left unread by {self.action}")
        if exc is None or isinstance(exc, (BackendError, GeneratorExit)):
            return False
        if isinstance(exc, NETWORK_ERRORS):
            session._mark_broken(f"{type(exc).__name__} during {self.action}")
            raise network_error(exc, where=session.where, action=self.action,
                                path=self.path) from exc
        if isinstance(exc, BaseException) and not isinstance(exc, Exception):
            session._mark_broken(f"{type(exc).__name__} during {self.action}")
        return False


class ControlSession:
    """One logged-in FTP control connection: state, health and raw commands."""

    def __init__(self, store: FtpStore, client: FtpClient) -> None:
        self._store = store
        self._client = client
        self.where = store.where
        self.root = store.root
        self._features = store.features or Features()
        self._busy: str | None = None
        self._broken: str | None = None
        self._closed = False
        self._home: str | None = store.home
        self._list_plain = False  # the server refused "LIST -a": use "LIST"
        #: Dependent commands may be pipelined and data connections opened ahead.
        self._pipelining = self._features.answered
        #: The data connection opened ahead for the next transfer (transfer.py).
        self._ahead: asyncio.Task[tuple[DataStream, DataStream]] | None = None
        self._ahead_at = 0.0
        #: A passive command's reply is owed and will open ``_ahead`` (transfer.py).
        self._ahead_pending: asyncio.Future[None] | None = None
        #: A passive command went out before a transfer's final reply and its own reply
        #: is not read yet (transfer.py); an operation must not end so.
        self._passive_owed = False
        #: The replies to a stat sent along with a download's end (file_io.py): the
        #: path and its replies, for the next operation if it is that path's stat.
        self._after_read: tuple[str, list[Reply]] | None = None
        #: The last transfer's own final reply (its 2xx): a listing's may say the
        #: server cut it short (``folders.py``).
        self._transfer_reply: Reply | None = None

    def __repr__(self) -> str:
        return f"FtpSession({self._store.display!r})"

    # -- health --------------------------------------------------------------------------

    @property
    def usable(self) -> bool:
        """False once the control connection failed or fell out of step (the error was
        raised to the operation that saw it), or the session was closed: the pool drops
        it and opens another. Also False, without a round trip, once the server hung up
        the control connection (its session process killed, a restart, an idle timeout's
        "421" then the end): handed out, such a session failed its file's next attempt
        at once, and a few of them used up a file's retries while the server took new
        logins (before session 32)."""
        return self._broken is None and not self._closed and not self._hung_up()

    def _hung_up(self) -> bool:
        stream = getattr(self._client, "stream", None)
        if stream is None:
            return False
        reader = stream.reader
        if reader.exception() is not None or reader.at_eof():
            return True
        # Bytes nobody asked for, between operations (``_buffer`` is the StreamReader's
        # own, as client.py reads it): vsftpd's "421 Timeout." before it hangs up.
        return (self._busy is None and not self._client.owes
                and bool(getattr(reader, "_buffer", b"")))

    @property
    def owes_replies(self) -> bool:
        """Replies to commands already sent are still to come (the next passive port
        asked at a transfer's end, a placing answered in the background): the next
        operation's replies come after them (``OwesReplies``)."""
        return self._client.owes

    async def still_alive(self) -> bool:
        """Whether the server still answers on this connection (NOOP), for a session that
        sat idle: servers and middleboxes drop idle connections. Any reply in step
        proves the connection (a server may not know NOOP); a lost connection, a 421 or
        no answer in time marks the session unusable."""
        try:
            async with self._op("check the session (NOOP)", None):
                async with asyncio.timeout(min(NOOP_TIMEOUT, self._client.timeout)):
                    await self.raw_command("NOOP")
        except BackendError:
            return False
        return self.usable

    async def _enter(self, action: str) -> None:
        if self._closed:
            raise TransientError(f"{action} on {self.where}: session already closed")
        if self._busy is not None:
            raise RuntimeError(f"FTP session busy with {self._busy}: one operation at a time")
        if self._broken is not None:
            # Reported to the operation that saw it; the pool opens another session.
            raise TransientError(f"{action} on {self.where}: the session was lost earlier "
                                 f"({self._broken}); a new session is needed")
        self._busy = action
        if action != "stat":
            self._after_read = None

    def _mark_broken(self, reason: str) -> None:
        if self._broken is None:
            self._broken = reason
        self._drop_ahead()
        self._client.close()

    def _drop_ahead(self) -> None:
        task, self._ahead = self._ahead, None
        if task is not None:
            task.add_done_callback(_abort_channel)
            task.cancel()

    def _op(self, action: str, path: str | None) -> _Op:
        return _Op(self, action, path)

    # -- raw helpers (no guard; used by the operations and by probe.py) -------------------

    async def raw_command(self, line: str) -> Reply:
        reply = await self._client.cmd(line)
        if reply.code == 421:
            self._mark_broken("the server closed the session (421)")
        return reply

    async def raw_commands(self, lines: list[str]) -> list[Reply]:
        """Several commands sent at once, their replies in order (only where the server
        reads commands one after the other: ``Features.answered``)."""
        await self._client.send_many(lines)
        replies = [await self._client.reply() for _ in lines]
        if any(reply.code == 421 for reply in replies):
            self._mark_broken("the server closed the session (421)")
        return replies

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
        """CWD probe (the working directory is restored). Where commands may be
        pipelined, the way back is sent with it: one round trip (a refused CWD leaves
        the session where it was, so the second CWD is then harmless)."""
        if self._home is None:
            reply = await self.raw_command("PWD")
            self._home = "/"
            if reply.code == 257:
                try:
                    self._home = str(self._client.parse_directory_response(reply.last))
                except (IndexError, ValueError):
                    self._home = "/"
        back: Reply | None = None
        if self._pipelining:
            reply, back = await self.raw_commands(self.folder_check_lines(abs_path))
        else:
            reply = await self.raw_command(f"CWD {abs_path}")
        return await self.folder_check_result(abs_path, reply, back)

    async def raw_resolved_folder(self, abs_path: str) -> str | None:
        """The server's own name of the folder ``abs_path`` (``CWD`` there, ``PWD``, and
        back): vsftpd and pure-ftpd name it with links resolved. None when it is not a
        folder the session can enter."""
        if '"' in abs_path:
            # PWD quotes the folder; pure-ftpd does not double a '"' inside it (RFC 959
            # says to), so its answer would be cut there: not asked.
            return None
        if self._home is None:
            await self.raw_is_dir("/")  # learns the login folder first
        assert self._home is not None
        there = await self.raw_command(f"CWD {abs_path}")
        if not there.is_success():
            return None
        pwd = await self.raw_command("PWD")
        back = await self.raw_command(f"CWD {self._home}")
        if not back.is_success():
            self._mark_broken("cannot restore the working directory")
            raise TransientError(f"cannot return to {self._home!r} on {self.where} after "
                                 f"resolving a folder ({back.text!r})")
        if pwd.code != 257:
            return None
        try:
            return str(self._client.parse_directory_response(pwd.last))
        except (IndexError, ValueError):
            return None

    def folder_check_lines(self, abs_path: str) -> list[str]:
        """The CWD there and back of a folder check, to send in one write (pipelining
        servers; the login folder known: ``raw_is_dir`` asks it otherwise)."""
        assert self._home is not None
        return [f"CWD {abs_path}", f"CWD {self._home}"]

    async def folder_check_result(self, abs_path: str, reply: Reply, back: Reply | None
                                  ) -> bool:
        """What the CWD there (``reply``) and back (``back``; None: not sent yet, and
        only sent if the first one worked) say: a folder, or not; a 4xx raises."""
        if not reply.is_success():
            if 400 <= reply.code < 500:
                raise reply_error(reply, where=self.where, action="check folder", path=abs_path)
            return False
        if back is None:
            assert self._home is not None
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
        except NETWORK_ERRORS as exc:
            self._mark_broken(f"{type(exc).__name__} during the capability probe")
            raise network_error(exc, where=self.where, action="probe capabilities") from exc
        finally:
            self._busy = None

    def _owes_only_a_port(self) -> bool:
        """The one reply owed is the next passive port, asked at a transfer's end: it
        answers nothing anyone waits for, and vsftpd sends it only once it has closed
        the uploaded file (~0.3 s after 512 MiB on ext4): a close does not wait for it
        (the run's end would, benchmarks/README.md "Session 20")."""
        return self._ahead_pending is not None and self._client.owed_count == 1

    async def close(self) -> None:
        if self._closed:
            return
        self._closed = True
        self._drop_ahead()
        if self._broken is None and self._busy is None:
            # Closing anyway: whatever breaks here is no one's concern any more.
            with contextlib.suppress(Exception, asyncio.CancelledError):
                async with asyncio.timeout(min(5.0, self._client.timeout)):
                    if self._client.owes and not self._owes_only_a_port():
                        # Replies owed (a placing's): read first, so what they answer
                        # is done before this run ends (they arrived long ago, as a
                        # rule: no round trip).
                        await self._client.settle()
                    # Said, not awaited: the reply (221) would cost a round trip per
                    # session at the end of every run and changes nothing.
                    await self._client.send("QUIT")
        self._client.close()


def _abort_channel(
    task: asyncio.Future[tuple[DataStream, DataStream]],
) -> None:
    """Close a data connection opened ahead that will not be used (and retrieve the
    connect error, if any, so it is not reported as never retrieved)."""
    if task.cancelled():
        return
    if task.exception() is None:
        task.result()[1].transport.abort()
