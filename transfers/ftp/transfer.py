"""An FTP session's data connections: passive mode, REST, the transfer command, its end,
ABOR, and data connections opened ahead.

**Opened ahead**: once a transfer ended cleanly, the session sends the next ``EPSV`` at
once without waiting (its reply is read by whatever comes next on that connection) and
connects the data socket in the background, so the next transfer sends ``RETR``/``STOR``
straight away: two round trips less per file on a slow link. Only on servers that
answered ``FEAT`` (they read commands in order), never for FTPS (each data connection's
TLS is tied to its transfer). A connection older than ``AHEAD_MAX_AGE``, or one the
server did not take (425), is dropped and the transfer opens a fresh one.

**Asked during the transfer**: a whole-file transfer sends that ``EPSV`` as soon as its
own side is done (a download read to EOF, an upload's data connection closed: uploads
only on vsftpd, ``_asks_early_on_upload``), before the transfer's final reply: a server
that reads one command after the other (vsftpd) answers it right after its 226, so the
port comes a round trip earlier (~3 -> ~2 round trips of session time per small file).
Servers that read the control connection during a transfer answer a command that arrives
too early at once (pure-ftpd "500 Unknown command", proftpd "450 EPSV: data transfer in
progress"), ahead of the 226; both replies are always read and told apart by their codes
(a transfer completes only on its own success reply, never on the passive port's
229/227), and such a store stops asking early for good (``FtpStore.early_passive_off``).
A server that ignored the command entirely would cost one session timeout, then the
same.

**Ranged reads** end with ``ABOR`` (file_io.py): at the end of the range the data
connection is cut, ``ABOR`` is sent and the replies are brought back in step with a
``PWD`` marker. If a server leaves the control connection out of step, the session is
marked unusable (the pool drops it) and TransientError is raised.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import Sequence
from typing import NoReturn

from ..backend import TransientError
from .client import DATA_BUFFER, ProtocolError, Reply
from .control import ControlSession
from .data import DataStream
from .errors import NETWORK_ERRORS, reply_error

#: After a ranged read, read on to EOF rather than ABOR when at most this much is left.
DRAIN_LIMIT = 1024 * 1024
#: How long to wait for a reply to ABOR beyond three round trips before cutting the data.
ABOR_GRACE = 0.05
#: A data connection opened ahead is used only this young (servers and middleboxes may
#: drop idle connections; a fresh one costs two round trips, a dead one a timeout).
AHEAD_MAX_AGE = 15.0
#: Replies a server gives a command it will not run during a transfer (pure-ftpd 500,
#: proftpd 450) or does not know (502), or out of sequence (503).
_EARLY_REFUSALS = frozenset({450, 500, 501, 502, 503})


class TransferSession(ControlSession):
    """The data-connection layer of an FTP session (see the module docstring)."""

    def _can_open_ahead(self) -> bool:
        # Replies owed to a placing in the background (session.py) do not stop it: they
        # come first, in order, and ``reply()`` reads them first.
        return not (not self._pipelining or self._store.tls or self._ahead is not None
                    or self._ahead_pending is not None or self._client.passive_mode is None
                    or self._broken is not None or self._closed)

    async def _open_ahead(self) -> None:
        """After a clean transfer: ask for the next passive port without waiting (the
        reply is read in the background, which then connects)."""
        if not self._can_open_ahead():
            return
        assert self._client.passive_mode is not None
        await self._client.send(self._client.passive_mode)
        self._ahead_pending = asyncio.get_running_loop().create_future()
        self._client.owe(self._on_owed_ahead_reply, self._on_owed_ahead_error)

    def _on_owed_ahead_reply(self, reply: Reply) -> None:
        self._settle_ahead_pending()
        self._on_ahead_reply(reply)

    def _on_owed_ahead_error(self, _exc: BaseException) -> None:
        self._settle_ahead_pending()

    def _owe_port_reply(self, mode: str, port_code: int) -> None:
        """The reply to ``mode`` sent at a transfer's end, whose own final reply was
        read: read in the background (the next transfer waits for it in
        ``_take_ahead``, any next reply after it); it opens the next data connection."""
        self._ahead_pending = asyncio.get_running_loop().create_future()

        def on_reply(reply: Reply) -> None:
            self._settle_ahead_pending()
            if reply.code != port_code:
                self._store.stop_early_passive(f"{mode} after a transfer: {reply.text!r}")
            self._on_ahead_reply(reply)

        def on_error(exc: BaseException) -> None:
            self._settle_ahead_pending()
            # A session closed without waiting for this reply (control.py) says
            # nothing about the server.
            if isinstance(exc, NETWORK_ERRORS) and not self._closed:
                self._store.stop_early_passive(f"no reply to {mode} sent at a transfer's end")
                self._mark_broken(f"no reply to {mode}")

        self._client.owe(on_reply, on_error)

    def _settle_ahead_pending(self) -> None:
        pending, self._ahead_pending = self._ahead_pending, None
        if pending is not None and not pending.done():
            pending.set_result(None)

    def _on_ahead_reply(self, reply: Reply) -> None:
        port = self._client.passive_port(reply)
        if port is None or self._closed or self._broken is not None:
            return  # refused (or closing): the next transfer asks again
        self._connect_ahead(port)

    def _connect_ahead(self, port: int, *, asked_at: float | None = None) -> None:
        """Open the data connection to ``port`` in the background, for the next transfer
        (its age counted from ``asked_at``, the passive command's time, if given)."""
        self._drop_ahead()
        self._ahead = asyncio.ensure_future(self._client.open_data(port))
        self._ahead_at = asyncio.get_running_loop().time() if asked_at is None else asked_at

    def open_login_port(self) -> None:
        """A new session: connect ahead to the port its login asked (``FtpStore``), if
        it is young enough to be used (``AHEAD_MAX_AGE``)."""
        asked, self._client.port_at_login = self._client.port_at_login, None
        if asked is None or self._store.tls:
            return
        port, at = asked
        if asyncio.get_running_loop().time() - at < AHEAD_MAX_AGE:
            self._connect_ahead(port, asked_at=at)

    async def _take_ahead(self) -> tuple[DataStream, DataStream] | None:
        """The data connection opened ahead, if there is a usable one (its owed port
        reply is read first; replies owed to a placing need not be)."""
        if self._ahead_pending is not None:
            # Only that reply: the ones owed to a placing sent before it may still be
            # on their way (they are read first all the same).
            # A failed read leaves no connection ahead; the next reply() raises it.
            await asyncio.shield(self._ahead_pending)
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

    async def _fresh_passive(self) -> None:
        """Before a PASV/EPSV of our own: no data connection opened ahead may remain (the
        new passive port replaces the one it was opened to)."""
        if self._client.owes:
            await self._client.settle()
        self._drop_ahead()
        self._client.port_at_login = None  # replaced by the new one

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
        port_asked: tuple[Reply | None, int | None] | None = None
        if before and not (pipelined and self._pipelining):
            if self._pipelining and rest == 0:
                # This session's first transfer (its passive mode not known yet): the
                # commands before ride with EPSV in one write, one round trip less (a
                # first file on a session that only made a folder, sessions logged in
                # for the work); the transfer command waits for the port, as always
                # then (vsftpd sends the 1xx once the data connection is up anyway).
                port_asked = await self._client.passive(before=before)
            else:
                for line in before:  # one at a time: this server may not keep order
                    await self.raw_command(line)
            before = ()
        ahead = await self._take_ahead() if not before and port_asked is None else None
        if ahead is not None:
            started = await self._start_on_ahead(ahead, command, rest=rest, abs_path=abs_path,
                                                 path=path, action=action)
            if started is not None:
                return started
        self._drop_ahead()
        if port_asked is not None:
            refusal, port = port_asked
        elif pipelined:
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

    async def _finish_transfer(self, *, path: str, action: str,
                               next_passive: bool = False, ride: tuple[str, ...] = ()) -> None:
        """Wait for the transfer's final reply (226/250). ``next_passive``: this side of
        the transfer is done and clean (all bytes sent, or EOF read): ask for the next
        transfer's port now, ahead of that reply (module docstring). ``ride``: commands
        sent along with it (only where ``_asks_early`` and the store runs commands
        after transfers); their replies are left in ``_after_read``."""
        if self._passive_owed or (next_passive and self._asks_early()):
            if ride:
                await self._finish_with_ride(path=path, action=action, ride=ride)
                return
            await self._finish_asking_passive(path=path, action=action)
            return
        self._transfer_outcome(await self._client.final_reply(), path=path, action=action)

    def _asks_early(self) -> bool:
        """Whether this session asks for the next passive port before a transfer's
        final reply (plain FTP, a server that read commands in order so far)."""
        return self._store.early_passive_off is None and self._can_open_ahead()

    def _asks_early_on_upload(self) -> bool:
        """Whether an upload asks for the next port before its own final reply: only on
        a server known to read commands after the transfer (vsftpd). Elsewhere the
        command reaches a server that reads it *during* the upload, and that may end
        the upload: pyftpdlib closes a running data connection on a new PASV/EPSV and
        never answers the STOR (pure-ftpd and proftpd refuse the command, so asking
        gains nothing there either). A download asks early anywhere: its server sent
        the final reply when it closed the data connection, before the command came."""
        return self._asks_early() and self._store.runs_commands_after_transfers

    async def _send_with_passive(self, lines: list[str]) -> None:
        """``lines`` and the passive command in one write (the caller asked
        ``_asks_early``): the passive reply is owed until ``_finish_transfer``."""
        assert self._client.passive_mode is not None
        await self._client.send_many([*lines, self._client.passive_mode])
        self._passive_owed = True

    async def _finish_with_ride(self, *, path: str, action: str,
                                ride: tuple[str, ...]) -> None:
        """The passive command and ``ride`` sent before the transfer's final reply, on
        a server known to run them after it (``runs_commands_after_transfers``): the
        replies come as the transfer's, the port's, then ``ride``'s. Anything else
        first (the commands were read during the transfer after all) leaves the order
        unknown: the session is closed, the store stops sending early, and the read is
        retried."""
        client = self._client
        mode = client.passive_mode
        assert mode is not None and not self._passive_owed
        await client.send_many([mode, *ride])
        self._passive_owed = True
        first = await client.final_reply()
        self._transfer_reply = first
        if first.code not in (226, 250):
            self._passive_owed = False
            self._out_of_order(first, f"{mode} with a re-stat", path=path, action=action)
        self._on_ahead_reply(await client.reply())
        self._passive_owed = False
        self._after_read = (path, [await client.reply() for _line in ride])

    async def _finish_sending_along(self, *, path: str, action: str,
                                    along: Sequence[str]) -> bool:
        """This side of the transfer is done and clean: send the next passive command
        and ``along`` before the transfer's final reply, on a server known to run them
        after it (``runs_commands_after_transfers``, and this session asks early), read
        that final reply and owe the port's (``_owe_port_reply``). ``along``'s replies
        are the next ones on the connection, for the caller to read in order. False:
        nothing was sent (the caller finishes as usual and sends them itself). A final
        reply that is not the transfer's own success leaves the order unknown: the
        session is closed and the error raised (as ``_finish_with_ride``)."""
        client = self._client
        mode = client.passive_mode
        if (not along or mode is None or self._passive_owed or not self._asks_early()
                or not self._store.runs_commands_after_transfers):
            return False
        await client.send_many([mode, *along])
        self._passive_owed = True
        first = await client.final_reply()
        self._passive_owed = False
        self._transfer_reply = first
        if first.code not in (226, 250):
            self._out_of_order(first, f"{mode} with commands", path=path, action=action)
        self._owe_port_reply(mode, 229 if mode == "EPSV" else 227)
        return True

    def _out_of_order(self, first: Reply, sent: str, *, path: str, action: str) -> NoReturn:
        """Commands sent before a transfer's final reply, and ``first`` came in its
        place: not the transfer's own end (a failure, or a reply to one of the commands
        sent along, answered early), so the order of what follows is unknown. The
        store stops sending early, the session is closed, and the error is raised (a
        transient one: the caller retries on another session)."""
        self._store.stop_early_passive(f"{sent}, sent at a transfer's end, answered out "
                                       f"of order ({first.text!r})")
        self._mark_broken("replies out of order after commands sent at a transfer's end")
        if first.is_success():
            raise TransientError(f"{action} {path!r} on {self.where}: the server "
                                 "answered commands out of order; retrying", path=path)
        self._transfer_outcome(first, path=path, action=action)
        raise TransientError(f"{action} {path!r} on {self.where}: replies out of "
                             f"order ({first.text!r})", path=path)

    def _transfer_outcome(self, reply: Reply, *, path: str, action: str) -> None:
        self._transfer_reply = reply
        if reply.is_success():  # 226 / 250 (aioftp's server says 200)
            return
        if reply.code == 421:
            self._mark_broken("the server closed the session (421)")
        raise reply_error(reply, where=self.where, action=action, path=path)

    async def _finish_asking_passive(self, *, path: str, action: str) -> None:
        """The passive command sent before the transfer's final reply is read; then both
        replies, whichever order the server chose (module docstring)."""
        client = self._client
        mode = client.passive_mode
        assert mode is not None
        port_code = 229 if mode == "EPSV" else 227
        if not self._passive_owed:
            await client.send(mode)
            self._passive_owed = True
        first = await client.final_reply()
        if first.code == port_code:
            # Answered during the transfer (a server that runs commands concurrently):
            # that port is not used, and the store stops asking early.
            self._passive_owed = False
            self._store.stop_early_passive(f"{mode} answered before the transfer ended")
            if action == "write":
                # An upload may not end on a reply of its own now: pyftpdlib closes a
                # running data connection on a new PASV/EPSV and never answers the STOR
                # (its log: "completed=0"). Waiting for that reply cost a whole
                # ``--timeout`` (30 s) per upload in flight; the session is closed
                # instead and the attempt retried, which resumes the partial file
                # (checked against the source). (A download's server had sent its
                # reply when it closed the data connection: EOF came first.)
                self._mark_broken(f"{mode} answered during an upload")
                raise TransientError(
                    f"{action} {path!r} on {self.where}: the server answered {mode} "
                    "during the upload and may have dropped it; retrying without asking "
                    "early", path=path)
            self._transfer_outcome(await client.final_reply(), path=path, action=action)
            return
        if first.is_success():
            self._transfer_reply = first
            # The transfer completed (its 2xx came): the port's reply is read in the
            # background, not waited for. It often comes half a round trip after the
            # 226 (a listing's EPSV goes out when its data ends, and reaches vsftpd
            # after it sent the 226): a listing's entries, and the MDTMs of a LIST-only
            # server, go on at once (session 13: ~30 ms per listing at 60 ms).
            self._passive_owed = False
            self._owe_port_reply(mode, port_code)
            return
        # A refusal first: the transfer failed (and the port reply follows), or the
        # server refused the passive command because the transfer was still running
        # (and the transfer's own reply follows).
        second = await client.final_reply()
        self._passive_owed = False
        if second.code == port_code:
            self._on_ahead_reply(second)
            self._transfer_outcome(first, path=path, action=action)
            return
        self._store.stop_early_passive(f"{mode} during a transfer: {first.text!r}")
        # Two refusals: the one that is not a "command not now / not known" is the
        # transfer's (either way the transfer failed, and both replies are read).
        transfer = second if second.is_success() or first.code in _EARLY_REFUSALS else first
        self._transfer_outcome(transfer, path=path, action=action)

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
        except NETWORK_ERRORS as exc:
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
            except NETWORK_ERRORS:
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

    async def _raw_start(
        self, abs_path: str, *, verb: str, rest: int, before: Sequence[str] = (),
        before_replies: list[Reply] | None = None,
    ) -> tuple[DataStream, DataStream, Reply | None] | Reply:
        """``before`` (their replies appended to ``before_replies``), PASV/EPSV, connect,
        [REST,] ``verb``: the data streams once the server accepted ``verb`` (TLS set
        up), with the REST refusal if REST was refused, else the refusal (the data
        connection then closed). For the write probe only: its scratch files.

        Where the server reads commands in order and the passive mode is known, every
        command goes in one write (one round trip for them all). A REST refused there
        is followed by ``verb`` from offset 0: on a scratch file that only changes its
        content, so the transfer runs (the caller sends or drains its data) and the
        refusal comes back with the streams. Elsewhere one command at a time, and
        ``verb`` is not sent after a refused REST."""
        await self._fresh_passive()
        client = self._client
        replies = before_replies if before_replies is not None else []
        if not (self._pipelining and client.passive_mode is not None):
            for line in before:
                replies.append(await self.raw_command(line))
            refusal, port = await client.passive()
            if refusal is not None or port is None:
                assert refusal is not None
                return refusal
            reader, writer = await client.open_data(port)
            try:
                if rest:
                    reply = await self.raw_command(f"REST {rest}")
                    if reply.code != 350:
                        writer.close()
                        return reply
                reply = await self.raw_command(f"{verb} {abs_path}")
                if not reply.is_preliminary():
                    writer.close()
                    return reply
                await client.start_data_tls(writer)
            except BaseException:
                writer.close()
                raise
            return reader, writer, None
        mode = client.passive_mode
        await client.send_many([*before, mode, *([f"REST {rest}"] if rest else []),
                                f"{verb} {abs_path}"])
        for _line in before:
            replies.append(await client.reply())
        passive = await client.reply()
        port = client.passive_port(passive)
        rest_reply = await client.reply() if rest else None
        if port is None:
            await client.final_reply()  # the transfer command's refusal (no port)
            if rest_reply is not None and rest_reply.code == 350:
                await self.raw_command("REST 0")  # no offset left pending
            return passive
        refused_rest = rest_reply if rest_reply is not None and rest_reply.code != 350 \
            else None
        try:
            reader, writer = await client.open_data(port)
        except OSError:
            reply = await client.reply()  # the transfer command's refusal, if it was
            if reply.is_preliminary() or reply.is_success():
                raise
            return reply
        try:
            reply = await client.reply()
            if not reply.is_preliminary():
                writer.close()
                return reply
            await client.start_data_tls(writer)
        except BaseException:
            writer.close()
            raise
        return reader, writer, refused_rest

    async def raw_store(self, abs_path: str, payload: bytes, *, verb: str, rest: int,
                        before: Sequence[str] = (),
                        before_replies: list[Reply] | None = None) -> Reply:
        """Upload ``payload`` with STOR/APPE (REST first if ``rest``; ``before`` as
        ``_raw_start``); the final reply, or the refusal (a refused REST's even when
        the payload then went from offset 0)."""
        started = await self._raw_start(abs_path, verb=verb, rest=rest, before=before,
                                        before_replies=before_replies)
        if isinstance(started, Reply):
            return started
        _reader, writer, refused_rest = started
        try:
            writer.write(payload)
            # The server may end the data connection: its final reply says why.
            with contextlib.suppress(ConnectionError):
                await asyncio.wait_for(writer.drain(), self._client.timeout)
        finally:
            writer.close()
        final = await self._client.final_reply()
        return refused_rest if refused_rest is not None else final

    async def raw_read_all(self, abs_path: str, *, rest: int = 0, before: Sequence[str] = (),
                           before_replies: list[Reply] | None = None) -> bytes | Reply:
        """A whole (small) file from ``rest`` (``before`` as ``_raw_start``), or the
        refusal reply (a refused REST's even when the file was then read from 0)."""
        started = await self._raw_start(abs_path, verb="RETR", rest=rest, before=before,
                                        before_replies=before_replies)
        if isinstance(started, Reply):
            return started
        reader, writer, refused_rest = started
        try:
            parts = []
            while chunk := await self._read_block(reader):
                parts.append(chunk)
        finally:
            writer.close()
        final = await self._client.final_reply()
        if refused_rest is not None:
            return refused_rest
        return b"".join(parts) if final.is_success() else final

    async def _after_failed_transfer(
        self, writer: DataStream, reader: DataStream, exc: BaseException
    ) -> None:
        """A transfer ended early: the consumer stopped (GeneratorExit) or an error came.
        Resync with ABOR when the control connection may still be fine, else break."""
        if isinstance(exc, (*NETWORK_ERRORS, asyncio.CancelledError)):
            writer.transport.abort()
            self._mark_broken(f"{type(exc).__name__} during a transfer")
            return
        await self._cleanup_transfer(writer, reader)

    async def _cleanup_transfer(
        self, writer: DataStream, reader: DataStream | None
    ) -> None:
        """After an early stop: ABOR and resync, or break the session."""
        if not self.usable:
            writer.transport.abort()
            return
        # A failed ABOR marks the session broken; the original error is the one to report.
        with contextlib.suppress(TransientError):
            await self._abort_transfer(writer, reader)
