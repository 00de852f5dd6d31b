"""The FTP data connection's receive path (transfers/ftp/data.py) over real loopback TCP.

A plain TCP peer on 127.0.0.1 plays the server's side of a data connection (an FTP data
connection is nothing but raw bytes then EOF): these tests pin what the FTP sessions
rely on — every byte in order, buffers growing to full pieces, stall (not total)
timeouts, bounded memory under a slow consumer, and errors after the data received.
"""

from __future__ import annotations

import asyncio
import itertools
import os
import socket
import struct
from collections.abc import AsyncIterator, Awaitable, Callable
from contextlib import asynccontextmanager

import pytest

from fsmove.transfers.ftp.data import (
    DATA_PIECE,
    FIRST_BUFFER,
    HIGH_WATER,
    DataStream,
    open_data_stream,
)

Serve = Callable[[asyncio.StreamReader, asyncio.StreamWriter], Awaitable[None]]


@asynccontextmanager
async def peer(serve: Serve) -> AsyncIterator[DataStream]:
    """A loopback server running ``serve`` for one connection, and our DataStream to it."""
    done = asyncio.get_running_loop().create_future()

    async def handler(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        try:
            await serve(reader, writer)
        finally:
            if not done.done():
                done.set_result(None)

    server = await asyncio.start_server(handler, "127.0.0.1", 0)
    port = server.sockets[0].getsockname()[1]
    stream = await open_data_stream("127.0.0.1", port, connect_timeout=5,
                                    write_high_water=DATA_PIECE)
    try:
        yield stream
    finally:
        if not stream.transport.is_closing():  # a closed one may be gone already:
            stream.transport.abort()             # abort() would touch a dead loop
        server.close()
        await asyncio.wait_for(done, 60)  # a bound against a hang, not a wait for time
        await server.wait_closed()


def send_all(data: bytes) -> Serve:
    async def serve(_r: asyncio.StreamReader, w: asyncio.StreamWriter) -> None:
        w.write(data)
        await w.drain()
        w.close()

    return serve


async def read_all(stream: DataStream) -> tuple[bytes, list[int]]:
    parts: list[bytearray] = []
    while piece := await stream.read_piece(5):
        parts.append(piece)
    return b"".join(parts), [len(p) for p in parts]


def test_every_byte_in_order_in_pieces_that_grow_to_full_size() -> None:
    data = os.urandom(5 * DATA_PIECE + 12345)

    async def main() -> None:
        async with peer(send_all(data)) as stream:
            got, sizes = await read_all(stream)
        assert got == data
        # Full buffers only, each twice the last up to DATA_PIECE; a short one at EOF.
        full = sizes[:-1]
        assert full[0] == FIRST_BUFFER
        assert all(b == min(2 * a, DATA_PIECE) for a, b in itertools.pairwise(full))
        assert full[-1] == DATA_PIECE and 0 < sizes[-1] <= DATA_PIECE

    asyncio.run(main())


@pytest.mark.parametrize("size", [0, 1, FIRST_BUFFER - 1, FIRST_BUFFER, FIRST_BUFFER + 1])
def test_small_and_empty_transfers(size: int) -> None:
    data = os.urandom(size)

    async def main() -> None:
        async with peer(send_all(data)) as stream:
            got, sizes = await read_all(stream)
            assert await stream.read_piece(5) == b""  # EOF stays EOF
        assert got == data
        assert all(sizes)

    asyncio.run(main())


def test_a_slow_trickle_is_not_a_stall() -> None:
    """Data that never pauses for ``idle`` seconds never times out, however long a
    piece takes to fill."""

    async def trickle(_r: asyncio.StreamReader, w: asyncio.StreamWriter) -> None:
        for _ in range(20):
            w.write(b"x" * 100)
            await w.drain()
            await asyncio.sleep(0.05)
        w.close()

    async def main() -> None:
        async with peer(trickle) as stream:
            parts = []
            while piece := await stream.read_piece(0.5):  # 1 s in all, 0.05 s gaps
                parts.append(piece)
        assert b"".join(parts) == b"x" * 2000

    asyncio.run(main())


def test_a_stall_times_out_after_idle_seconds() -> None:
    """The peer sends 10 bytes, then nothing until the test releases it: the only way
    out of the read is its own idle timeout (no clock compared)."""
    async def main() -> None:
        released = asyncio.Event()

        async def stall(_r: asyncio.StreamReader, w: asyncio.StreamWriter) -> None:
            w.write(b"y" * 10)
            await w.drain()
            await released.wait()
            w.close()

        async with peer(stall) as stream:
            with pytest.raises(TimeoutError):
                await stream.read_piece(0.3)
            # What arrived before the stall is still there for a generic read.
            assert await stream.read(100, 0.3) == b"y" * 10
            released.set()

    asyncio.run(main())


def test_a_slow_consumer_bounds_memory_then_gets_everything() -> None:
    data = os.urandom(32 * DATA_PIECE)

    async def main() -> None:
        async with peer(send_all(data)) as stream:
            await asyncio.sleep(0.5)  # the consumer is busy; the sender is not
            assert stream._ready_bytes <= HIGH_WATER + DATA_PIECE
            got, _sizes = await read_all(stream)
        assert got == data

    asyncio.run(main())


def test_generic_reads_cut_to_n_and_mix_with_pieces() -> None:
    data = os.urandom(3 * FIRST_BUFFER + 7)

    async def main() -> None:
        async with peer(send_all(data)) as stream:
            head = await stream.read(10, 5)
            assert 0 < len(head) <= 10 and isinstance(head, bytes)
            rest = bytearray()
            while chunk := await stream.read_piece(5):
                rest += chunk
        assert head + bytes(rest) == data

    asyncio.run(main())


def test_a_reset_after_data_raises_once_the_data_is_read() -> None:
    async def reset(_r: asyncio.StreamReader, w: asyncio.StreamWriter) -> None:
        w.write(b"z" * (FIRST_BUFFER + 5))
        await w.drain()
        await asyncio.sleep(0.2)
        sock = w.get_extra_info("socket")
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
        w.transport.abort()  # linger 0: RST, not a clean EOF

    async def main() -> None:
        async with peer(reset) as stream:
            got = bytearray()
            with pytest.raises(ConnectionError):
                while piece := await stream.read_piece(5):
                    got += piece
        # Only whole buffers come out before the error; the partial tail is not data
        # anyone may trust, and the transfer fails (and is retried) as a whole.
        assert bytes(got) in (b"", b"z" * FIRST_BUFFER)

    asyncio.run(main())


def test_writes_reach_the_peer_and_drain_waits_for_a_slow_reader() -> None:
    """The peer reads nothing until the first piece was written (a slow reader), then
    everything; every byte arrives in order. Nothing waits for time to pass: each step
    waits for the event it needs (the bounds only turn a hang into a failure)."""
    payload = os.urandom(8 * DATA_PIECE)
    received = bytearray()
    release = asyncio.Event()
    finished = asyncio.Event()

    async def slow_reader(r: asyncio.StreamReader, _w: asyncio.StreamWriter) -> None:
        await release.wait()
        while chunk := await r.read(DATA_PIECE):
            received.extend(chunk)
        finished.set()

    async def main() -> None:
        async with peer(slow_reader) as stream:
            for i in range(0, len(payload), DATA_PIECE):
                stream.write(payload[i:i + DATA_PIECE])
                release.set()
                await asyncio.wait_for(stream.drain(), 120)
            stream.close()
            await asyncio.wait_for(finished.wait(), 120)
        assert bytes(received) == payload

    asyncio.run(main())
