"""Reading and writing a file's bytes over FTP: ``REST`` + ``RETR`` for a range, ``STOR``
(or ``REST`` + ``STOR`` / ``APPE`` where the probe allows) for a write.

A read that ends before the end of the file stops the transfer with ABOR
(transfer.py), unless little is left (``DRAIN_LIMIT``: reading on is cheaper). A write
on a data connection opened ahead sends its first piece with the command (one round trip
per small file); FTP acknowledges nothing before the final 226, so a write returns only
after it.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterable, AsyncIterator

from ..backend import (
    Acked,
    Entry,
    OffsetWrites,
    TransientError,
    UnsupportedError,
    link_refusal,
)
from .client import ProtocolError
from .data import DataStream
from .errors import NETWORK_ERRORS, reply_error
from .folders import FolderSession
from .probe import offers_site_chmod
from .transfer import DRAIN_LIMIT


class FileSession(FolderSession):
    """The file-contents layer of an FTP session: read and write."""

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
                # buffers the data connection filled in place. One piece is kept back
                # to learn whether it is the last: that one is handed on at EOF before
                # the server's final reply (below).
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
                    if parts and not remaining:
                        # Every byte of the range is here: hand the last piece on now,
                        # not after the server's 226 and the re-stat riding with it (a
                        # small file's destination starts a round trip sooner: ~85 ms
                        # of first byte and of every file at 60 ms). Not yet good: an
                        # error raised below, after it, still fails the file: the
                        # copy's pipe places nothing whose read did not end cleanly
                        # (transfers/copy/pipe.py).
                        yield parts.pop()
                    done = True
                    await self._finish_transfer(path=path, action="read",
                                                next_passive=not remaining,
                                                ride=self._restat_ride(abs_path, offset,
                                                                       length))
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
                        # the session is now marked unusable (the pool drops it).
                        pass
                if parts:
                    yield b"".join(parts)
            except BaseException as exc:
                if not done:
                    await self._after_failed_transfer(writer, reader, exc)
                raise

    def _restat_ride(self, abs_path: str, offset: int, length: int | None) -> tuple[str, ...]:
        """The stat that rides along with a whole-file download's end (the copy checks
        right after it that the source did not change while read: ``stat`` then
        answers from these replies, no round trip of its own). Only on a store that
        runs commands after transfers, in order (store.py), and without MLST (SIZE
        and MDTM are what ``stat`` asks there)."""
        if (offset or length is not None or not self._store.runs_commands_after_transfers
                or self._features.mlst or not self._asks_early()):
            return ()
        return (f"SIZE {abs_path}", f"MDTM {abs_path}")

    async def write(self, path: str, data: AsyncIterable[bytes], *, offset: int = 0,
                    create: bool = True, acked: Acked | None = None,
                    private: bool = False) -> int:
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
            if create and private and await self._made_private(abs_path, path):
                before = ()  # the empty private file made just now: written into
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
            await self._finish_transfer(path=path, action="write",
                                        next_passive=self._asks_early_on_upload())
            await self._open_ahead()
            return sent

    async def _made_private(self, abs_path: str, path: str) -> bool:
        """An empty file at ``abs_path`` with mode 0600 (whatever had the name removed
        first), so that none of a private file's bytes is ever readable by others, even
        left by a killed run: a new FTP file gets the server's default mode (0644 on
        vsftpd, pure-ftpd, proftpd as configured by Debian) until the placing's ``SITE
        CHMOD``. The upload then writes into it: ``STOR`` of an existing file keeps its
        mode (measured: vsftpd, pure-ftpd, proftpd, pyftpdlib). False where the server
        offers no ``SITE CHMOD``: its default stays (README)."""
        store = self._store
        if store.site_chmod is None:  # the probe did not ask
            store.site_chmod = offers_site_chmod(await self.raw_command("SITE HELP"))
        if not store.site_chmod:
            return False
        _reader, writer = await self._start_transfer(
            "STOR", rest=0, abs_path=abs_path, path=path, action="write",
            before=(f"DELE {abs_path}",))
        writer.close()
        await self._finish_transfer(path=path, action="write", next_passive=False)
        reply = await self.raw_command(f"SITE CHMOD 600 {abs_path}")
        if not reply.is_success() and reply.code != 421:
            store.site_chmod = False  # refused: the server's default, noted once
        return True

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
        lines = [*before, f"{verb} {abs_path}"]
        if self._asks_early_on_upload():
            # The next port asked in the same write: a server that reads commands in
            # order answers it right after this upload's 226 (transfer.py).
            await self._send_with_passive(lines)
        else:
            await self._client.send_many(lines)
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
            if not reply.is_preliminary() and self._passive_owed:
                # Refused: the passive command sent along is answered next.
                self._passive_owed = False
                self._on_ahead_reply(await self._client.reply())
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
            except NETWORK_ERRORS as exc:
                # The server cut the data connection: its reply says why (452 disk full...).
                writer.transport.abort()
                try:
                    reply = await self._client.final_reply()
                except NETWORK_ERRORS:
                    raise exc from None
                if reply.is_success():
                    raise ProtocolError(f"data connection lost but the server replied "
                                        f"{reply.text!r}") from exc
                raise reply_error(reply, where=self.where, action="write", path=path) from exc
            sent += len(piece)


async def _chain(head: bytes, rest: AsyncIterator[bytes]) -> AsyncIterator[bytes]:
    yield head
    async for piece in rest:
        yield piece
