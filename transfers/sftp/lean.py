"""Two per-packet costs of asyncssh that buy nothing here, removed from one connection.

1. **The empty ``SSH_MSG_IGNORE`` before every packet.** asyncssh 2.24's
   ``SSHConnection.send_packet`` sends an empty IGNORE message ahead of every encrypted
   packet: the countermeasure against the chosen-plaintext attack on SSH's CBC mode
   (the next packet's IV is the last cipher block already sent; RFC 4251 section
   9.3.1). It doubles the packets and encryptions of an upload. With a counter-based
   cipher (AES-GCM, ChaCha20-Poly1305, AES-CTR) there is no IV chaining to protect and
   OpenSSH sends no such messages; this connection then skips the empty IGNOREs, and
   keeps them whenever the negotiated cipher is a CBC one. The cipher is chosen once
   per connection from fixed lists (ours and the server's), so a re-key picks it again.
2. **Log formatting per packet.** ``SSHPacketLogger._log_packet`` builds the packet's
   name and a "N bytes" string for every packet sent or received, then hands them to a
   logger that drops them unless asyncssh's debug level is 3. Here the connection and
   its SFTP channel format nothing unless that level is set (``--debug`` with
   ``asyncssh.set_debug_level(3)`` still logs every packet).

Both are done on the connection object (instance attributes over the class methods),
never by changing asyncssh's classes: another connection in the same process is not
touched. The bytes on the wire are otherwise the same. Measured in benchmarks/README.md
("Profile: SFTP large files").
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import asyncssh
from asyncssh.constants import MSG_IGNORE
from asyncssh.logging import SSHLogger

#: ``String(b"")``: the only argument of asyncssh's inserted IGNORE message.
_EMPTY_STRING = b"\0\0\0\0"
#: asyncssh logs a packet only at this debug level (``SSHLogger.packet``).
_PACKET_DEBUG_LEVEL = 3


def chains_iv(cipher: str) -> bool:
    """True for a cipher whose packets chain their IV (CBC): the IGNORE stays."""
    return "cbc" in cipher.lower()


def _quiet(log: Callable[..., None]) -> Callable[..., None]:
    """``log`` only when asyncssh would print packets; nothing formatted otherwise."""

    def log_packet(*args: Any, **kwargs: Any) -> None:
        if SSHLogger._debug_level >= _PACKET_DEBUG_LEVEL:
            log(*args, **kwargs)

    return log_packet


def _quiet_packets(handler: object) -> None:
    for name in ("log_sent_packet", "log_received_packet"):
        method = getattr(handler, name, None)
        if callable(method):
            setattr(handler, name, _quiet(method))


def lighten(conn: asyncssh.SSHClientConnection, sftp: asyncssh.SFTPClient) -> None:
    """Apply both to ``conn`` and the channel carrying ``sftp`` (after the SFTP start,
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
    writer = getattr(getattr(sftp, "_handler", None), "_writer", None)
    channel = getattr(writer, "channel", None)
    if channel is not None:
        _quiet_packets(channel)
