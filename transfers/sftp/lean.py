"""Three per-packet costs of asyncssh that buy nothing here, removed from one connection.

1. **The empty ``SSH_MSG_IGNORE`` before every packet.** asyncssh 2.24's
   ``SSHConnection.send_packet`` sends an empty IGNORE message ahead of every encrypted
   packet: the countermeasure against the chosen-plaintext attack on SSH's CBC mode
   (the next packet's IV is the last cipher block already sent; RFC 4251 section
   9.3.1). It doubles the packets and encryptions of an upload. With a counter-based
   cipher (AES-GCM, ChaCha20-Poly1305, AES-CTR) there is no IV chaining to protect (and
   OpenSSH sends none before its data packets); this connection then skips the empty IGNOREs, and
   keeps them whenever the negotiated cipher is a CBC one. The cipher is chosen once
   per connection from fixed lists (ours and the server's), so a re-key picks it again.
2. **Log formatting per packet.** ``SSHPacketLogger._log_packet`` builds the packet's
   name and a "N bytes" string for every packet sent or received, then hands them to a
   logger that drops them unless asyncssh's debug level is 3. Here the connection and
   its SFTP channel format nothing unless that level is set (whoever calls
   ``asyncssh.set_debug_level(3)`` still sees every packet logged).
3. **The receive buffer's tail copied twice per packet.** asyncssh keeps the bytes
   received as ``bytes`` and, for every packet, re-slices the rest of the buffer after
   its header and again after its body (``_recv_pkthdr``, ``_recv_packet``): a 256 KiB
   read of eight 32 KiB packets is copied ~9 times over. ``InputBuffer`` gives the same
   answers to the same operations, but a tail (``buf[n:]``) is an offset into the same
   bytes, not a copy; a head or middle slice is ``bytes`` as before.

All are done on the connection object (instance attributes over the class methods),
never by changing asyncssh's classes: another connection in the same process is not
touched. The bytes on the wire are otherwise the same. Measured in benchmarks/README.md
("Profile: SFTP large files").
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any, SupportsIndex

import asyncssh
from asyncssh.constants import MSG_IGNORE
from asyncssh.logging import SSHLogger

#: ``String(b"")``: the only argument of asyncssh's inserted IGNORE message.
_EMPTY_STRING = b"\0\0\0\0"
#: asyncssh logs a packet only at this debug level (``SSHLogger.packet``).
_PACKET_DEBUG_LEVEL = 3


def packets_logged() -> bool:
    """Whether asyncssh would log every packet now (``--debug`` tracing at level 3):
    then nothing here skips its per-packet logging (``fast_send``, ``fast_recv``)."""
    return SSHLogger._debug_level >= _PACKET_DEBUG_LEVEL


class InputBuffer:
    """Received bytes not yet parsed, for asyncssh's ``_inpbuf``: ``bytes``'s answers to
    ``len``, truth, ``+=``, ``find`` and slicing, with ``buf[n:]`` taking no copy."""

    __slots__ = ("_data", "_start")

    def __init__(self, data: bytes = b"", start: int = 0) -> None:
        self._data = data
        self._start = start

    def __len__(self) -> int:
        return len(self._data) - self._start

    def __bool__(self) -> bool:
        return len(self._data) > self._start

    def __bytes__(self) -> bytes:
        return self._data[self._start:]

    def __eq__(self, other: object) -> bool:
        if isinstance(other, InputBuffer):
            other = bytes(other)
        return isinstance(other, bytes) and bytes(self) == other

    __hash__ = None  # type: ignore[assignment]  # mutable in spirit, like bytearray

    def __iadd__(self, data: bytes) -> InputBuffer:
        if self._start == len(self._data):
            return InputBuffer(bytes(data))
        # What is left (less than a packet) and the new data: one copy, as before.
        return InputBuffer(self._data[self._start:] + data)

    def __getitem__(self, index: slice | SupportsIndex) -> Any:
        if not isinstance(index, slice):
            return bytes(self)[index]
        start, stop, step = index.indices(len(self))
        if index.start is not None and index.stop is None and index.step is None:
            return InputBuffer(self._data, self._start + start)  # buf[n:]: no copy
        if step != 1:
            return bytes(self)[index]
        return self._data[self._start + start:self._start + max(start, stop)]

    def find(self, sub: bytes, start: int = 0, end: int | None = None) -> int:
        stop = len(self) if end is None else min(end, len(self))
        at = self._data.find(sub, self._start + start, self._start + stop)
        return at - self._start if at >= 0 else -1


def chains_iv(cipher: str) -> bool:
    """True for a cipher whose packets chain their IV (CBC): the IGNORE stays."""
    return "cbc" in cipher.lower()


def _quiet(log: Callable[..., None]) -> Callable[..., None]:
    """``log`` only when asyncssh would print packets; nothing formatted otherwise."""

    def log_packet(*args: Any, **kwargs: Any) -> None:
        if packets_logged():
            log(*args, **kwargs)

    return log_packet


def _quiet_packets(handler: object) -> None:
    for name in ("log_sent_packet", "log_received_packet"):
        method = getattr(handler, name, None)
        if callable(method):
            setattr(handler, name, _quiet(method))


def lighten(conn: asyncssh.SSHClientConnection, sftp: asyncssh.SFTPClient) -> None:
    """Apply all three to ``conn`` and the channel carrying ``sftp`` (after the SFTP start,
    so the channel exists). An asyncssh without these methods is left as it is."""
    cipher = str(conn.get_extra_info("send_cipher") or "")
    send_packet = getattr(type(conn), "send_packet", None)
    if cipher and not chains_iv(cipher) and callable(send_packet):

        def send_without_ignore(pkttype: int, *args: bytes, handler: object = None) -> None:
            if pkttype == MSG_IGNORE and args == (_EMPTY_STRING,):
                return
            send_packet(conn, pkttype, *args, handler=handler)

        # asyncssh calls ``self.send_packet(MSG_IGNORE, ...)``: the instance attribute
        # is what it finds.
        conn.send_packet = send_without_ignore  # type: ignore[method-assign]
    _quiet_packets(conn)
    inpbuf = getattr(conn, "_inpbuf", None)
    if isinstance(inpbuf, bytes):
        conn._inpbuf = InputBuffer(inpbuf)  # type: ignore[attr-defined]
    channel = sftp_channel(sftp)
    if channel is not None:
        _quiet_packets(channel)


def sftp_channel(sftp: asyncssh.SFTPClient) -> object | None:
    """The SSH channel carrying ``sftp`` (asyncssh keeps it on the handler's writer)."""
    writer = getattr(getattr(sftp, "_handler", None), "_writer", None)
    return getattr(writer, "channel", None)
