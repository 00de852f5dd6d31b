"""The SFTP channel's data packets assembled and taken apart with fewer copies
(``transfers/sftp/fast_send.py``, ``fast_recv.py``), against the real sshd: every byte
arrives both ways, through re-keys (new keys, new AES-GCM objects), with another cipher
(asyncssh's own path), and a byte changed on the wire is refused, never delivered."""

from __future__ import annotations

import asyncio
import os
import random
import threading
from collections.abc import AsyncIterator, Callable, Iterator
from contextlib import contextmanager
from pathlib import Path

import pytest

from fsmove.transfers.endpoint import parse_endpoint
from fsmove.transfers.sftp import SftpStore
from fsmove.transfers.sftp import store as store_module
from fsmove.transfers.sftp.fast_recv import FastReceiver
from fsmove.transfers.sftp.fast_send import FastSender, _kept, _Pending
from fsmove.transfers.sftp.lean import sftp_channel
from fsmove.transfers.sftp.session import SftpSession
from tests.servers import RunningServer
from tests.servers.cuts import relay_known_hosts, sftp_url_via
from tests.servers.ports import free_port

_PACKET = 32 * 1024  # OpenSSH's channel packet size


@pytest.fixture
def server(
    sshd_server: RunningServer, fresh_subdir: Callable[[RunningServer], RunningServer]
) -> RunningServer:
    return fresh_subdir(sshd_server)


def make_store(server: RunningServer, url: str | None = None,
               known_hosts: Path | None = None) -> SftpStore:
    ep = parse_endpoint(url or server.url()).with_password(server.password)
    return SftpStore(ep, known_hosts=known_hosts or server.known_hosts, client_keys=[],
                     timeout=20.0)


async def pieces(data: bytes, size: int = 256 * 1024) -> AsyncIterator[bytes]:
    for start in range(0, len(data), size):
        yield data[start:start + size]


async def read_all(session: SftpSession, path: str) -> bytes:
    return b"".join([piece async for piece in session.read(path)])


def fast_paths(session: SftpSession) -> tuple[FastSender, FastReceiver]:
    channel = sftp_channel(session._sftp)
    sender = channel.write.__self__  # type: ignore[union-attr]
    receiver = session._conn._recv_packet.__self__  # type: ignore[attr-defined]
    assert isinstance(sender, FastSender) and isinstance(receiver, FastReceiver)
    return sender, receiver


def test_data_packets_take_the_fast_paths_both_ways_and_every_byte_arrives(
    server: RunningServer,
) -> None:
    data = os.urandom(3 * 1024 * 1024 + 777)

    async def go() -> None:
        st = make_store(server)
        s = await st.connect()
        sender, receiver = fast_paths(s)
        assert await s.write("up.bin", pieces(data, 100_000)) == len(data)
        assert (server.root / "up.bin").read_bytes() == data
        # Every data packet of the upload is assembled once (no re-key in 3 MiB).
        assert sender.fast_packets >= len(data) // _PACKET
        assert await read_all(s, "up.bin") == data
        # Every data packet of the download too, whole in one read or split between two.
        assert receiver.fast_packets >= len(data) // _PACKET
        await st.aclose()

    asyncio.run(go())


def test_re_keyed_connections_get_new_ciphers_and_carry_every_byte(
    server: RunningServer,
) -> None:
    """Re-keys every 256 KiB sent, then every 8 KiB (a download's requests are small):
    uploads and downloads still arrive whole, data packets sent while a key exchange
    runs wait for it (asyncssh's path), and the fast paths then use the new keys (an
    old one would fail sshd's tag check or ours)."""
    data = os.urandom(4 * 1024 * 1024 + 99)
    more = os.urandom(1024 * 1024)

    async def go() -> None:
        st = make_store(server)
        s = await st.connect()
        conn = s._conn
        sender, receiver = fast_paths(s)
        assert await s.write("first.bin", pieces(b"x" * 100_000)) == 100_000
        assert await read_all(s, "first.bin") == b"x" * 100_000
        first_send, first_recv = sender._cipher, receiver._cipher
        assert first_send is not None and first_recv is not None
        conn._rekey_bytes = 256 * 1024  # type: ignore[attr-defined]
        assert await s.write("rekeyed.bin", pieces(data)) == len(data)
        assert (server.root / "rekeyed.bin").read_bytes() == data
        conn._rekey_bytes = 8 * 1024  # type: ignore[attr-defined]
        assert await read_all(s, "rekeyed.bin") == data
        assert receiver._cipher is not first_recv
        conn._rekey_bytes = 1 << 40  # type: ignore[attr-defined]
        sent_before = sender.fast_packets
        assert await s.write("more.bin", pieces(more)) == len(more)
        assert (server.root / "more.bin").read_bytes() == more
        assert sender._cipher is not first_send
        assert sender.fast_packets - sent_before >= len(more) // _PACKET
        await st.aclose()

    asyncio.run(go())


def test_another_cipher_takes_asyncssh_own_path(
    server: RunningServer, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(store_module, "_encryption_algs",
                        lambda: ["chacha20-poly1305@openssh.com"])
    data = os.urandom(1024 * 1024 + 3)

    async def go() -> None:
        st = make_store(server)
        s = await st.connect()
        assert s._conn.get_extra_info("send_cipher") == "chacha20-poly1305@openssh.com"
        sender, receiver = fast_paths(s)
        assert await s.write("chacha.bin", pieces(data)) == len(data)
        assert await read_all(s, "chacha.bin") == data
        assert (sender.fast_packets, receiver.fast_packets) == (0, 0)
        await st.aclose()

    asyncio.run(go())


@contextmanager
def flipping_proxy(target_port: int, flip_at: int) -> Iterator[int]:
    """A TCP proxy to sshd that inverts the server's byte number ``flip_at`` on each
    connection on its way to the client."""
    port = free_port()
    loop = asyncio.new_event_loop()
    started = threading.Event()

    async def pump(reader: asyncio.StreamReader, writer: asyncio.StreamWriter,
                   flip: int | None) -> None:
        seen = 0
        try:
            while chunk := await reader.read(65536):
                if flip is not None and seen <= flip < seen + len(chunk):
                    changed = bytearray(chunk)
                    changed[flip - seen] ^= 0xFF
                    chunk = bytes(changed)
                seen += len(chunk)
                writer.write(chunk)
                await writer.drain()
        except OSError:
            pass
        finally:
            writer.close()

    async def handle(client_r: asyncio.StreamReader, client_w: asyncio.StreamWriter) -> None:
        server_r, server_w = await asyncio.open_connection("127.0.0.1", target_port)
        await asyncio.gather(pump(client_r, server_w, None), pump(server_r, client_w, flip_at))

    async def serve() -> asyncio.Server:
        return await asyncio.start_server(handle, "127.0.0.1", port)

    def run() -> None:
        asyncio.set_event_loop(loop)
        srv = loop.run_until_complete(serve())
        started.set()
        loop.run_forever()
        srv.close()

    thread = threading.Thread(target=run, daemon=True)
    thread.start()
    started.wait(10)
    try:
        yield port
    finally:
        loop.call_soon_threadsafe(loop.stop)
        thread.join(10)


def test_a_byte_changed_on_the_wire_fails_the_read_and_is_never_delivered(
    server: RunningServer, tmp_path: Path
) -> None:
    data = os.urandom(4 * 1024 * 1024)
    (server.root / "flip.bin").write_bytes(data)

    async def go(port: int) -> None:
        st = make_store(server, sftp_url_via(server, port),
                        relay_known_hosts(server, port, tmp_path / "known_hosts"))
        s = await st.connect()
        got = bytearray()
        with pytest.raises(Exception):  # noqa: B017 - the store's own error type
            async for piece in s.read("flip.bin"):
                got += piece
        # What arrived before the failure is the file's start, never a changed byte.
        assert len(got) < len(data) and data.startswith(bytes(got))
        await st.aclose()

    with flipping_proxy(server.port, flip_at=2 * 1024 * 1024) as port:
        asyncio.run(go(port))


def test_pending_pieces_are_taken_in_order_across_their_boundaries() -> None:
    """``write_parts`` keeps an SFTP request's header and data apart; each SSH packet
    takes its bytes across them: every byte once, in order, and a refillable buffer is
    copied at the write, so changing it afterwards changes nothing sent."""
    rng = random.Random(25)
    for _ in range(300):
        parts: list[bytes | bytearray | memoryview] = []
        for _ in range(rng.randrange(1, 6)):
            raw = rng.randbytes(rng.randrange(0, 3000))
            parts.append(rng.choice([raw, bytearray(raw), memoryview(raw)[1:]]))
        expected = b"".join(bytes(p) for p in parts)
        pending = _Pending([_kept(p) for p in parts if len(p)])
        for p in parts:
            if isinstance(p, bytearray):
                p[:] = b"\0" * len(p)  # the caller refills its buffer
        got = b""
        while len(pending):
            size = min(len(pending), rng.randrange(1, 4000))
            got += b"".join(pending.take(size))
        assert got == expected
