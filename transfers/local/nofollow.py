"""Paths below a local store's root opened one folder at a time with ``openat``-style
calls (``dir_fd``, ``O_NOFOLLOW``), never following a link, and ``OSError`` translated to
the backend taxonomy."""

from __future__ import annotations

import contextlib
import errno
import os
import stat as statmod
from collections.abc import Callable, Iterator
from pathlib import Path

from ..backend import (
    BackendError,
    NoSpaceError,
    NotFoundError,
    PermanentError,
    PermissionDeniedError,
    link_refusal,
)

_DIR_FLAGS = os.O_RDONLY | os.O_DIRECTORY | os.O_NOFOLLOW | os.O_CLOEXEC
#: Mode of a file fsmove creates, until ``place`` sets its final bits.
PRIVATE = 0o600


def translate(exc: OSError, path: str, root: Path | None = None) -> BackendError:
    """The backend error for ``exc`` on ``path`` (store-relative; "" is the root, named
    by its own path when ``root`` is given: a link loop above a destination root was
    ".: Too many levels of symbolic links", session 36's adversarial pass)."""
    reason = exc.strerror or str(exc)
    shown = path or (str(root) if root is not None else ".")
    if exc.errno in (errno.ENOENT, errno.ENOTDIR):
        return NotFoundError(f"{shown}: not found", path=path)
    if exc.errno in (errno.EACCES, errno.EPERM, errno.EROFS):
        return PermissionDeniedError(f"{shown}: permission denied ({reason})", path=path)
    if exc.errno in (errno.ENOSPC, errno.EDQUOT):
        return NoSpaceError(f"{shown}: no space left on the destination", path=path)
    return PermanentError(f"{shown}: {reason}", path=path)


class Walker:
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
                return translate(exc, shown)
            if statmod.S_ISLNK(st.st_mode):
                return link_refusal(shown)
            if not statmod.S_ISDIR(st.st_mode):
                return PermanentError(f"{shown}: exists and is not a folder", path=shown)
        return translate(exc, shown)

    @contextlib.contextmanager
    def folder(self, rel: str, *, create: bool = False,
               mode: int | None = None) -> Iterator[int]:
        """A descriptor of folder ``rel`` ("": the root), every level opened without
        following links; ``create`` makes missing levels (``mkdir -p`` that refuses
        links), the last one with ``mode`` when given (the umask may narrow it)."""
        fd = os.open(self._root, os.O_RDONLY | os.O_DIRECTORY | os.O_CLOEXEC)
        try:
            done: list[str] = []
            parts = rel.split("/") if rel else []
            for part in parts:
                done.append(part)
                shown = "/".join(done)
                try:
                    nfd = os.open(part, _DIR_FLAGS, dir_fd=fd)
                except FileNotFoundError:
                    if not create:
                        raise
                    with contextlib.suppress(FileExistsError):  # made meanwhile: fine
                        last = len(done) == len(parts)
                        os.mkdir(part, mode if last and mode is not None else 0o777,
                                 dir_fd=fd)
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


def open_file(walker: Walker, rel: str, flags: int) -> int:
    """Open file ``rel`` below the root with ``flags`` | O_NOFOLLOW (a link: refused)."""
    with walker.parent(rel) as (dfd, name):
        try:
            return os.open(name, flags | os.O_NOFOLLOW | os.O_CLOEXEC, PRIVATE, dir_fd=dfd)
        except OSError as exc:
            if exc.errno == errno.ELOOP:
                raise link_refusal(rel) from None
            raise


def create_file(walker: Walker, rel: str) -> int:
    """A new, empty, private file ``rel``: whatever had that name (a file, a link planted
    as our temporary name) is removed first, and O_EXCL refuses anything put there
    meanwhile rather than following it."""
    with walker.parent(rel) as (dfd, name):
        with contextlib.suppress(FileNotFoundError):
            os.unlink(name, dir_fd=dfd)
        try:
            return os.open(name, os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_NOFOLLOW
                           | os.O_CLOEXEC, PRIVATE, dir_fd=dfd)
        except FileExistsError:
            raise PermanentError(f"{rel}: something was created at this name while fsmove "
                                 "was replacing it; not written", path=rel) from None


def open_checked(walker: Walker, rel: str, flags: int,
                 check: Callable[[os.stat_result], None]) -> int:
    """File ``rel`` opened without following a link, then ``check`` run on the ``fstat``
    of what was opened (the descriptor is closed if it raises)."""
    fd = open_file(walker, rel, flags)
    try:
        check(os.fstat(fd))
    except BaseException:
        os.close(fd)
        raise
    return fd


def check_regular(st: os.stat_result, rel: str, *, single_link: bool) -> None:
    if not statmod.S_ISREG(st.st_mode):
        raise PermanentError(f"{rel}: is not a regular file; not written", path=rel)
    if single_link and st.st_nlink > 1:
        raise PermanentError(f"{rel}: has {st.st_nlink} hard links (one may be outside the "
                             "destination); not written into", path=rel)
