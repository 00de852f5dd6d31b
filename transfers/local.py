"""The local disk as a store (``file://`` URLs and plain paths).

File I/O runs in worker threads (``asyncio.to_thread``) in pieces of ``PIECE_SIZE`` so
the event loop never blocks on the disk. Symlinks are never followed when listing: a
symlink is reported as ``EntryKind.LINK`` (the engine reports and skips it), so a
symlink loop cannot make the walk run forever and a link cannot lead the copy outside
the source root.
"""

from __future__ import annotations

import asyncio
import errno
import os
import stat as statmod
from collections.abc import AsyncIterable, AsyncIterator, Callable
from pathlib import Path
from typing import TypeVar

from .backend import (
    PIECE_SIZE,
    BackendError,
    Capabilities,
    Entry,
    EntryKind,
    NoSpaceError,
    NotFoundError,
    OffsetWrites,
    PermanentError,
    PermissionDeniedError,
    check_relpath,
)
from .endpoint import Endpoint

_LIST_BATCH = 512
T = TypeVar("T")


def _translate(exc: OSError, path: str) -> BackendError:
    reason = exc.strerror or str(exc)
    if exc.errno in (errno.ENOENT, errno.ENOTDIR):
        return NotFoundError(f"{path or '.'}: not found", path=path)
    if exc.errno in (errno.EACCES, errno.EPERM, errno.EROFS):
        return PermissionDeniedError(f"{path or '.'}: permission denied ({reason})", path=path)
    if exc.errno in (errno.ENOSPC, errno.EDQUOT):
        return NoSpaceError(f"{path or '.'}: no space left on the destination", path=path)
    return PermanentError(f"{path or '.'}: {reason}", path=path)


async def _to_thread_to_the_end(func: Callable[..., T], *args: object) -> T:
    """``func(*args)`` in a worker thread; a cancel waits until the call has returned
    before it is raised. A thread cannot be stopped: without this, a cancelled write's
    ``pwrite`` could land after its writer returned (after the retry truncated the file,
    or in another file that reused the descriptor), and the engine reopens a file for a
    retry only once every writer of the failed attempt has returned."""
    call = asyncio.ensure_future(asyncio.to_thread(func, *args))
    cancelled = False
    while not call.done():
        try:
            await asyncio.wait({call})
        except asyncio.CancelledError:
            cancelled = True
    if cancelled:
        if not call.cancelled():
            call.exception()  # retrieved: the cancel is what the caller gets
        raise asyncio.CancelledError()
    return call.result()


def _entry_from_stat(rel: str, st: os.stat_result) -> Entry:
    if statmod.S_ISREG(st.st_mode):
        kind = EntryKind.FILE
    elif statmod.S_ISDIR(st.st_mode):
        kind = EntryKind.DIR
    elif statmod.S_ISLNK(st.st_mode):
        kind = EntryKind.LINK
    else:
        kind = EntryKind.OTHER
    size = st.st_size if kind is EntryKind.FILE else 0
    return Entry(path=rel, kind=kind, size=size, mtime=st.st_mtime_ns / 1e9)


class LocalSession:
    def __init__(self, root: Path) -> None:
        self._root = root

    def _abs(self, path: str) -> Path:
        return self._root / check_relpath(path) if path else self._root

    async def stat(self, path: str) -> Entry:
        full = self._abs(path)
        try:
            st = await asyncio.to_thread(os.lstat, full)
        except OSError as exc:
            raise _translate(exc, path) from None
        return _entry_from_stat(path, st)

    async def list(self, path: str) -> AsyncIterator[Entry]:
        full = self._abs(path)

        def scan() -> list[tuple[str, os.stat_result]]:
            out = []
            with os.scandir(full) as it:
                for de in it:
                    try:
                        out.append((de.name, de.stat(follow_symlinks=False)))
                    except FileNotFoundError:
                        continue  # vanished between readdir and stat
            return out

        try:
            items = await asyncio.to_thread(scan)
        except OSError as exc:
            raise _translate(exc, path) from None
        for name, st in items:
            yield _entry_from_stat(f"{path}/{name}" if path else name, st)

    async def read(
        self, path: str, *, offset: int = 0, length: int | None = None
    ) -> AsyncIterator[bytes]:
        full = self._abs(path)
        try:
            fh = await asyncio.to_thread(open, full, "rb", buffering=0)
        except OSError as exc:
            raise _translate(exc, path) from None
        try:
            remaining = length
            pos = offset
            while remaining is None or remaining > 0:
                want = PIECE_SIZE if remaining is None else min(PIECE_SIZE, remaining)
                try:
                    piece = await asyncio.to_thread(os.pread, fh.fileno(), want, pos)
                except OSError as exc:
                    raise _translate(exc, path) from None
                if not piece:
                    break
                pos += len(piece)
                if remaining is not None:
                    remaining -= len(piece)
                yield piece
        finally:
            fh.close()

    async def write(
        self,
        path: str,
        data: AsyncIterable[bytes],
        *,
        offset: int = 0,
        create: bool = True,
        acked: Callable[[int], None] | None = None,
    ) -> int:
        full = self._abs(path)
        if create and offset:
            raise ValueError("create=True writes start at offset 0")
        flags = os.O_WRONLY | (os.O_CREAT | os.O_TRUNC if create else 0)
        try:
            fd = await asyncio.to_thread(os.open, full, flags, 0o644)
        except OSError as exc:
            raise _translate(exc, path) from None
        written = 0
        try:
            pos = offset
            async for piece in data:
                view = memoryview(piece)
                while view:
                    try:
                        n = await _to_thread_to_the_end(os.pwrite, fd, view, pos)
                    except OSError as exc:
                        raise _translate(exc, path) from None
                    view = view[n:]
                    pos += n
                    written += n
                # pwrite returned: the bytes are in the kernel and survive a kill -9.
                if acked is not None:
                    acked(written)
            try:
                await asyncio.to_thread(os.fsync, fd)
            except OSError as exc:
                raise _translate(exc, path) from None
        finally:
            os.close(fd)
        return written

    async def mkdir(self, path: str) -> None:
        try:
            await asyncio.to_thread(os.makedirs, self._abs(path), exist_ok=True)
        except OSError as exc:
            raise _translate(exc, path) from None

    async def rename(self, src: str, dst: str) -> None:
        try:
            await asyncio.to_thread(os.replace, self._abs(src), self._abs(dst))
        except OSError as exc:
            raise _translate(exc, src) from None

    async def remove(self, path: str) -> None:
        try:
            await asyncio.to_thread(os.unlink, self._abs(path))
        except OSError as exc:
            raise _translate(exc, path) from None

    async def rmdir(self, path: str) -> None:
        try:
            await asyncio.to_thread(os.rmdir, self._abs(path))
        except OSError as exc:
            raise _translate(exc, path) from None

    async def set_mtime(self, path: str, mtime: float) -> None:
        ns = round(mtime * 1e9)
        try:
            await asyncio.to_thread(os.utime, self._abs(path), ns=(ns, ns))
        except OSError as exc:
            raise _translate(exc, path) from None

    async def place(self, temp: str, final: str, *, mtime: float | None) -> None:
        def both() -> None:
            if mtime is not None:
                ns = round(mtime * 1e9)
                try:
                    os.utime(self._abs(temp), ns=(ns, ns))
                except OSError as exc:
                    raise _translate(exc, temp) from None
            try:
                os.replace(self._abs(temp), self._abs(final))
            except OSError as exc:
                raise _translate(exc, temp) from None

        await asyncio.to_thread(both)  # one thread hop for both

    async def close(self) -> None:
        return None


class LocalStore:
    def __init__(self, endpoint: Endpoint) -> None:
        self._root = Path(endpoint.path)
        self.display = endpoint.display

    async def connect(self) -> LocalSession:
        return LocalSession(self._root)

    async def capabilities(self) -> Capabilities:
        return Capabilities(
            ranged_read=True,
            bounded_read=True,
            offset_writes=OffsetWrites.ANY,
            parallel_writes=True,
            set_mtime=True,
            rename=True,
            rename_replaces=True,
            ops_per_session=64,
            mtime_resolution=1e-6,
            notes=("local disk",),
        )

    async def aclose(self) -> None:
        return None
