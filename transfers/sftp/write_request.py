"""One SFTP WRITE request with one copy of its data on our side of the channel.

asyncssh's ``SFTPClientFile.write`` copies a request's data four times before the
channel sees it (``String(data)``, a join of the arguments, the type byte prepended, the
length prefixed). Here the packet is one join of a small header and the data (none at
all on a channel with ``fast_send.py``'s ``write_parts``: its SSH packets are built
from the pieces), then written to the channel like asyncssh does, and the reply is
handled like asyncssh's ``_make_request`` does (a STATUS reply; an error status raises the usual
``SFTPError``). This uses asyncssh's request table (pinned minor, see pyproject);
if a future asyncssh lacks it, ``write_at`` falls back to ``fh.write``.
"""

from __future__ import annotations

import asyncssh
from asyncssh.constants import FXP_STATUS, FXP_WRITE
from asyncssh.packet import String, UInt32, UInt64


def _handler_of(fh: asyncssh.SFTPClientFile) -> object | None:
    handler = getattr(fh, "_handler", None)
    needed = ("_requests", "_next_pktid", "_writer", "_loop", "_packet_handlers")
    return handler if all(hasattr(handler, name) for name in needed) else None


async def write_at(fh: asyncssh.SFTPClientFile, data: bytes | memoryview, offset: int) -> None:
    """Write ``data`` at ``offset`` in the open file ``fh``, one request."""
    handler = _handler_of(fh)
    handle = getattr(fh, "_handle", None)
    if handler is None or not isinstance(handle, bytes):
        await fh.write(data, offset)  # type: ignore[arg-type]
        return
    h: asyncssh.SFTPClientHandler = handler  # type: ignore[assignment]
    writer = h._writer  # type: ignore[attr-defined]
    if not writer:
        raise asyncssh.SFTPNoConnection("Connection not open")
    pktid = h._next_pktid  # type: ignore[attr-defined]
    h._next_pktid = (pktid + 1) & 0xFFFFFFFF  # type: ignore[attr-defined]
    waiter = h._loop.create_future()  # type: ignore[attr-defined]
    h._requests[pktid] = waiter  # type: ignore[attr-defined]
    header = bytes((FXP_WRITE,)) + UInt32(pktid) + String(handle) + UInt64(offset) \
        + UInt32(len(data))
    channel = writer.channel
    if not channel.is_closing():
        # Like asyncssh: a closing channel fails every waiter when it is gone.
        length = UInt32(len(header) + len(data))
        write_parts = getattr(channel, "write_parts", None)  # fast_send.py's, no join
        if write_parts is not None:
            write_parts((length, header, data))
        else:
            writer.write(b"".join((length, header, data)))
    resptype, resp = await waiter
    if resptype != FXP_STATUS:
        raise asyncssh.SFTPBadMessage(f"Unexpected response type: {resptype}")
    h._packet_handlers[resptype](h, resp)  # type: ignore[attr-defined]
