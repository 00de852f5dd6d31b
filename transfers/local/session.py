"""``LocalStore`` and ``LocalSession``: the Session protocol on the local disk, every
path opened through ``nofollow.Walker`` (no link followed below the root), file I/O in
worker threads in pieces of ``PIECE_SIZE`` so the event loop never blocks on the disk."""

from __future__ import annotations

import asyncio
import os
import stat as statmod
import sys
from collections.abc import AsyncIterable, AsyncIterator, Callable
from functools import partial
from pathlib import Path
from typing import TypeVar

from ..backend import (
    PIECE_SIZE,
    Acked,
    BackendError,
    Capabilities,
    Entry,
    EntryKind,
    NameRefusedError,
    NotFoundError,
    PermanentError,
    check_listed,
    check_relpath,
    link_refusal,
)
from ..endpoint import Endpoint
from ..tree import LOCAL_TIME_RESOLUTION
from .nofollow import (
    Walker,
    check_regular,
    create_file,
    open_checked,
    translate,
)

T = TypeVar("T")


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


def kind_of(st: os.stat_result) -> EntryKind:
    if statmod.S_ISREG(st.st_mode):
        return EntryKind.FILE
    if statmod.S_ISDIR(st.st_mode):
        return EntryKind.DIR
    if statmod.S_ISLNK(st.st_mode):
        return EntryKind.LINK
    return EntryKind.OTHER


def entry_from_stat(rel: str, st: os.stat_result) -> Entry:
    kind = kind_of(st)
    size = st.st_size if kind is EntryKind.FILE else 0
    return Entry(path=rel, kind=kind, size=size, mtime=st.st_mtime_ns / 1e9,
                 mode=statmod.S_IMODE(st.st_mode), file_id=(st.st_dev, st.st_ino))


async def _in_thread(path: str, call: Callable[[], T], root: Path | None = None) -> T:
    """``call()`` in a worker thread (the event loop never blocks on the disk), its
    ``OSError`` translated for ``path`` (the root named by ``root``)."""
    try:
        return await asyncio.to_thread(call)
    except OSError as exc:
        raise translate(exc, path, root) from None
    except UnicodeEncodeError:
        # A name from another store that this system's file name charset cannot hold
        # ('日本.txt' under ISO-8859-1): refused by name, not an internal error.
        charset = sys.getfilesystemencoding()
        raise NameRefusedError(
            f"{path}: this name cannot be written in this system's file name charset "
            f"({charset}); run fsmove under a UTF-8 locale (LC_ALL=C.UTF-8)",
            path=path) from None


class LocalSession:
    def __init__(self, root: Path) -> None:
        self._root = root
        self._walker = Walker(root)

    @property
    def usable(self) -> bool:
        """Always: no connection to lose (every operation opens what it needs)."""
        return True

    async def stat(self, path: str) -> Entry:
        check_relpath(path)

        def one() -> os.stat_result:
            if not path:
                return os.lstat(self._root)
            with self._walker.parent(path) as (dfd, name):
                return os.lstat(name, dir_fd=dfd)

        return entry_from_stat(path, await _in_thread(path, one, self._root))

    async def list(self, path: str) -> AsyncIterator[Entry]:
        check_relpath(path)

        def scan() -> list[tuple[str, os.stat_result]]:
            out = []
            with self._walker.folder(path) as fd:
                # scandir on a descriptor (it reads a dup of it): entries are lstat'ed
                # relative to the folder opened, not re-resolved from a path.
                with os.scandir(fd) as it:
                    for de in it:
                        try:
                            out.append((de.name, de.stat(follow_symlinks=False)))
                        except FileNotFoundError:
                            continue  # vanished between readdir and stat
            return out

        for name, st in await _in_thread(path, scan, self._root):
            yield entry_from_stat(f"{path}/{name}" if path else name, st)

    async def read(
        self, path: str, *, offset: int = 0, length: int | None = None,
        expect: Entry | None = None,
    ) -> AsyncIterator[bytes]:
        check_relpath(path)

        def listed(st: os.stat_result) -> None:
            if expect is not None:
                check_listed(path, expect, kind=kind_of(st),
                             size=st.st_size if statmod.S_ISREG(st.st_mode) else 0,
                             mtime=st.st_mtime_ns / 1e9, file_id=(st.st_dev, st.st_ino))
            elif not statmod.S_ISREG(st.st_mode):
                raise PermanentError(f"{path}: is not a regular file", path=path)

        # O_NONBLOCK: a fifo swapped in never blocks the open (no effect on files).
        fd = await _in_thread(path, partial(open_checked, self._walker, path,
                                            os.O_RDONLY | os.O_NONBLOCK, listed))
        try:
            remaining = length
            pos = offset
            while remaining is None or remaining > 0:
                want = PIECE_SIZE if remaining is None else min(PIECE_SIZE, remaining)
                piece = await _in_thread(path, partial(os.pread, fd, want, pos))
                if not piece:
                    break
                pos += len(piece)
                if remaining is not None:
                    remaining -= len(piece)
                yield piece
        finally:
            os.close(fd)

    async def write(self, path: str, data: AsyncIterable[bytes], *, offset: int = 0,
                    create: bool = True, acked: Acked | None = None,
                    private: bool = False) -> int:
        # ``private``: every new file is made 0600 here (``nofollow.PRIVATE``).
        check_relpath(path)
        if create and offset:
            raise ValueError("create=True writes start at offset 0")

        def opened() -> int:
            if create:
                return create_file(self._walker, path)
            return open_checked(self._walker, path, os.O_WRONLY,
                                partial(check_regular, rel=path, single_link=True))

        fd = await _in_thread(path, opened, self._root)
        written = 0
        try:
            pos = offset
            async for piece in data:
                view = memoryview(piece)
                while view:
                    try:
                        n = await _to_thread_to_the_end(os.pwrite, fd, view, pos)
                    except OSError as exc:
                        raise translate(exc, path) from None
                    view = view[n:]
                    pos += n
                    written += n
                # pwrite returned: the bytes are in the kernel and survive a kill -9.
                if acked is not None:
                    acked(written)
            await _in_thread(path, partial(os.fsync, fd))
        finally:
            os.close(fd)
        return written

    async def mkdir(self, path: str, *, mode: int | None = None) -> None:
        check_relpath(path)

        def make() -> None:
            if not path:
                try:
                    os.makedirs(self._root, exist_ok=True)  # the root: the user's own path
                except NotADirectoryError:
                    raise _file_above(Path(self._root)) from None
                return
            with self._walker.folder(path, create=True, mode=mode):
                pass

        await _in_thread(path, make, self._root)

    async def rename(self, src: str, dst: str) -> None:
        check_relpath(src)
        check_relpath(dst)

        def move() -> None:
            with self._walker.parent(src) as (sfd, sname), \
                    self._walker.parent(dst) as (dfd, dname):
                if statmod.S_ISLNK(os.lstat(sname, dir_fd=sfd).st_mode):
                    raise link_refusal(src, action="rename")
                os.rename(sname, dname, src_dir_fd=sfd, dst_dir_fd=dfd)

        await _in_thread(src, move, self._root)

    async def remove(self, path: str) -> None:
        await self._at_name(path, os.unlink)  # a link is removed itself, never followed

    async def rmdir(self, path: str) -> None:
        await self._at_name(path, os.rmdir)

    async def _at_name(self, path: str, call: Callable[..., None]) -> None:
        """``call(name, dir_fd=...)`` on ``path``'s last name, in its folder opened
        without following a link (a worker thread; the OS error translated)."""
        check_relpath(path)

        def at_name() -> None:
            with self._walker.parent(path) as (dfd, name):
                call(name, dir_fd=dfd)

        await _in_thread(path, at_name, self._root)

    def _touch(self, path: str, *, mtime: float | None, mode: int | None) -> None:
        """Mode and time of file ``path``, through a descriptor opened without following
        a link (so a link never has its target changed)."""
        fd = open_checked(self._walker, path, os.O_RDONLY | os.O_NONBLOCK,
                          partial(check_regular, rel=path, single_link=False))
        try:
            if mode is not None:
                os.fchmod(fd, mode)
            if mtime is not None:
                ns = round(mtime * 1e9)
                os.utime(fd, ns=(ns, ns))
        finally:
            os.close(fd)

    async def set_mtime(self, path: str, mtime: float) -> None:
        check_relpath(path)
        await _in_thread(path, partial(self._touch, path, mtime=mtime, mode=None))

    async def place(self, temp: str, final: str, *, mtime: float | None,
                    mode: int | None = None, size: int | None = None) -> None:
        check_relpath(temp)
        check_relpath(final)

        def both() -> None:
            try:
                if mtime is not None or mode is not None:
                    self._touch(temp, mtime=mtime, mode=mode)
            except OSError as exc:
                raise translate(exc, temp) from None
            with self._walker.parent(temp) as (sfd, sname), \
                    self._walker.parent(final) as (dfd, dname):
                try:
                    os.rename(sname, dname, src_dir_fd=sfd, dst_dir_fd=dfd)
                except OSError as exc:
                    raise translate(exc, temp) from None

        await _in_thread(final, both, self._root)  # one thread hop for all of it

    async def close(self) -> None:
        return None


class LocalStore:
    def name_charset(self) -> str | None:
        """``NamesInCharset``: the locale's charset for file names, unless UTF-8."""
        charset = sys.getfilesystemencoding()
        return None if charset.lower().replace("-", "") == "utf8" else charset

    def __init__(self, endpoint: Endpoint) -> None:
        # The root the user typed is followed if it is a symlink (``/srv/www -> /data/www``:
        # they chose it), once, here; below it no link is ever followed.
        self._root = Path(os.path.realpath(endpoint.path))
        self.display = endpoint.display

    async def connect(self) -> LocalSession:
        return LocalSession(self._root)

    async def capabilities(self) -> Capabilities:
        # A local disk can do everything (the defaults), with more at once and exact times.
        return Capabilities(ops_per_session=64, mtime_resolution=LOCAL_TIME_RESOLUTION,
                            remote=False,
                            notes=("local disk",))

    async def aclose(self) -> None:
        return None


def _file_above(root: Path) -> BackendError:
    """The root could not be made because a file stands where one of its folders should
    be: that file named (it was ".: not found", session 35's adversarial pass)."""
    for above in [root, *root.parents]:
        if above.exists() and not above.is_dir():
            return PermanentError(f"{above} is a file, not a folder", path="")
    return NotFoundError(f"{root}: not found", path="")
