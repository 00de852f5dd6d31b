"""``SftpSession``: one SFTP channel, the Session protocol whole; up to
``OPS_PER_SESSION`` operations may run on it at once.

This top layer holds the namespace operations (mkdir, rename, place, rmdir, set mtime);
below it ``file_io`` (read, write) and ``channel`` (requests, stat, list, remove, health).
"""

from __future__ import annotations

import asyncio
import contextlib
import posixpath

import asyncssh

from ..backend import (
    AttributesNotKeptError,
    BackendError,
    EntryKind,
    NotFoundError,
    PermanentError,
    PermissionDeniedError,
    TimeNotKeptError,
    UnsupportedError,
    folders_of,
    link_refusal,
)
from .channel import entry_of
from .file_io import FileSession


class SftpSession(FileSession):
    """One SFTP channel; up to ``OPS_PER_SESSION`` operations may run on it at once."""

    async def login_folder(self) -> str | None:
        """``backend.KnowsLoginFolder``: where ``realpath(".")`` points."""
        try:
            return await self._bounded(self._sftp.realpath("."), "")
        except BackendError:
            return None

    def server_root(self) -> str:
        return self._root

    async def real_path(self, abs_path: str) -> str | None:
        """``backend.ResolvesPaths``: the server's ``realpath`` (links resolved)."""
        try:
            return await self._bounded(self._sftp.realpath(abs_path), "")
        except (NotFoundError, PermissionDeniedError, PermanentError):
            return None

    async def mkdir(self, path: str, *, mode: int | None = None) -> None:
        if path == "":
            await self._make_root()
            return
        self._full(path)
        if path in self._real_dirs:
            return
        if all(f in self._real_dirs for f in folders_of(path)):
            # Every level above is known to be a real folder: the folder itself is made
            # at once, not looked at first (one round trip, not two, per new folder: the
            # march asks only for folders its listing found missing). Whatever is in the
            # way (a link, a file, a folder made meanwhile) makes the mkdir fail and is
            # looked at below; mkdir never follows a link at its last level.
            missing = [path]
        else:
            missing = await self._check_folders(path, itself=True)
        for folder in missing:
            attrs = asyncssh.SFTPAttrs(permissions=mode if folder == path else None)
            try:
                await self._bounded(self._sftp.mkdir(self._full(folder), attrs), folder)
            except PermanentError as failure:
                # Servers answer a bare FAILURE for "exists": look at what is there.
                try:
                    entry = await self.stat(folder)
                except NotFoundError:
                    raise failure from None
                if entry.kind is EntryKind.LINK:
                    raise link_refusal(folder) from None
                if entry.kind is not EntryKind.DIR:
                    raise PermanentError(f"{folder}: exists and is not a folder",
                                         path=folder) from None
            self._real_dirs.add(folder)

    async def _make_root(self) -> None:
        """``mkdir -p`` of the store's root itself: a fresh bucket folder
        (``sftp://h/srv/new/x`` where ``/srv/new`` does not exist yet) is the first thing
        a user copies into. Levels are made top-down from the deepest one that exists;
        one that appears meanwhile (another session) is fine, a file in the way is not.
        Asked only after a ``stat`` found the root missing."""
        try:
            # The usual case first, in one round trip: the parent is there.
            await self._bounded(self._sftp.mkdir(self._root), "")
            return
        except (NotFoundError, PermanentError):
            pass  # a parent is missing, or something is in the way: look, level by level
        missing: list[str] = []
        probe = self._root.rstrip("/")
        while probe not in ("", "/", "."):
            try:
                attrs = await self._bounded(self._sftp.stat(probe), "")
            except NotFoundError:
                missing.append(probe)
                probe = posixpath.dirname(probe)
                continue
            if entry_of("", attrs).kind is not EntryKind.DIR:
                raise PermanentError(f"{probe}: exists and is not a directory", path="")
            break
        for folder in reversed(missing):
            try:
                await self._bounded(self._sftp.mkdir(folder), "")
            except PermanentError:
                attrs = await self._bounded(self._sftp.stat(folder), "")
                if entry_of("", attrs).kind is not EntryKind.DIR:
                    raise

    async def rename(self, src: str, dst: str) -> None:
        old, new = self._full(src), self._full(dst)
        # Whether the rename replaces is the server's VERSION's to say (a session's
        # first request may travel behind its INIT: quick_start.py, item 5).
        await self._version_known()
        if self._posix_rename:
            try:
                await self._bounded(self._sftp.posix_rename(old, new), src)
                return
            except UnsupportedError:
                # Advertised, then refused: a plain rename, which does not replace, into
                # a name made free first (the caps said renames replace).
                with contextlib.suppress(NotFoundError):
                    await self._bounded(self._sftp.remove(new), dst)
        await self._bounded(self._sftp.rename(old, new), src)

    async def rmdir(self, path: str) -> None:
        await self._bounded(self._sftp.rmdir(self._full(path)), path)

    async def set_mtime(self, path: str, mtime: float) -> None:
        if not _carried(mtime):
            raise _time_not_kept(path, mtime)
        await self._bounded(self._sftp.utime(self._full(path), times=(mtime, mtime)), path)

    async def place(self, temp: str, final: str, *, mtime: float | None,
                    mode: int | None = None, size: int | None = None) -> None:
        if mtime is not None and not _carried(mtime):
            # Placed without it, then said (``TimeNotKeptError``: the file is copied).
            await self.place(temp, final, mtime=None, mode=mode, size=size)
            raise _time_not_kept(final, mtime)
        if mtime is None and mode is None:
            await self.rename(temp, final)
            return
        # One SETSTAT for the time and the permission bits.
        attrs = asyncssh.SFTPAttrs(permissions=mode)
        if mtime is not None:
            attrs.atime = attrs.mtime = int(mtime)
        setstat = self._bounded(self._sftp.setstat(self._full(temp), attrs), temp)
        if self.ordered_requests:
            # One round trip: the server handles a channel's requests in order, so the
            # attributes land on the temporary file before the rename.
            set_outcome, renamed = await asyncio.gather(
                setstat, self.rename(temp, final), return_exceptions=True)
            if isinstance(renamed, BaseException):
                raise renamed
        else:
            try:
                set_outcome = await setstat
            except PermissionDeniedError as exc:
                set_outcome = exc
            await self.rename(temp, final)
        if isinstance(set_outcome, PermissionDeniedError):
            # Placed, complete; only SETSTAT was refused (OpenSSH ``internal-sftp -P
            # setstat``). Failing it meant sending it again, and failing, every run.
            raise AttributesNotKeptError(
                f"the server refused to set its {_attribute_words(mtime, mode)} "
                "(SFTP SETSTAT: permission denied)", path=final,
                # Any mode: the file keeps the temporary file's (maybe 0600, which
                # a web server running as another user cannot read).
                time_kept=mtime is None, mode_kept=mode is None)
        if isinstance(set_outcome, BaseException):
            raise set_outcome


def _attribute_words(mtime: float | None, mode: int | None) -> str:
    if mtime is not None and mode is not None:
        return f"modification time and permission bits ({mode & 0o777:04o})"
    if mode is not None:
        return f"permission bits ({mode & 0o777:04o})"
    return "modification time"


#: SFTP version 3 carries a time as an unsigned 32-bit count of seconds (1970-2106);
#: asyncssh raised OverflowError for any other (a file dated 1938 stopped the run).
_SFTP_TIMES = range(0, 2**32)


def _carried(mtime: float) -> bool:
    return int(mtime) in _SFTP_TIMES


def _time_not_kept(path: str, mtime: float) -> TimeNotKeptError:
    return TimeNotKeptError(
        f"its modification time ({int(mtime)} s from 1970) is outside what SFTP "
        "carries (1970-2106); it keeps the time of its copy", path=path)


__all__ = ["SftpSession"]
