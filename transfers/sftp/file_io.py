"""Reading and writing a file's bytes over SFTP, pipelined, and the checks that keep a
write from following a link.

``read`` keeps ``requests_in_flight`` read requests of the server's read limit in flight
and yields the replies in order; ``write`` re-cuts the stream into requests of the
server's write limit, keeps as many in flight, each at its own offset, and returns once
every one was acknowledged and the handle closed. SFTP has no ``openat``: before writing
into a folder every level of it is ``lstat``'ed (together, one round trip, once per
folder per store); a new file is opened with ``CREAT | EXCL``, private (0600) until
``place`` sets its bits.
"""

from __future__ import annotations

import asyncio
import posixpath
from collections import deque
from collections.abc import AsyncIterable, AsyncIterator

import asyncssh

from ..backend import (
    Acked,
    BackendError,
    Entry,
    EntryKind,
    NoSpaceError,
    NotFoundError,
    PermanentError,
    PermissionDeniedError,
    check_listed,
    folders_of,
    link_refusal,
)
from . import write_request
from .channel import ChannelSession
from .early_read import OPENSSH_READ_LEN, EarlyRead

#: Mode of a file fsmove creates, until ``place`` sets its final bits.
PRIVATE = asyncssh.SFTPAttrs(permissions=0o600)


class FileSession(ChannelSession):
    """The file-contents layer of an SFTP session: read and write."""

    async def read(
        self, path: str, *, offset: int = 0, length: int | None = None,
        expect: Entry | None = None,
    ) -> AsyncIterator[bytes]:
        if offset < 0 or (length is not None and length < 0):
            raise ValueError("offset and length must not be negative")
        full = self._full(path)
        if length == 0:
            return
        # The lstat first when asked (beside the open, no extra round trip): the name
        # must still be the regular file listed, not a link put there since (SFTP
        # cannot open without following one), else nothing is read. Tasks made in this
        # order write their requests in it: LSTAT, OPEN, then the early READ.
        listed = asyncio.ensure_future(self.stat(path)) if expect is not None else None
        # block_size=0: every fh.read is ONE request; we pipeline them ourselves.
        async def open_file() -> asyncssh.SFTPClientFile:
            # The request made inside the task: a Ctrl-C before the task ran left
            # "coroutine 'SFTPClient.open' was never awaited" (seen in session 32).
            return await self._bounded(
                self._sftp.open(full, asyncssh.FXF_READ, encoding=None, block_size=0), path)

        opening = asyncio.ensure_future(open_file())
        early = self._early_read(path, offset, length)
        try:
            if expect is None or listed is None:
                fh = await opening
            else:
                now, fh = await asyncio.gather(listed, opening, return_exceptions=True)
                if isinstance(fh, BaseException):
                    raise fh
                try:
                    if isinstance(now, BaseException):
                        raise now
                    check_listed(path, expect, kind=now.kind, size=now.size, mtime=now.mtime)
                except BaseException:
                    await self._close_quietly(fh)
                    raise
        except BaseException:
            if early is not None:
                await early.drop()
            raise
        if early is not None and not early.matches(fh):
            await early.drop()  # asked of a handle that is not this file's
            early = None
        pending: deque[tuple[int, int, asyncio.Task[bytes]]] = deque()
        next_offset = offset
        end = None if length is None else offset + length

        async def read_at(size: int, at: int) -> bytes:
            # Made inside the task (see ``write``): no never-awaited request on a cancel.
            return await self._bounded(fh.read(size, at), path)

        def submit() -> None:
            nonlocal next_offset
            size = self._read_len if end is None else min(self._read_len, end - next_offset)
            task = asyncio.ensure_future(read_at(size, next_offset))
            pending.append((next_offset, size, task))
            next_offset += size

        try:
            if early is not None:
                pending.append((offset, early.size, early.read))
                next_offset += early.size
            await self._limits_known()
            if not pending:
                submit()
            if end is None:
                # Size the pipeline by the file's size, asked while the first block flies
                # (and so a short last block needs no extra request to confirm the end).
                if early is not None and early.attrs is not None:
                    attrs = await early.attrs
                else:
                    attrs = await self._bounded(fh.stat(), path)
                if attrs.size is not None:
                    end = max(attrs.size, offset)
            while pending:
                while len(pending) < self._in_flight and (end is None or next_offset < end):
                    submit()
                start, size, task = pending.popleft()
                piece = await task
                while piece:
                    yield piece
                    start, size = start + len(piece), size - len(piece)
                    if size == 0 or (end is not None and start >= end):
                        break
                    # A short read before the end: ask for the rest of this block.
                    piece = await self._bounded(fh.read(size, start), path)
                if size and (end is None or start < end):
                    break  # end of file before the expected end
                if end is not None and start >= end:
                    break
        finally:
            for _, _, task in pending:
                task.cancel()
            if pending:
                await asyncio.gather(*(t for _, _, t in pending), return_exceptions=True)
            if early is not None:
                await early.drop()  # its FSTAT, if the read ended before it was needed
            # A file read needs no confirmed close: one round trip less per file.
            self._close_later(fh.close())

    def _early_read(self, path: str, offset: int, length: int | None) -> EarlyRead | None:
        """The first READ of ``path``, written right behind the OPEN whose task was just
        made (``early_read.py``): on OpenSSH, whose handle table is followed; None
        elsewhere (the READ then waits for the OPEN's answer)."""
        if not self.ordered_requests or not self._handles.known:
            return None
        limit = self._read_len if self._limits is None or self._limits.done() \
            else OPENSSH_READ_LEN
        size = limit if length is None else min(limit, length)
        return EarlyRead(self, path=path, offset=offset, size=size, fstat=length is None)

    async def write(self, path: str, data: AsyncIterable[bytes], *, offset: int = 0,
                    create: bool = True, acked: Acked | None = None,
                    private: bool = False) -> int:
        # ``private``: every new file is opened 0600 here (``PRIVATE``).
        if create and offset:
            raise ValueError("create=True writes start at offset 0")
        if offset < 0:
            raise ValueError("offset must not be negative")
        full = self._full(path)
        fh = await self._open_for_write(path, full, create=create)
        await self._limits_known()
        chunk = self._write_len
        in_flight: deque[tuple[asyncio.Task[int], int]] = deque()
        written = 0
        confirmed = 0
        position = offset
        from_data: BaseException | None = None

        async def reap(limit: int) -> None:
            # Replies come back in order: waiting for the oldest request is enough, and
            # the bytes confirmed so far are contiguous from ``offset``.
            nonlocal confirmed
            while len(in_flight) > limit:
                task, size = in_flight.popleft()
                await task
                confirmed += size
                if acked is not None:
                    acked(confirmed)

        async def write_at(block: bytes | memoryview, at: int) -> int:
            # The request is made inside the task: a task cancelled before it ran (the
            # copy stopping) then leaves no never-awaited coroutine behind.
            await self._bounded(write_request.write_at(fh, block, at), path)
            return len(block)

        async def send(block: bytes | memoryview) -> None:
            nonlocal position, written
            await reap(self._in_flight - 1)
            task = asyncio.ensure_future(write_at(block, position))
            in_flight.append((task, len(block)))
            position += len(block)
            written += len(block)

        try:
            # Cut the stream into requests without copying: asyncssh copies each request
            # into its packet anyway. A ``bytes`` piece never changes, so slices of it
            # (memoryviews) are safe to keep until their request is sent; any other
            # buffer (a bytearray the producer may refill) is copied once, on arrival.
            # Only a request that straddles two pieces is assembled (one copy).
            partial = bytearray()
            pieces = aiter(data)
            while True:
                try:
                    piece = await anext(pieces)
                except StopAsyncIteration:
                    break
                except BaseException as exc:
                    from_data = exc  # the producer's (the source's): told as it is
                    raise
                view = memoryview(piece if isinstance(piece, bytes) else bytes(piece))
                if partial:
                    take = chunk - len(partial)
                    partial += view[:take]
                    view = view[take:]
                    if len(partial) < chunk:
                        continue
                    await send(bytes(partial))
                    partial = bytearray()
                while len(view) >= chunk:
                    await send(view[:chunk])
                    view = view[chunk:]
                if view:
                    partial += view
            if partial:
                await send(bytes(partial))
            if self.ordered_requests:
                # The CLOSE goes out behind the last WRITEs, not one round trip after
                # their answers: the server handles them in order, so it closes a file
                # holding every byte, and any WRITE that failed is still raised (the
                # temporary file is then never placed).
                async def close_file() -> None:
                    # Made inside the task, as ``open_file`` in ``read``.
                    await self._bounded(fh.close(), path)

                closing = asyncio.ensure_future(close_file())
                done = await asyncio.gather(reap(0), closing, return_exceptions=True)
                for outcome in done:
                    if isinstance(outcome, BaseException):
                        raise outcome
            else:
                await reap(0)
                await self._bounded(fh.close(), path)
        except BaseException as exc:
            for task, _size in in_flight:
                task.cancel()
            if in_flight:
                await asyncio.gather(*(t for t, _s in in_flight), return_exceptions=True)
            await self._close_quietly(fh)
            if (isinstance(exc, PermanentError) and not isinstance(exc, NoSpaceError)
                    and exc is not from_data):
                raise await self._explain_failure(exc, full, path) from None
            raise
        return written

    async def _check_folders(self, path: str, *, itself: bool = False) -> list[str]:
        """Refuse a link (or a file) where a folder of ``path`` should be (``itself``:
        ``path`` too); the folders found missing, outermost first. Unchecked levels
        are lstat'ed together (one round trip); checked ones are remembered."""
        folders = folders_of(path) + ([path] if itself else [])
        unknown = [f for f in folders if f not in self._real_dirs]
        if not unknown:
            return []
        found = await asyncio.gather(*(self.stat(f) for f in unknown), return_exceptions=True)
        kinds = dict(zip(unknown, found, strict=True))
        for i, folder in enumerate(folders):
            now = kinds.get(folder)
            if now is None:
                continue  # known to be a real folder
            if isinstance(now, NotFoundError):
                return folders[i:]
            if isinstance(now, BaseException):
                raise now
            if now.kind is EntryKind.LINK:
                raise link_refusal(folder)
            if now.kind is not EntryKind.DIR:
                raise PermanentError(f"{folder}: exists and is not a folder", path=folder)
            self._real_dirs.add(folder)
        return []

    async def _open_for_write(
        self, path: str, full: str, *, create: bool
    ) -> asyncssh.SFTPClientFile:
        """A handle to write ``path``. A new file (``create``) is made with O_EXCL, so a
        link planted at its name is never followed: whatever is there is removed first
        (tried only when the exclusive create fails, so the common case costs nothing
        more). An existing file (resume) must be a regular file, not a link."""
        await self._check_folders(path)
        if not create:
            now = await self.stat(path)
            if now.kind is EntryKind.LINK:
                raise link_refusal(path)
            if now.kind is not EntryKind.FILE:
                raise PermanentError(f"{path}: is not a regular file; not written", path=path)
            return await self._bounded(
                self._sftp.open(full, asyncssh.FXF_WRITE, encoding=None, block_size=0), path)
        flags = asyncssh.FXF_WRITE | asyncssh.FXF_CREAT | asyncssh.FXF_EXCL
        try:
            return await self._bounded(
                self._sftp.open(full, flags, PRIVATE, encoding=None, block_size=0), path)
        except (PermanentError, PermissionDeniedError) as exc:
            if isinstance(exc, NoSpaceError):
                raise
            try:
                await self.remove(path)  # a link is removed itself, not followed
            except NotFoundError:
                raise exc from None
        return await self._bounded(
            self._sftp.open(full, flags, PRIVATE, encoding=None, block_size=0), path)

    async def _explain_failure(self, exc: PermanentError, full: str, path: str) -> BackendError:
        """OpenSSH reports ENOSPC as a bare FAILURE: look at the free space to tell."""
        try:
            await self._version_known()  # whether statvfs@openssh.com is offered
            async with asyncio.timeout(self._timeout):
                vfs = await self._sftp.statvfs(posixpath.dirname(full) or "/")
        except (asyncssh.Error, OSError, BackendError):
            return exc
        if vfs.bavail * (vfs.frsize or vfs.bsize) < self._write_len:
            return NoSpaceError(f"{path}: no space left on the destination", path=path)
        return exc
