"""An SFTP channel's incoming data decrypted in place and handed on without a copy.

asyncssh 2.24 copies every received SSH packet several times before the SFTP layer sees
its data: the packet's rest sliced from the receive buffer, joined to the first block's
tail, joined to the tag, decrypted (a fresh ``AESGCM`` object per packet), the payload
sliced out of the plaintext, then the channel data sliced out of the payload
(``get_string``).

On a connection whose receive cipher is AES-GCM, in its steady state (keys exchanged,
logged in, no compression, asyncssh's packet logging off), ``FastReceiver`` decrypts
each packet straight from the receive buffer (``lean.InputBuffer`` keeps the packet's
bytes contiguous: a memoryview, no copy; a packet whose first block came in an earlier
read is rejoined, one copy), with one ``AESGCM`` kept per key, and when the
packet is channel data for the SFTP channel it was installed on, hands the channel a
memoryview of the plaintext (the SFTP reader joins its packets from those views, as it
joined the slices before). Every other packet, and any packet that does not parse as
well-formed channel data for that channel, is left to asyncssh's own ``_recv_packet``
unchanged: the IV is only advanced once a packet is taken, so asyncssh decrypts it again
from the same state and raises the same errors (a bad tag included) as it always did.

Installed per connection as an instance attribute over ``_recv_packet`` (asyncssh looks
it up on the instance when a packet's header is parsed), like ``lean.py``'s changes; an
asyncssh without the attributes used here is left as it is. Measured in
benchmarks/README.md ("Session 25").
"""

from __future__ import annotations

from typing import Any

from asyncssh.constants import MSG_CHANNEL_DATA
from asyncssh.crypto import GCMCipher
from asyncssh.encryption import GCMEncryption
from cryptography.exceptions import InvalidTag
from cryptography.hazmat.primitives.ciphers.aead import AESGCM

from .lean import InputBuffer, packets_logged

#: AES-GCM's tag, asyncssh's ``_recv_macsize`` for it.
_TAG = 16
#: The packet's first block as asyncssh's header parse took it: the 4-byte length
#: (GCM's associated data) and the ciphertext's first 12 bytes.
_LENGTH = 4
_CONN_ATTRS = (
    "_recv_encryption", "_recv_blocksize", "_recv_macsize", "_recv_seq", "_pktlen",
    "_packet", "_inpbuf", "_decompressor", "_kex_complete", "_auth_complete",
    "_channels", "_recv_pkthdr", "_recv_packet", "_auth_final",
)
_CHANNEL_ATTRS = ("_recv_state", "_recv_window", "_accept_data")


class FastReceiver:
    """The ``_recv_packet`` of one asyncssh connection (see the module)."""

    def __init__(self, conn: Any, channel: Any) -> None:
        self._conn = conn
        self._channel = channel
        self._original = type(conn)._recv_packet
        self._cipher: GCMCipher | None = None
        self._aead: AESGCM | None = None
        self.fast_packets = 0  # data packets taken by the fast path (for the tests)

    def _aead_for(self, cipher: GCMCipher) -> AESGCM:
        if cipher is not self._cipher or self._aead is None:
            self._aead = AESGCM(cipher._key)
            self._cipher = cipher
        return self._aead

    def recv_packet(self) -> bool:
        conn = self._conn
        if not self._take():
            return bool(self._original(conn))
        return True

    def _take(self) -> bool:
        """Handle the packet whose header was parsed if it is this channel's data on a
        steady connection; False, with nothing changed, to leave it to asyncssh."""
        conn = self._conn
        encryption = conn._recv_encryption
        inpbuf = conn._inpbuf
        blocksize = conn._recv_blocksize
        if (type(encryption) is not GCMEncryption or conn._recv_macsize != _TAG
                or conn._decompressor or not (conn._kex_complete and conn._auth_complete)
                or packets_logged()
                or type(inpbuf) is not InputBuffer):
            return False
        cipher = encryption._cipher
        if type(cipher) is not GCMCipher:
            return False
        rem = _LENGTH + conn._pktlen + _TAG - blocksize
        if len(inpbuf) < rem:
            return False  # asyncssh's own answer: wait for more bytes
        data, start = inpbuf._data, inpbuf._start
        first = conn._packet
        if len(first) != blocksize:
            return False
        if start >= blocksize and data[start - blocksize:start] == first:
            # No bytes arrived between the header's parse and now: the packet is
            # whole in the buffer, decrypted where it lies.
            sealed: bytes | memoryview = \
                memoryview(data)[start - blocksize + _LENGTH:start + rem]
        else:
            # An arrival made a new buffer after the first block: one copy to rejoin.
            sealed = first[_LENGTH:] + memoryview(data)[start:start + rem]
        try:
            plain = self._aead_for(cipher).decrypt(cipher._iv, sealed, first[:_LENGTH])
        except InvalidTag:
            return False  # asyncssh decrypts it again and raises its MAC error
        if len(plain) < 10:
            return False
        end = len(plain) - plain[0]  # less the padding
        if end < 10 or plain[1] != MSG_CHANNEL_DATA:
            return False
        channel = conn._channels.get(int.from_bytes(plain[2:6], "big"))
        size = int.from_bytes(plain[6:10], "big")
        if channel is not self._channel or 10 + size != end \
                or channel._recv_state != "open" or size > channel._recv_window:
            return False  # asyncssh's own checks and errors
        cipher._update_iv()
        seq = conn._recv_seq
        conn._inpbuf = inpbuf[rem:]
        conn._packet = b""
        self.fast_packets += 1
        channel._accept_data(memoryview(plain)[10:end])
        conn._auth_final = True
        conn._recv_seq = (seq + 1) & 0xFFFFFFFF
        conn._recv_handler = conn._recv_pkthdr
        return True


def install(conn: Any, channel: Any) -> FastReceiver | None:
    """Give ``conn`` the fast receive path for ``channel``'s data; None if this asyncssh
    lacks an attribute it needs."""
    if channel is None or not all(hasattr(conn, name) for name in _CONN_ATTRS) \
            or not all(hasattr(channel, name) for name in _CHANNEL_ATTRS):
        return None
    receiver = FastReceiver(conn, channel)
    conn._recv_packet = receiver.recv_packet
    return receiver
