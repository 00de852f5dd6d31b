"""Which handle OpenSSH's sftp-server will give a channel's next OPEN or OPENDIR.

sftp-server keeps its handles in a table: a new one takes the most recently freed index
(its free list is a stack), else the next index past the end, and it sends the index as
four bytes. It handles a channel's packets in order. So a client that sees every OPEN,
OPENDIR and CLOSE of a channel as it is written can tell the handle each will get:
``HandleTable`` does, and checks each answer against what it told. A listing can then
ask its READDIRs right behind its OPENDIR (``ChannelSession.list``), one round trip
sooner, where no other folder is open on the channel (so a READDIR of a wrong handle
can only fail); its answers are used only if the OPENDIR's handle is the guessed one.

Any surprise (an answer that is not the handle told, an OPEN that failed after the
table counted it, a CLOSE that failed) and the table says nothing more for the
channel's life (``known`` False): a guess is then never made, as on any other server.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from typing import Any, TypeVar

T = TypeVar("T")


def handle_bytes(index: int) -> bytes:
    """The handle sftp-server sends for table index ``index``."""
    return index.to_bytes(4, "big")


class HandleTable:
    """The server's handle table as the client's writes shape it."""

    def __init__(self) -> None:
        self._size = 0
        self._free: list[int] = []
        #: False once an answer surprised it: it tells nothing more.
        self.known = True
        #: The index told to the OPEN or OPENDIR written last (None: none yet).
        self._last_told: int | None = None

    def next_handle(self) -> bytes | None:
        """The handle the next OPEN or OPENDIR written will get (None: not known)."""
        if not self.known:
            return None
        return handle_bytes(self._free[-1] if self._free else self._size)

    def last_told(self) -> bytes | None:
        """The handle the OPEN or OPENDIR written last will get (None: not known). Asked
        by a task that runs right after the task that wrote an OPEN (tasks made one
        after the other run one after the other), it is that OPEN's handle, whatever
        was written before: ``early_read.py``."""
        if not self.known or self._last_told is None:
            return None
        return handle_bytes(self._last_told)

    def _take(self) -> int:
        if self._free:
            told = self._free.pop()
        else:
            told = self._size
            self._size += 1
        self._last_told = told
        return told

    async def opening(self, request: Awaitable[bytes]) -> bytes:
        """Await an OPEN or OPENDIR whose coroutine writes it on its first step (this
        one's): the index is counted taken as it is written, and the answer checked."""
        told = self._take()
        try:
            handle = await request
        except BaseException:
            # Failed (nothing taken at the server) or cancelled (its answer unknown).
            self.known = False
            raise
        if handle != handle_bytes(told):
            self.known = False
        return handle

    async def closing(self, handle: bytes, request: Awaitable[T]) -> T:
        """Await a CLOSE written on its first step: the index is free from then on."""
        if len(handle) == 4:
            self._free.append(int.from_bytes(handle, "big"))
        else:
            self.known = False
        try:
            return await request
        except BaseException:
            self.known = False  # not freed, or not known to be
            raise


def watch_handles(handler: Any, table: HandleTable) -> None:
    """Route ``handler``'s OPEN, OPENDIR and CLOSE requests (asyncssh's
    ``SFTPClientHandler``: its files ask it too) through ``table``."""
    for name in ("open", "open56", "opendir"):
        own = getattr(handler, name, None)
        if own is None:
            continue

        def asking(*args: Any, _own: Callable[..., Awaitable[bytes]] = own,
                   **kwargs: Any) -> Awaitable[bytes]:
            return table.opening(_own(*args, **kwargs))

        setattr(handler, name, asking)
    own_close = getattr(handler, "close", None)
    if own_close is None:
        table.known = False
        return

    def closing(handle: bytes, *args: Any, **kwargs: Any) -> Awaitable[Any]:
        return table.closing(handle, own_close(handle, *args, **kwargs))

    handler.close = closing
