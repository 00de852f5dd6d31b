"""A measuring prototype, not a transport: an ``SftpSession`` whose SSH is OpenSSH's own
``ssh -s ... sftp`` child (crypto in C, in another process, as lftp does) and whose SFTP
is asyncssh's client protocol (``SFTPClientHandler``) spoken over a socket pair to the
child. ``profile_sftp_store --variants lean,openssh`` compares it with the store.

Only what the measurement needs: key login with the fixture's key, the host key checked
by ``ssh`` against the fixture's known_hosts (``StrictHostKeyChecking=yes``), no config
file, aes128-gcm. The SFTP frames are cut from the socket's chunks with at most one
join (``_FrameReader``): asyncio's ``StreamReader`` copied every byte three more times.
The child runs with glibc's mmap / trim thresholds raised: with its stdout going to a
pipe or socket that does not drain at once, ssh's growing and shrinking buffers were
mapped and unmapped page by page (40,000-57,000 minor faults per 256 MiB, ssh's CPU
1.7-1.9 s/GB against 1.2-1.3 s/GB with the thresholds raised).
"""

from __future__ import annotations

import asyncio
import collections
import os
import socket
from pathlib import Path

import asyncssh
from asyncssh.sftp import SFTPClient, SFTPClientHandler

from fsmove.transfers.sftp import SftpSession

_CHILD_MALLOC = {"MALLOC_MMAP_THRESHOLD_": str(32 << 20), "MALLOC_TRIM_THRESHOLD_": str(256 << 20)}


class _FrameReader(asyncio.Protocol):
    """The child's output as ``readexactly`` for asyncssh's SFTP handler; its writer."""

    def __init__(self) -> None:
        self._chunks: collections.deque[bytes] = collections.deque()
        self._size = 0
        self._need = 0
        self._waiter: asyncio.Future[None] | None = None
        self._eof = False
        self.transport: asyncio.Transport | None = None
        self.logger = asyncssh.logging.logger
        self.channel = self  # asyncssh asks ``writer.channel.is_closing()``

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        assert isinstance(transport, asyncio.Transport)
        self.transport = transport

    def data_received(self, data: bytes) -> None:
        self._chunks.append(data)
        self._size += len(data)
        if self._waiter is not None and not self._waiter.done() and self._size >= self._need:
            self._waiter.set_result(None)

    def eof_received(self) -> bool:
        self._eof = True
        if self._waiter is not None and not self._waiter.done():
            self._waiter.set_result(None)
        return False

    def connection_lost(self, exc: Exception | None) -> None:
        self.eof_received()

    def get_extra_info(self, name: str, default: object = None) -> object:
        return default

    async def readexactly(self, n: int) -> bytes:
        while self._size < n:
            if self._eof:
                raise asyncio.IncompleteReadError(b"", n)
            self._need = n
            self._waiter = asyncio.get_running_loop().create_future()
            await self._waiter
            self._waiter = None
        first = self._chunks[0]
        self._size -= n
        if len(first) == n:
            return self._chunks.popleft()
        if len(first) > n:
            self._chunks[0] = first[n:]
            return first[:n]
        parts, left = [], n
        while left:
            chunk = self._chunks.popleft()
            if len(chunk) > left:
                self._chunks.appendleft(chunk[left:])
                chunk = chunk[:left]
            parts.append(chunk)
            left -= len(chunk)
        return b"".join(parts)

    # -- the writer side -----------------------------------------------------------------

    def write(self, data: bytes) -> None:
        assert self.transport is not None
        self.transport.write(data)

    def write_eof(self) -> None:
        self.close()

    def is_closing(self) -> bool:
        return self.transport is None or self.transport.is_closing()

    def close(self) -> None:
        if self.transport is not None:
            self.transport.close()


class _Child:
    """What ``SftpSession`` asks of its connection, for the ``ssh`` child."""

    def __init__(self, proc: asyncio.subprocess.Process, reader: _FrameReader) -> None:
        self.proc = proc
        self._reader = reader
        self.receiving: asyncio.Task[None] | None = None

    def get_extra_info(self, name: str, default: object = None) -> object:
        # The fixture is OpenSSH's sshd: requests are handled in order.
        return "SSH-2.0-OpenSSH (ssh child)" if name == "server_version" else default

    def is_closed(self) -> bool:
        return self.proc.returncode is not None

    def close(self) -> None:
        self._reader.close()

    async def wait_closed(self) -> None:
        await self.proc.wait()


async def open_openssh_session(*, host: str, port: int, user: str, key: Path,
                               known_hosts: Path, root: str) -> SftpSession:
    argv = ["ssh", "-q", "-T", "-x", "-a", "-e", "none", "-F", "/dev/null",
            "-o", "BatchMode=yes", "-o", f"UserKnownHostsFile={known_hosts}",
            "-o", "GlobalKnownHostsFile=/dev/null", "-o", "StrictHostKeyChecking=yes",
            "-o", "IdentitiesOnly=yes", "-i", str(key),
            "-o", "Ciphers=aes128-gcm@openssh.com", "-o", "Compression=no",
            "-p", str(port), "-l", user, "-s", host, "sftp"]
    ours, theirs = socket.socketpair()
    proc = await asyncio.create_subprocess_exec(
        *argv, stdin=theirs, stdout=theirs, stderr=asyncio.subprocess.DEVNULL,
        env={**os.environ, **_CHILD_MALLOC})
    theirs.close()
    loop = asyncio.get_running_loop()
    _transport, reader = await loop.create_connection(_FrameReader, sock=ours)
    handler = SFTPClientHandler(loop, "strict", reader, reader, 3)  # type: ignore[arg-type]
    await handler.start()
    receiving = loop.create_task(handler.recv_packets())
    await handler.request_limits()
    sftp = SFTPClient(handler, "utf-8", "surrogateescape")
    child = _Child(proc, reader)
    child.receiving = receiving  # kept referenced while the session lives
    return SftpSession(conn=child, sftp=sftp, root=root,  # type: ignore[arg-type]
                       timeout=30.0, requests_in_flight=16, posix_rename=True,
                       on_close=lambda _session: None)
