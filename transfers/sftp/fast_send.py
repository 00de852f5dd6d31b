"""An SFTP channel's data sent with two copies of each byte on our side instead of ~eleven.

asyncssh 2.24 copies a channel's outgoing data many times on its way to the socket: the
channel's ``write`` keeps a ``bytearray`` of it; each SSH packet of it (at most 32 KiB,
OpenSSH's limit) is then sliced out, length-prefixed (``String``), prefixed with the
channel number, then the packet type, then the padding length, suffixed with the
padding, encrypted (``AESGCM.encrypt``, a fresh ``AESGCM`` object per packet), split
from its tag (a slice), prefixed with the length header and suffixed with the tag: with
the corked transport's join, about eleven copies of every byte uploaded.

On a connection whose send cipher is AES-GCM and which is in its steady state (keys
exchanged, logged in, no compression, no re-key due, asyncssh's packet logging off),
``FastSender`` builds each channel-data packet's plaintext in one join straight from
the written pieces (views of the caller's ``bytes``, no slice copy; ``write_parts``
takes an SFTP request's header and data without joining them first, see
``write_request.py``; a mutable buffer is copied once, as the caller may refill it),
encrypts it with one ``AESGCM`` kept per key, and hands the header and the ciphertext
to the corked transport, which joins what a turn of the loop wrote
(``transfers/cork.py``). Every other packet, and
every data packet outside that steady state (a re-key due or under way, a CBC or
ChaCha cipher, compression, packet logging), goes through asyncssh's own path as
before: the fast path is the same SSH packet (RFC 4253 section 6, RFC 5647 for GCM),
only assembled once. The bytes on the wire differ only in the random padding.

Installed per channel (instance attributes over asyncssh's ``write`` and
``_flush_send_buf``, the only users of its send buffer besides its reset on close), like
``lean.py``'s changes; an asyncssh without the attributes used here is left as it is.
Measured in benchmarks/README.md ("Session 25").
"""

from __future__ import annotations

import os
import time
from collections.abc import Sequence
from typing import Any

from asyncssh.constants import MSG_CHANNEL_DATA, MSG_CHANNEL_EXTENDED_DATA
from asyncssh.crypto import GCMCipher
from asyncssh.encryption import GCMEncryption
from asyncssh.packet import String, UInt32
from cryptography.hazmat.primitives.ciphers.aead import AESGCM

from ..cork import CorkedTransport
from .lean import packets_logged

#: The attributes of asyncssh's connection and channel this module reads or sets.
_CONN_ATTRS = (
    "_send_encryption", "_send_enchdrlen", "_send_blocksize", "_send_seq", "_compressor",
    "_kex_complete", "_auth_complete", "_rekey_bytes", "_rekey_bytes_sent",
    "_rekey_seconds", "_rekey_time", "_transport", "_strict_kex",
)
_CHANNEL_ATTRS = (
    "_send_buf", "_send_buf_len", "_send_window", "_send_pktsize", "_send_chan",
    "_send_state", "_encoding", "_encoder", "_write_datatypes", "_conn",
    "_pause_resume_writing", "send_packet",
)


class _Pending:
    """Written data not yet sent: the caller's pieces, as views, in order."""

    __slots__ = ("left", "parts")

    def __init__(self, parts: list[memoryview]) -> None:
        self.parts = parts
        self.left = sum(map(len, parts))

    def __len__(self) -> int:
        return self.left

    def take(self, size: int) -> list[memoryview]:
        """The next ``size`` bytes, as views of the pieces (no copy)."""
        out: list[memoryview] = []
        self.left -= size
        parts = self.parts
        while size:
            part = parts[0]
            if len(part) <= size:
                out.append(part)
                size -= len(part)
                del parts[0]
            else:
                out.append(part[:size])
                parts[0] = part[size:]
                size = 0
        return out


def _kept(data: Any) -> memoryview:
    """A view of ``data``, kept until sent: ``bytes`` or a view of ``bytes`` as it is
    (it never changes); anything else copied first (the caller may refill it)."""
    if type(data) is bytes:
        return memoryview(data)
    if type(data) is memoryview and type(data.obj) is bytes:
        return data
    return memoryview(bytes(data))


class FastSender:
    """The ``write`` and ``_flush_send_buf`` of one asyncssh channel (see the module)."""

    def __init__(self, channel: Any) -> None:
        self._channel = channel
        self._conn = channel._conn
        self._cipher: GCMCipher | None = None
        self._aead: AESGCM | None = None
        self.fast_packets = 0  # data packets sent by the fast path (for the tests)

    # -- the channel's side -------------------------------------------------------
    def write(self, data: Any, datatype: Any = None) -> None:
        """asyncssh's ``write``: the same checks, the data kept without a copy."""
        ch = self._channel
        if ch._encoding and data:
            data = ch._encoder.encode(data)
        self._write([data], datatype)

    def write_parts(self, parts: Sequence[bytes | memoryview]) -> None:
        """Write the concatenation of ``parts`` (no join on our side)."""
        self._write(parts, None)

    def _write(self, parts: Sequence[Any], datatype: Any) -> None:
        ch = self._channel
        if ch._send_state != "open":
            raise BrokenPipeError("Channel not open for sending")
        if datatype is not None and datatype not in ch._write_datatypes:
            raise OSError("Invalid extended data type")
        pending = _Pending([_kept(part) for part in parts if len(part)])
        if not pending.left:
            return
        ch._send_buf.append((pending, datatype))
        ch._send_buf_len += pending.left
        self.flush()

    def flush(self) -> None:
        """asyncssh's ``_flush_send_buf`` for this channel's buffer."""
        ch = self._channel
        send_buf = ch._send_buf
        while send_buf and ch._send_window:
            entry, datatype = send_buf[0]
            size = min(ch._send_window, ch._send_pktsize, len(entry))
            pieces = entry.take(size)
            if not len(entry):
                del send_buf[0]
            ch._send_buf_len -= size
            ch._send_window -= size
            if datatype is not None:
                ch.send_packet(MSG_CHANNEL_EXTENDED_DATA, UInt32(datatype),
                               String(b"".join(pieces)))
            elif not self._send_fast(ch._send_chan, pieces, size):
                ch.send_packet(MSG_CHANNEL_DATA, String(b"".join(pieces)))
        ch._pause_resume_writing()
        if not send_buf:
            # asyncssh's end of flush: a pending EOF or close goes out now.
            if ch._send_state in ("eof_pending", "close_pending"):
                type(ch)._flush_send_buf(ch)

    # -- the connection's side ----------------------------------------------------
    def _aead_for(self, cipher: GCMCipher) -> AESGCM:
        if cipher is not self._cipher or self._aead is None:
            self._aead = AESGCM(cipher._key)
            self._cipher = cipher
        return self._aead

    def _send_fast(self, chan: int, pieces: list[memoryview], size: int) -> bool:
        """Send one channel-data packet of ``pieces`` (``size`` bytes) if the connection
        is in its steady state (see the module); False, nothing sent, otherwise."""
        conn = self._conn
        encryption = conn._send_encryption
        transport = conn._transport
        if (type(encryption) is not GCMEncryption or conn._compressor
                or not (conn._kex_complete and conn._auth_complete)
                or conn._rekey_bytes_sent >= conn._rekey_bytes
                or (conn._rekey_seconds and time.monotonic() >= conn._rekey_time)
                or packets_logged()
                or not isinstance(transport, CorkedTransport)):
            return False
        cipher = encryption._cipher
        if type(cipher) is not GCMCipher:
            return False
        payload_len = 9 + size  # type byte, recipient channel, data length, data
        blocksize = conn._send_blocksize
        padlen = -(conn._send_enchdrlen + payload_len) % blocksize
        if padlen < 4:
            padlen += blocksize
        pktlen = 1 + payload_len + padlen
        header = UInt32(pktlen)
        plaintext = b"".join((
            bytes((padlen, MSG_CHANNEL_DATA)), UInt32(chan), UInt32(size), *pieces,
            os.urandom(padlen),
        ))
        sealed = self._aead_for(cipher).encrypt(cipher._iv, plaintext, header)
        cipher._update_iv()
        transport.write(header)
        transport.write(sealed)
        self.fast_packets += 1
        conn._send_seq = (conn._send_seq + 1) & 0xFFFFFFFF
        conn._rekey_bytes_sent += pktlen
        return True


def install(channel: Any) -> FastSender | None:
    """Give ``channel`` (an asyncssh ``SSHClientChannel``) the fast send path; None if
    this asyncssh lacks an attribute it needs."""
    conn = getattr(channel, "_conn", None)
    if conn is None or not all(hasattr(channel, name) for name in _CHANNEL_ATTRS) \
            or not all(hasattr(conn, name) for name in _CONN_ATTRS) \
            or not hasattr(type(channel), "_flush_send_buf"):
        return None
    sender = FastSender(channel)
    channel.write = sender.write
    channel.write_parts = sender.write_parts
    channel._flush_send_buf = sender.flush
    return sender
