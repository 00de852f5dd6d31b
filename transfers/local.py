"""The local disk as a store (``file://`` URLs and plain paths).

File I/O runs in worker threads (``asyncio.to_thread``) in pieces of ``PIECE_SIZE`` so
the event loop never blocks on the disk. Symlinks are never followed when listing: a
symlink is reported as ``EntryKind.LINK`` (the engine reports and skips it), so a
symlink loop cannot make the walk run forever and a link cannot lead the copy outside
the source root.

**No link is followed below the root, ever.** Every operation walks its path from the
root one folder at a time with ``openat``-style calls (``dir_fd``, ``O_NOFOLLOW``): a
symlink in place of a folder is refused with ``LinkRefusedError`` naming it, whether a
listing saw it or it was put there during the copy. The root itself is the user's
choice and may be a link. A new file is created with ``O_CREAT | O_EXCL | O_NOFOLLOW``
after removing whatever had its name (a link planted as a temporary file is removed,
not written through), private (0600) until ``place`` gives it its final bits; a file
written into again (resume) must be a regular file with one link (a hard link to a file
elsewhere is refused). ``read(expect=...)`` opens without following a link (and without
blocking on a fifo) and compares ``fstat`` with the listed entry: type, size, mtime,
device and inode.
"""

from __future__ import annotations

import asyncio
import contextlib
import errno
import os
import stat as statmod
from collections.abc import AsyncIterable, AsyncIterator, Callable, Iterator
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
    check_listed,
    check_relpath,
    link_refusal,
)
from .endpoint import Endpoint

T = TypeVar("T")
_DIR_FLAGS = os.O_RDONLY | os.O_DIRECTORY | os.O_NOFOLLOW | os.O_CLOEXEC
#: Mode of a file fsmove creates, until ``place`` sets its final bits.
_PRIVATE = 0o600


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


def _kind(st: os.stat_result) -> EntryKind:
    if statmod.S_ISREG(st.st_mode):
        return EntryKind.FILE
    if statmod.S_ISDIR(st.st_mode):
        return EntryKind.DIR
    if statmod.S_ISLNK(st.st_mode):
        return EntryKind.LINK
    return EntryKind.OTHER


def _entry_from_stat(rel: str, st: os.stat_result) -> Entry:
    kind = _kind(st)
    size = st.st_size if kind is EntryKind.FILE else 0
    return Entry(path=rel, kind=kind, size=size, mtime=st.st_mtime_ns / 1e9,
                 mode=statmod.S_IMODE(st.st_mode), file_id=(st.st_dev, st.st_ino))


class _Walker:
    """Opens the folders of a relative path one by one from the root, never following a
    link (``O_NOFOLLOW`` on each ``openat``)."""

    def __init__(self, root: Path) -> None:
        self._root = root

    def _refusal(self, parent_fd: int, name: str, shown: str, exc: OSError) -> BackendError:
        """Why ``name`` could not be opened as a folder: a link, a file, or the error."""
        if exc.errno in (errno.ELOOP, errno.ENOTDIR):
            try:
                st = os.lstat(name, dir_fd=parent_fd)
            except OSError:
                return _translate(exc, shown)
            if statmod.S_ISLNK(st.st_mode):
                return link_refusal(shown)
            if not statmod.S_ISDIR(st.st_mode):
                return PermanentError(f"{shown}: exists and is not a folder", path=shown)
        return _translate(exc, shown)

    @contextlib.contextmanager
    def folder(self, rel: str, *, create: bool = False) -> Iterator[int]:
        """A descriptor of folder ``rel`` ("": the root), every level opened without
        following links; ``create`` makes missing levels (``mkdir -p`` that refuses
        links)."""
        fd = os.open(self._root, os.O_RDONLY | os.O_DIRECTORY | os.O_CLOEXEC)
        try:
            done: list[str] = []
            for part in rel.split("/") if rel else ():
                done.append(part)
                shown = "/".join(done)
                try:
                    nfd = os.open(part, _DIR_FLAGS, dir_fd=fd)
                except FileNotFoundError:
                    if not create:
                        raise
                    with contextlib.suppress(FileExistsError):  # made meanwhile: fine
                        os.mkdir(part, 0o777, dir_fd=fd)
                    try:
                        nfd = os.open(part, _DIR_FLAGS, dir_fd=fd)
                    except OSError as exc:
                        raise self._refusal(fd, part, shown, exc) from None
                except OSError as exc:
                    if exc.errno in (errno.ELOOP, errno.ENOTDIR):
                        raise self._refusal(fd, part, shown, exc) from None
                    raise
                os.close(fd)
                fd = nfd
            yield fd
        finally:
            os.close(fd)

    @contextlib.contextmanager
    def parent(self, rel: str) -> Iterator[tuple[int, str]]:
        """(descriptor of the folder holding ``rel``, ``rel``'s last name)."""
        folder, _sep, name = rel.rpartition("/")
        with self.folder(folder) as fd:
            yield fd, name


def _open_file(walker: _Walker, rel: str, flags: int) -> int:
    """Open file ``rel`` below the root with ``flags`` | O_NOFOLLOW (a link: refused)."""
    with walker.parent(rel) as (dfd, name):
        try:
            return os.open(name, flags | os.O_NOFOLLOW | os.O_CLOEXEC, _PRIVATE, dir_fd=dfd)
        except OSError as exc:
            if exc.errno == errno.ELOOP:
                raise link_refusal(rel) from None
            raise


def _create_file(walker: _Walker, rel: str) -> int:
    """A new, empty, private file ``rel``: whatever had that name (a file, a link planted
    as our temporary name) is removed first, and O_EXCL refuses anything put there
    meanwhile rather than following it."""
    with walker.parent(rel) as (dfd, name):
        with contextlib.suppress(FileNotFoundError):
            os.unlink(name, dir_fd=dfd)
        try:
            return os.open(name, os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_NOFOLLOW
                           | os.O_CLOEXEC, _PRIVATE, dir_fd=dfd)
        except FileExistsError:
            raise PermanentError(f"{rel}: something was created at this name while fsmove "
                                 "was replacing it; not written", path=rel) from None


def _check_regular(fd: int, rel: str, *, single_link: bool) -> os.stat_result:
    st = os.fstat(fd)
    if not statmod.S_ISREG(st.st_mode):
        raise PermanentError(f"{rel}: is not a regular file; not written", path=rel)
    if single_link and st.st_nlink > 1:
        raise PermanentError(f"{rel}: has {st.st_nlink} hard links (one may be outside the "
                             "destination); not written into", path=rel)
    return st


class LocalSession:
    def __init__(self, root: Path) -> None:
        self._root = root
        self._walker = _Walker(root)

    def _abs(self, path: str) -> Path:
        return self._root / check_relpath(path) if path else self._root

    async def stat(self, path: str) -> Entry:
        check_relpath(path)

        def one() -> os.stat_result:
            if not path:
                return os.lstat(self._root)
            with self._walker.parent(path) as (dfd, name):
                return os.lstat(name, dir_fd=dfd)

        try:
            st = await asyncio.to_thread(one)
        except OSError as exc:
            raise _translate(exc, path) from None
        return _entry_from_stat(path, st)

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

        try:
            items = await asyncio.to_thread(scan)
        except OSError as exc:
            raise _translate(exc, path) from None
        for name, st in items:
            yield _entry_from_stat(f"{path}/{name}" if path else name, st)

    async def read(
        self, path: str, *, offset: int = 0, length: int | None = None,
        expect: Entry | None = None,
    ) -> AsyncIterator[bytes]:
        check_relpath(path)

        def opened() -> int:
            # O_NONBLOCK: a fifo swapped in never blocks the open (no effect on files).
            fd = _open_file(self._walker, path, os.O_RDONLY | os.O_NONBLOCK)
            try:
                st = os.fstat(fd)
                if expect is not None:
                    check_listed(path, expect, kind=_kind(st),
                                 size=st.st_size if statmod.S_ISREG(st.st_mode) else 0,
                                 mtime=st.st_mtime_ns / 1e9, file_id=(st.st_dev, st.st_ino))
                elif not statmod.S_ISREG(st.st_mode):
                    raise PermanentError(f"{path}: is not a regular file", path=path)
            except BaseException:
                os.close(fd)
                raise
            return fd

        try:
            fd = await asyncio.to_thread(opened)
        except OSError as exc:
            raise _translate(exc, path) from None
        try:
            remaining = length
            pos = offset
            while remaining is None or remaining > 0:
                want = PIECE_SIZE if remaining is None else min(PIECE_SIZE, remaining)
                try:
                    piece = await asyncio.to_thread(os.pread, fd, want, pos)
                except OSError as exc:
                    raise _translate(exc, path) from None
                if not piece:
                    break
                pos += len(piece)
                if remaining is not None:
                    remaining -= len(piece)
                yield piece
        finally:
            os.close(fd)

    async def write(
        self,
        path: str,
        data: AsyncIterable[bytes],
        *,
        offset: int = 0,
        create: bool = True,
        acked: Callable[[int], None] | None = None,
    ) -> int:
        check_relpath(path)
        if create and offset:
            raise ValueError("create=True writes start at offset 0")

        def opened() -> int:
            if create:
                return _create_file(self._walker, path)
            fd = _open_file(self._walker, path, os.O_WRONLY)
            try:
                _check_regular(fd, path, single_link=True)
            except BaseException:
                os.close(fd)
                raise
            return fd

        try:
            fd = await asyncio.to_thread(opened)
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
        check_relpath(path)

        def make() -> None:
            if not path:
                os.makedirs(self._root, exist_ok=True)  # the root: the user's own path
                return
            with self._walker.folder(path, create=True):
                pass

        try:
            await asyncio.to_thread(make)
        except OSError as exc:
            raise _translate(exc, path) from None

    async def rename(self, src: str, dst: str) -> None:
        check_relpath(src)
        check_relpath(dst)

        def move() -> None:
            with self._walker.parent(src) as (sfd, sname), \
                    self._walker.parent(dst) as (dfd, dname):
                if statmod.S_ISLNK(os.lstat(sname, dir_fd=sfd).st_mode):
                    raise link_refusal(src, action="rename")
                os.rename(sname, dname, src_dir_fd=sfd, dst_dir_fd=dfd)

        try:
            await asyncio.to_thread(move)
        except OSError as exc:
            raise _translate(exc, src) from None

    async def remove(self, path: str) -> None:
        check_relpath(path)

        def unlink() -> None:
            with self._walker.parent(path) as (dfd, name):
                os.unlink(name, dir_fd=dfd)  # a link is removed itself, never followed

        try:
            await asyncio.to_thread(unlink)
        except OSError as exc:
            raise _translate(exc, path) from None

    async def rmdir(self, path: str) -> None:
        check_relpath(path)

        def remove_dir() -> None:
            with self._walker.parent(path) as (dfd, name):
                os.rmdir(name, dir_fd=dfd)

        try:
            await asyncio.to_thread(remove_dir)
        except OSError as exc:
            raise _translate(exc, path) from None

    def _touch(self, path: str, *, mtime: float | None, mode: int | None) -> None:
        """Mode and time of file ``path``, through a descriptor opened without following
        a link (so a link never has its target changed)."""
        fd = _open_file(self._walker, path, os.O_RDONLY | os.O_NONBLOCK)
        try:
            _check_regular(fd, path, single_link=False)
            if mode is not None:
                os.fchmod(fd, mode)
            if mtime is not None:
                ns = round(mtime * 1e9)
                os.utime(fd, ns=(ns, ns))
        finally:
            os.close(fd)

    async def set_mtime(self, path: str, mtime: float) -> None:
        check_relpath(path)
        try:
            await asyncio.to_thread(self._touch, path, mtime=mtime, mode=None)
        except OSError as exc:
            raise _translate(exc, path) from None

    async def place(self, temp: str, final: str, *, mtime: float | None,
                    mode: int | None = None, size: int | None = None) -> None:
        check_relpath(temp)
        check_relpath(final)

        def both() -> None:
            try:
                if mtime is not None or mode is not None:
                    self._touch(temp, mtime=mtime, mode=mode)
            except OSError as exc:
                raise _translate(exc, temp) from None
            with self._walker.parent(temp) as (sfd, sname), \
                    self._walker.parent(final) as (dfd, dname):
                try:
                    os.rename(sname, dname, src_dir_fd=sfd, dst_dir_fd=dfd)
                except OSError as exc:
                    raise _translate(exc, temp) from None

        try:
            await asyncio.to_thread(both)  # one thread hop for all of it
        except OSError as exc:
            raise _translate(exc, final) from None

    async def close(self) -> None:
        return None


class LocalStore:
    def __init__(self, endpoint: Endpoint) -> None:
        # The root the user typed is followed if it is a symlink (``/srv/www -> /data/www``:
        # they chose it), once, here; below it no link is ever followed.
        self._root = Path(os.path.realpath(endpoint.path))
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
            set_mode=True,
            notes=("local disk",),
        )

    async def aclose(self) -> None:
        return None
