"""FTP data connections that receive straight into piece-sized buffers.

asyncio's ``StreamReader`` costs three copies per byte on the way in (the socket's bytes
object, appended to the reader's buffer, copied out by ``read``, joined into a piece);
at a few hundred MB/s those copies were a third of fsmove's CPU on large FTP files. This
``BufferedProtocol`` lets the transport ``recv_into`` a fresh ``bytearray`` of
``DATA_PIECE`` bytes and hands that very buffer on once it is full: one copy, the
kernel's. Pieces handed out are never touched again, so their consumers may keep them.

One object is both sides of a data connection: ``read``/``read_piece`` (what a
``StreamReader`` offered) and ``write``/``drain``/``close``/``start_tls`` plus the
``transport`` attribute (what a ``StreamWriter`` offered), so the session code keeps its
``reader, writer`` pair (both names point to the same ``DataStream``).

Read timeouts are stall timeouts (``idle``): a wait fails only when no byte arrived for
``idle`` seconds, however long a slow link takes to fill a piece.
"""

from __future__ import annotations

import asyncio
import ssl
from collections import deque

#: Bytes per piece read from a data connection. Larger than the backends' usual
#: ``PIECE_SIZE`` (256 KiB): every piece costs the engine a queue hop, a hash update, a
#: write call and a journal callback, and at 1 MiB a large FTP file needs ~30 % less CPU
#: (measured on 1 GiB vsftpd -> vsftpd, 2 cores). The engine bounds its pipes in bytes.
DATA_PIECE = 1024 * 1024
#: The first buffer of a data connection (then 128 KiB, 256 KiB, ... up to DATA_PIECE).
FIRST_BUFFER = 64 * 1024
#: Bytes held in full pieces before the socket stops being read (the server then waits).
HIGH_WATER = 4 * 1024 * 1024


class DataStream(asyncio.BufferedProtocol):
    def __init__(self, loop: asyncio.AbstractEventLoop, *, piece_size: int = DATA_PIECE,
                 high_water: int = HIGH_WATER) -> None:
        self._loop = loop
        self._piece_size = piece_size
        # The first buffer is small and each full one doubles the next, up to
        # piece_size: a small file costs one small buffer, not a zeroed 1 MiB.
        self._next_size = min(FIRST_BUFFER, piece_size)
        self._high_water = high_water
        self.transport: asyncio.Transport = None  # type: ignore[assignment]  # connection_made
        self._buf: bytearray | None = None
        self._filled = 0
        self._ready: deque[bytearray] = deque()
        self._ready_bytes = 0
        self._received = 0
        self._eof = False
        self._exc: BaseException | None = None
        self._lost = False
        self._reading_paused = False
        self._waiter: asyncio.Future[None] | None = None
        self._want_any = False
        self._writing_paused = False
        self._drain_waiters: deque[asyncio.Future[None]] = deque()

    # -- protocol callbacks ----------------------------------------------------------

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        assert isinstance(transport, asyncio.Transport)
        self.transport = transport

    def get_buffer(self, sizehint: int) -> memoryview:
        if self._buf is None:
            self._buf = bytearray(self._next_size)
            self._filled = 0
        return memoryview(self._buf)[self._filled:]

    def buffer_updated(self, nbytes: int) -> None:
        self._filled += nbytes
        self._received += nbytes
        buf = self._buf
        assert buf is not None
        if self._filled == len(buf):
            self._ready.append(buf)
            self._ready_bytes += len(buf)
            self._buf, self._filled = None, 0
            self._next_size = min(2 * len(buf), self._piece_size)
            if self._ready_bytes >= self._high_water and not self._reading_paused:
                self._reading_paused = True
                self.transport.pause_reading()
            self._wake()
        elif self._want_any:
            self._wake()

    def eof_received(self) -> bool:
        self._eof = True
        self._wake()
        return False  # close the transport: a data connection ends with the server's EOF

    def connection_lost(self, exc: Exception | None) -> None:
        self._lost = True
        if exc is not None:
            self._exc = exc
        self._eof = True
        self._wake()
        for fut in self._drain_waiters:
            if not fut.done():
                fut.set_exception(exc or ConnectionResetError("connection lost"))
        self._drain_waiters.clear()

    def pause_writing(self) -> None:
        self._writing_paused = True

    def resume_writing(self) -> None:
        self._writing_paused = False
        for fut in self._drain_waiters:
            if not fut.done():
                fut.set_result(None)
        self._drain_waiters.clear()

    def _wake(self) -> None:
        waiter = self._waiter
        if waiter is not None and not waiter.done():
            waiter.set_result(None)

    # -- reading -----------------------------------------------------------------------

    async def _wait(self, idle: float, *, any_data: bool) -> None:
        """Wait for a full piece (or any data), EOF or an error; TimeoutError only if
        nothing at all arrived for ``idle`` seconds."""
        before = self._received
        self._want_any = any_data
        self._waiter = self._loop.create_future()
        try:
            async with asyncio.timeout(idle):
                await self._waiter
        except TimeoutError:
            if self._received == before:
                raise
        finally:
            self._waiter = None
            self._want_any = False

    def _take_ready(self) -> bytearray:
        piece = self._ready.popleft()
        self._ready_bytes -= len(piece)
        if self._reading_paused and self._ready_bytes < self._high_water // 2 and not self._lost:
            self._reading_paused = False
            self.transport.resume_reading()
        return piece

    def _take_partial(self) -> bytearray:
        buf, filled = self._buf, self._filled
        if buf is None or not filled:
            return bytearray()
        self._buf, self._filled = None, 0
        try:
            del buf[filled:]  # no copy; the transport holds no view between callbacks
        except BufferError:
            return bytearray(memoryview(buf)[:filled])
        return buf

    async def read_piece(self, idle: float) -> bytearray:
        """The next full buffer (64 KiB, then twice as big each time up to
        ``piece_size``; fewer bytes only at EOF); empty at EOF."""
        while not self._ready and not self._eof:
            await self._wait(idle, any_data=False)
        if self._ready:
            return self._take_ready()
        if self._exc is not None:
            raise self._exc
        return self._take_partial()

    async def read(self, n: int, idle: float) -> bytes:
        """Up to ``n`` bytes of what has arrived (waiting for some); ``b""`` at EOF."""
        while not self._ready and not self._filled and not self._eof:
            await self._wait(idle, any_data=True)
        if self._ready:
            piece = self._take_ready()
        elif self._exc is not None:
            raise self._exc
        else:
            piece = self._take_partial()
        if len(piece) > n:
            self._ready.appendleft(piece[n:])
            self._ready_bytes += len(piece) - n
            del piece[n:]
        return bytes(piece)

    # -- writing -----------------------------------------------------------------------

    def write(self, data: bytes | bytearray | memoryview) -> None:
        # Never raises: an upload sent with its command reads the server's reply next,
        # which says why a refused connection closed (``file_io._upload_early``).
        self.transport.write(data)

    async def drain(self) -> None:
        if self._exc is not None:
            raise self._exc
        if self.transport.is_closing():
            await asyncio.sleep(0)  # let connection_lost run, as StreamWriter does
        if self._lost:
            # The server ended the connection (its process killed, a full disk's 452):
            # asyncio's transport drops what is written after that and logs
            # "socket.send() raised exception." for each write; before session 32 an
            # upload ran on into the void to its last byte (progress past 100 %, a
            # thousand log lines), its failure seen only at the missing 226.
            raise self._exc or ConnectionResetError("the server closed the data connection")
        if not self._writing_paused:
            return
        fut = self._loop.create_future()
        self._drain_waiters.append(fut)
        await fut

    def close(self) -> None:
        self.transport.close()

    async def start_tls(self, context: ssl.SSLContext, *, server_hostname: str | None,
                        ssl_handshake_timeout: float | None) -> None:
        """Secure the connection in place (FTPS data channels)."""
        self.transport = await self._loop.start_tls(  # type: ignore[assignment]
            self.transport, self, context, server_hostname=server_hostname,
            ssl_handshake_timeout=ssl_handshake_timeout)


async def open_data_stream(host: str, port: int, *, connect_timeout: float,
                           write_high_water: int) -> DataStream:
    """Connect a data connection and return its ``DataStream``."""
    loop = asyncio.get_running_loop()
    async with asyncio.timeout(connect_timeout):
        _transport, stream = await loop.create_connection(
            lambda: DataStream(loop), host, port)
    stream.transport.set_write_buffer_limits(high=write_high_water)
    return stream
