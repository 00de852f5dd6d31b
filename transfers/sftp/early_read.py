"""A file's first READ (and the FSTAT that sizes the rest) written right behind its
OPEN, for the handle OpenSSH's sftp-server will give that OPEN (``handles.py``): the
first bytes come back one round trip sooner, on every file read (at 60 ms, a small
file's source side takes one round trip instead of two).

Which handle: the READ's task is made right after the OPEN's task, so it runs right
after it (asyncio runs ready tasks in the order they were made, and nothing can come
between two made one after the other): the OPEN has just been written, and the
handle table's last told index is that OPEN's, however many other files of the channel
opened or closed before it. A guess made any earlier (when the tasks are made) is
wrong as soon as another file on the channel opens or closes first: on a busy channel,
most of the time.

Why a guess is safe: sftp-server handles a channel's packets in order, so a READ
written after the OPEN is handled after it. If the OPEN's handle is the told one,
nothing could have closed it in between (nobody else holds it), so the READ read this
file. If it is not (the table was wrong, the OPEN failed), the READ and FSTAT went to
some other handle: on OpenSSH both are free of side effects (a READ names its offset;
a folder's or a write-only file's handle refuses it), and their answers are dropped
unused. Unlike a READDIR (``ChannelSession.list``), no "alone on the channel" rule is
needed.
"""

from __future__ import annotations

import asyncio
from typing import TYPE_CHECKING

import asyncssh
from asyncssh.constants import FILEXFER_ATTR_DEFINED_V4

if TYPE_CHECKING:
    from .channel import ChannelSession

#: The longest READ OpenSSH's sftp-server answers whole (256 KiB less 1 KiB, what its
#: ``limits@openssh.com`` tells): asked by an early READ sent before that answer came
#: back (a session's first file). A longer one is cut to the server's own bound (64 KiB
#: in releases before the limits extension), never refused: the read asks the rest.
OPENSSH_READ_LEN = 256 * 1024 - 1024


class NoGuess(Exception):
    """The table told nothing when the READ's turn came: nothing was asked."""


class EarlyRead:
    """The READ (and, to the end of the file, the FSTAT) asked before the OPEN was
    answered. Made right after the OPEN's task (see the module's docstring)."""

    def __init__(self, session: ChannelSession, *, path: str, offset: int, size: int,
                 fstat: bool) -> None:
        handler = session._sftp._handler
        table = session._handles
        #: The handle asked of (None until the READ's task ran, or if no guess).
        self.handle: bytes | None = None
        self.offset = offset
        self.size = size

        # Each request is made inside its task: a task cancelled before it ran leaves no
        # never-awaited coroutine behind. The READ's task runs right after the OPEN's.
        async def read() -> bytes:
            handle = self.handle = table.last_told()
            if handle is None:
                raise NoGuess
            try:
                data, _at_end = await handler.read(handle, offset, size)
            except asyncssh.SFTPEOFError:
                return b""
            return data

        async def read_bounded() -> bytes:
            return await session._bounded(read(), path)

        async def attrs() -> asyncssh.SFTPAttrs:
            # Runs right after the READ's task: the handle it asked of.
            if self.handle is None:
                raise NoGuess
            return await session._bounded(
                handler.fstat(self.handle, FILEXFER_ATTR_DEFINED_V4), path)

        self.read: asyncio.Task[bytes] = asyncio.ensure_future(read_bounded())
        self.attrs: asyncio.Task[asyncssh.SFTPAttrs] | None = (
            asyncio.ensure_future(attrs()) if fstat else None)

    def matches(self, fh: asyncssh.SFTPClientFile) -> bool:
        """Whether the OPEN got the handle asked of (then the answers are this file's).
        ``_handle`` is asyncssh's own name for the handle an SFTPClientFile holds."""
        return self.handle is not None and fh._handle == self.handle

    async def drop(self) -> None:
        """Cancel what is left and wait for it to end (answers and errors ignored)."""
        tasks = [t for t in (self.read, self.attrs) if t is not None and not t.done()]
        for task in tasks:
            task.cancel()
        if tasks:
            await asyncio.gather(*tasks, return_exceptions=True)
        for task in (self.read, self.attrs):
            if task is not None and task.done() and not task.cancelled():
                task.exception()  # retrieved: a dropped answer's error is not news
