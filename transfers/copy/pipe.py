"""The data pipe: the source side of one transfer, read in its own task, hashed on the
way, handed to the destination through a queue bounded by pieces and by bytes.

Memory is bounded by the pieces in flight (``Limits.pieces_per_pipe`` and
``bytes_per_pipe`` per segment), never by the size or number of files. The reader also
owns the "did the source change while it was read?" checks: a byte count that differs
from the listing, and (by the last reader of an attempt) a fresh stat of the source.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator, Awaitable, Callable

from fsmove.verify.digest import BLOCK_SIZE, BlockHasher

from ..backend import Entry, EntryKind, NotFoundError, Session, no_bytes
from ..digest_read import read_file_digest
from ..policy import Limits
from ..pool import SessionPool
from .transfer import FileTransfer, SourceChangedError

#: Called for every piece handed to the destination: (path, bytes).
OnSent = Callable[[str, int], None]


class _PieceQueue(asyncio.Queue[bytes | BaseException | None]):
    """A pipe's queue, bounded by pieces and by bytes (a piece always fits while fewer
    than ``max_bytes`` wait). asyncio's own extension points: ``_put``/``_get``/``full``."""

    def __init__(self, max_pieces: int, max_bytes: int) -> None:
        super().__init__(max_pieces)
        self._max_bytes = max_bytes
        self._held = 0

    def _put(self, item: bytes | BaseException | None) -> None:
        super()._put(item)  # type: ignore[misc]
        if isinstance(item, bytes | bytearray):
            self._held += len(item)

    def _get(self) -> bytes | BaseException | None:
        item: bytes | BaseException | None = super()._get()  # type: ignore[misc]
        if isinstance(item, bytes | bytearray):
            self._held -= len(item)
        return item

    def full(self) -> bool:
        return self._held >= self._max_bytes or super().full()


class Flow:
    """What a pipe handed its consumer so far: whether any piece, and the source's error
    if it raised one (so the consumer can tell it from its own)."""

    __slots__ = ("delivered", "source_error")

    def __init__(self) -> None:
        self.delivered = False
        self.source_error: BaseException | None = None


class Pipe:
    """The source side of one transfer: an async iterator of pieces whose reader task
    is already running. ``async with`` guarantees the reader (and the source session it
    holds) is stopped even when the destination fails before reading a single piece."""

    def __init__(self, pieces: AsyncIterator[bytes], task: asyncio.Task[None],
                 first: Callable[[], Awaitable[None]], flow: Flow) -> None:
        self._pieces = pieces
        self._task = task
        self._first = first
        self.flow = flow

    async def first(self) -> None:
        """Wait until the source produced its first piece (or ended, or failed: then
        raise). A destination session borrowed only after this is never held idle
        while the source opens its file (one round trip or more on a slow link)."""
        await self._first()

    def __aiter__(self) -> AsyncIterator[bytes]:
        return self._pieces

    async def __aenter__(self) -> Pipe:
        return self

    async def __aexit__(self, exc_type: type[BaseException] | None, *rest: object) -> None:
        with contextlib.suppress(BaseException):
            await self._pieces.aclose()  # type: ignore[attr-defined]
        if exc_type is None:
            # Success: let the source stream finish closing (cancelling it would break
            # an FTP session). Its error fails the file though every byte was sent: a
            # source that changed, or a read its server did not confirm, is never placed.
            await self._task
            return
        if not self._task.done():
            self._task.cancel()
        with contextlib.suppress(BaseException):
            await self._task


class SourceReader:
    """Opens pipes from the source: one per segment (or per file)."""

    def __init__(self, src: SessionPool, *, limits: Limits, on_sent: OnSent) -> None:
        self.src = src
        self._limits = limits
        self._on_sent = on_sent

    def open(self, transfer: FileTransfer, start: int, end: int, hasher: BlockHasher, *,
             send_from: int | None = None) -> Pipe:
        """Pieces of source [start, end), hashed on the way; yields only from
        ``send_from`` on (bytes before it are hashed, not sent). Checks the byte count:
        a source that shrank or grew raises SourceChangedError.

        The source read starts at once, in its own task, so opening the source overlaps
        opening the destination (one round trip less per file on a slow link)."""
        entry = transfer.entry
        send_from = start if send_from is None else send_from
        to_eof = end == entry.size
        q = _PieceQueue(self._limits.pieces_per_pipe, self._limits.bytes_per_pipe)
        on_sent = self._on_sent

        signalled = False  # the consumer has been told the data is complete

        async def reader() -> None:
            nonlocal signalled
            pos = start
            try:
                async with self.src.session(stream=end - start > BLOCK_SIZE) as s:
                    # To EOF: read without a bound, so a file that grew is noticed.
                    stream = s.read(
                        entry.path, offset=start, length=None if to_eof else end - start,
                        expect=entry,
                    )
                    async for piece in stream:
                        if pos + len(piece) > end:
                            raise SourceChangedError(
                                f"{entry.path}: source grew while it was copied", path=entry.path
                            )
                        hasher.update(piece)
                        pos += len(piece)
                        await q.put(piece)
                        if pos == end and end <= BLOCK_SIZE:
                            # A small file is complete: let the destination finish while
                            # the source stream closes (one round trip less per file).
                            signalled = True
                            await q.put(None)
                    if pos != end:
                        raise SourceChangedError(
                            f"{entry.path}: source has {pos} bytes, expected {end} "
                            "(it changed while it was copied)",
                            path=entry.path,
                        )
                    if transfer.read_finished():
                        # Every byte of the file this attempt sends has been read, by
                        # this segment or the others: the source must still be what was
                        # listed (for a small file this overlaps the destination's last
                        # reply). On the session that read it: an FTP server may have
                        # answered that stat along with the download's end already.
                        await self.check_unchanged(entry, session=s)
                if not signalled:
                    signalled = True
                    await q.put(None)
            except asyncio.CancelledError:
                # The pipe is being closed (the destination failed or the file is done):
                # nobody reads the queue any more, so never wait on it here — a put on a
                # full queue would hang the pipe's close, and with it the worker.
                raise
            except BaseException as exc:
                if not signalled:
                    await q.put(exc)  # the consumer raises it (a cancel here still ends us)
                    return
                # Every byte arrived, but the read did not end cleanly (the source
                # changed, or its server did not confirm the transfer: FTP hands the
                # last piece on before the 226) or the source could not be checked
                # after it: raised when the pipe closes, before anything is placed.
                raise

        task = asyncio.create_task(reader())

        head: list[bytes | BaseException | None] = []
        flow = Flow()

        async def first() -> None:
            # Wait for the source's first piece (kept for pieces()); its error, if any,
            # is raised here, before the destination is touched.
            if not head:
                head.append(await q.get())
            if isinstance(head[0], BaseException):
                flow.source_error = head[0]
                raise head[0]

        async def pieces() -> AsyncIterator[bytes]:
            # The reader task belongs to the Pipe, which ends it.
            sent = start
            path = entry.path
            while True:
                item = head.pop() if head else await q.get()
                if item is None:
                    break
                if isinstance(item, BaseException):
                    flow.source_error = item
                    raise item
                piece = item
                if sent + len(piece) <= send_from:
                    sent += len(piece)
                    continue
                if sent < send_from:
                    piece = piece[send_from - sent :]
                    sent = send_from
                sent += len(piece)
                if sent > transfer.furthest_sent:
                    transfer.furthest_sent = sent  # the furthest byte ever sent
                on_sent(path, len(piece))
                flow.delivered = True
                yield piece

        return Pipe(pieces(), task, first, flow)

    async def check_unchanged(self, entry: Entry, *, session: Session | None = None) -> None:
        """Raise SourceChangedError unless the source is still the regular file of the
        size and mtime that was listed (and read); on ``session`` if given."""
        try:
            if session is not None:
                now = await session.stat(entry.path)
            else:
                async with self.src.session() as s:
                    now = await s.stat(entry.path)
        except NotFoundError:
            raise SourceChangedError(
                f"{entry.path}: source disappeared while it was copied", path=entry.path
            ) from None
        if now.kind is not EntryKind.FILE or now.size != entry.size or (
            entry.mtime is not None and now.mtime is not None and now.mtime != entry.mtime
        ):
            raise SourceChangedError(
                f"{entry.path}: source changed while it was copied", path=entry.path
            )

    async def check_content(self, entry: Entry, digest: str) -> None:
        """``--checksum``: read the source again and compare its digest with the one of
        the bytes sent; a rewrite that kept size and mtime (or fell within the store's
        mtime resolution) shows here, before the file is placed."""
        got = await read_file_digest(self.src, entry.path)
        if got.size != entry.size or got.digest != digest:
            raise SourceChangedError(
                f"{entry.path}: source changed while it was copied (its content differs "
                "from the bytes sent)", path=entry.path
            )


#: No bytes: creates (truncates) a destination file.
empty = no_bytes
