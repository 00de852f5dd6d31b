"""One SFTP channel as a session: its requests bounded by the timeout and translated,
its health, ``stat``, ``list``, ``remove`` and ``close``.

``readdir`` attributes are ``lstat``'s, so a symlink is reported as ``EntryKind.LINK``
and never followed; ``stat`` uses ``lstat`` too, except on the root itself, which may
well be a symlinked home directory. On OpenSSH a folder listed while no other is open
on the channel asks its READDIRs right behind its OPENDIR, for the handle the server
will give it (``handles.py``): one round trip less per such folder.
"""

from __future__ import annotations

import asyncio
import posixpath
from collections import deque
from collections.abc import AsyncIterator, Awaitable, Callable
from typing import TypeVar

import asyncssh

from ..backend import Entry, EntryKind, check_relpath, join_relpath
from .errors import translate
from .handles import HandleTable, watch_handles

T = TypeVar("T")

#: READDIRs asked ahead at most on a server that answers in order (a batch is ~100 names;
#: 8 before session 15: a folder of 5,000 files, benchmarks/README.md "A folder of 5,000
#: files").
_READDIR_WINDOW = 32
#: The largest READ or WRITE request fsmove sends, whatever the server allows: OpenSSH's
#: own limit (255 KiB). asyncssh's SFTP server allows 4 MiB, and 12 such requests in
#: flight held 48 MiB per stream (memory) and acknowledged nothing for the journal
#: until the window was full: a copy killed after 45 MiB had journaled no block, and
#: its rerun started from the first byte (session 31).
REQUEST_LEN_MAX = 255 * 1024

_KINDS = {
    asyncssh.FILEXFER_TYPE_REGULAR: EntryKind.FILE,
    asyncssh.FILEXFER_TYPE_DIRECTORY: EntryKind.DIR,
    asyncssh.FILEXFER_TYPE_SYMLINK: EntryKind.LINK,
}
#: ``ls -l`` type letters, for servers that send a listing line but no permissions.
_LONGNAME_KINDS = {"-": EntryKind.FILE, "d": EntryKind.DIR, "l": EntryKind.LINK}


def entry_of(rel: str, attrs: asyncssh.SFTPAttrs, longname: str = "") -> Entry:
    kind = _KINDS.get(attrs.type, EntryKind.OTHER)
    if attrs.type == asyncssh.FILEXFER_TYPE_UNKNOWN and longname:
        kind = _LONGNAME_KINDS.get(longname[0], EntryKind.OTHER)
    size = (attrs.size or 0) if kind is EntryKind.FILE else 0
    mtime: float | None = None
    if attrs.mtime is not None:
        mtime = attrs.mtime + (attrs.mtime_ns or 0) / 1e9
    mode = attrs.permissions & 0o7777 if attrs.permissions is not None else None
    return Entry(path=rel, kind=kind, size=size, mtime=mtime, mode=mode)


def posix_rename_advertised(sftp: asyncssh.SFTPClient) -> bool:
    """Whether the server offers a rename that replaces: OpenSSH's
    ``posix-rename@openssh.com`` in its version reply (asyncssh records it; no request),
    or SFTP v5+'s overwrite flag. Read, not probed: a server that advertises it and then
    refuses it is handled by ``SftpSession.rename``."""
    handler = getattr(sftp, "_handler", None)
    return bool(getattr(handler, "_supports_posix_rename", False)) or sftp.version >= 5


class ChannelSession:
    """One SFTP channel (its own SSH connection): the requests every layer builds on."""

    def __init__(
        self,
        *,
        conn: asyncssh.SSHClientConnection,
        sftp: asyncssh.SFTPClient,
        root: str,
        timeout: float,
        requests_in_flight: int,
        on_close: Callable[[ChannelSession], None],
        real_dirs: set[str] | None = None,
        limits: asyncio.Future[None] | None = None,
        version: asyncio.Future[None] | None = None,
        start_failure: Callable[[BaseException], BaseException] | None = None,
    ) -> None:
        self._conn = conn
        #: The server's ``limits@openssh.com`` answer, still on its way when the session
        #: was handed over (transfers/sftp/quick_start.py); None: already known.
        self._limits = limits
        #: The SFTP version exchange, still under way when the session was handed over
        #: (quick_start.py, item 5): requests travel behind its INIT; if it fails, they
        #: fail with its error, said by ``start_failure`` (the store's wording of a
        #: failed start). None: known.
        self._version = version
        self._start_failure = start_failure or (lambda exc: exc)
        #: Folders below the root seen to be real folders, not links (shared by the
        #: store's sessions): writes into them need no new check.
        self._real_dirs: set[str] = real_dirs if real_dirs is not None else set()
        self._on_close = on_close
        self._sftp = sftp
        self._root = root
        self._timeout = timeout
        self._in_flight = max(1, requests_in_flight)
        # OpenSSH's sftp-server handles one channel's requests strictly in order;
        # other servers may not promise it, so nothing dependent is pipelined there.
        self.ordered_requests = "OpenSSH" in str(conn.get_extra_info("server_version") or "")
        self._closed = False
        #: The server's handle table as this channel's writes shape it (``handles.py``):
        #: every OPEN, OPENDIR and CLOSE goes through it, whoever asks.
        self._handles = HandleTable()
        watch_handles(getattr(sftp, "_handler", None), self._handles)
        #: Listings whose folder handle is open or being opened (CLOSE not yet written).
        self._listings = 0
        #: Folder handles being closed (not waited for by their listing).
        self._closing: set[asyncio.Future[None]] = set()

    @property
    def _read_len(self) -> int:
        return min(int(self._sftp.limits.max_read_len), REQUEST_LEN_MAX)

    @property
    def _write_len(self) -> int:
        return min(int(self._sftp.limits.max_write_len), REQUEST_LEN_MAX)

    async def _limits_known(self) -> None:
        """Wait for the server's limits, if they are still on their way: the sizes of
        reads and writes (a server answering in order has answered them before the
        reply to any request sent after them, so this is normally no wait). If that
        request failed, asyncssh's safe defaults stay."""
        limits = self._limits
        if limits is None:
            return
        if not limits.done():
            try:
                async with asyncio.timeout(self._timeout):
                    await asyncio.shield(limits)
            except (asyncssh.Error, OSError, ValueError):  # a timeout is an OSError
                pass
        self._limits = None

    def _full(self, path: str) -> str:
        check_relpath(path)
        return posixpath.join(self._root, path) if path else self._root

    @property
    def _posix_rename(self) -> bool:
        """Whether the server's rename replaces (posix-rename, as its VERSION said)."""
        return posix_rename_advertised(self._sftp)

    async def _version_known(self) -> None:
        """Wait for the server's VERSION if it is still on its way (bounded by the
        timeout: the exchange's own); raise what its failure is said as."""
        failure = await self._failed_start()
        if failure is not None:
            raise failure
        self._version = None

    async def _failed_start(self) -> BaseException | None:
        """The failed version exchange's error, said as the store says it (None: it
        went well). Every request written behind the INIT fails when it does, so a
        request's failure waits for the exchange's end to tell which error is the
        session's."""
        version = self._version
        if version is None:
            return None
        if not version.done():
            await asyncio.wait([version])
        if version.cancelled() or version.exception() is None:
            return None
        return self._start_failure(version.exception())  # type: ignore[arg-type]

    def _start_failed(self) -> bool:
        version = self._version
        return (version is not None and version.done() and not version.cancelled()
                and version.exception() is not None)

    async def _bounded(self, aw: Awaitable[T], path: str) -> T:
        """Await one request, bounded by the timeout, with errors translated."""
        try:
            async with asyncio.timeout(self._timeout):
                return await aw
        except (asyncssh.Error, OSError) as exc:  # TimeoutError is an OSError
            failure = await self._failed_start()
            raise (failure or translate(exc, path)) from None

    @property
    def usable(self) -> bool:
        """The Session protocol's health: False once closed, once the SSH connection
        is gone or its SFTP start failed (the pool then opens another)."""
        return not self._closed and not self._conn.is_closed() and not self._start_failed()

    # -- metadata ---------------------------------------------------------------------

    async def stat(self, path: str) -> Entry:
        full = self._full(path)
        # The root itself may be a symlink (a home directory...): follow it; below the
        # root, symlinks are reported as LINK and never followed, like the local store.
        op = self._sftp.stat if path == "" else self._sftp.lstat
        attrs = await self._bounded(op(full), path)
        return entry_of(path, attrs)

    async def list(self, path: str) -> AsyncIterator[Entry]:
        full = self._full(path)
        handler = self._sftp._handler
        # Asked ahead (OpenSSH answers a handle's READDIRs in order, one batch of names
        # each, then EOF to every later one): a folder of one batch costs two round
        # trips, not three; the window doubles while the folder goes on.
        window = 2 if self.ordered_requests else 1
        ahead: deque[asyncio.Future[tuple[list[asyncssh.SFTPName], bool]]] = deque()
        guess = self._handle_guess()
        self._listings += 1
        opening = asyncio.ensure_future(handler.opendir(self._sftp.compose_path(full)))
        if guess is not None:
            # The handle this OPENDIR will get (see _handle_guess): its READDIRs go out
            # right behind it, one round trip sooner (the root's listing, a folder
            # listed alone on its channel).
            ahead.extend(asyncio.ensure_future(self._readdir(guess, path))
                         for _ in range(window))
        try:
            handle = await self._bounded(opening, path)
        except BaseException:
            self._listings -= 1
            await self._dropped(ahead)
            raise
        if guess is not None and handle != guess:
            await self._dropped(ahead)  # asked of a handle that is not this folder's
        try:
            at_end = False
            while not at_end:
                while len(ahead) < window:
                    ahead.append(asyncio.ensure_future(self._readdir(handle, path)))
                names, at_end = await ahead.popleft()
                if self.ordered_requests:
                    window = min(window * 2, _READDIR_WINDOW)
                for name in names:
                    filename = self._sftp.decode(name.filename)
                    if filename in (".", ".."):
                        continue
                    assert isinstance(filename, str)
                    longname = name.longname
                    longname = self._sftp.decode(longname) if longname is not None else ""
                    entry = entry_of(join_relpath(path, filename), name.attrs,
                                     longname if isinstance(longname, str) else "")
                    if path in self._real_dirs or path == "":
                        if entry.kind is EntryKind.DIR:
                            self._real_dirs.add(entry.path)
                        else:
                            self._real_dirs.discard(entry.path)
                    yield entry
        finally:
            await self._dropped(ahead)
            # Sent, not waited for: the listing is whole once the server said EOF, and
            # one round trip less per folder adds up over a WAN. A lost answer costs
            # nothing: the server frees every handle when the channel closes. (Written
            # by a task made now: before the requests of any listing started later.)
            self._close_later(self._sftp._handler.close(handle))
            self._listings -= 1

    def _handle_guess(self) -> bytes | None:
        """The handle the next OPENDIR will get, where it may be asked for at once: the
        server is OpenSSH, whose handles ``HandleTable`` follows, and no other folder is
        open or being opened on this channel. None elsewhere. A wrong guess harms
        nothing: with no other folder open, a READDIR of another handle can only fail
        (an unused one, or a file's), and its answers are used only if the OPENDIR's
        handle is the guessed one."""
        if not self.ordered_requests or self._listings:
            return None
        return self._handles.next_handle()

    async def _dropped(self,
                       ahead: deque[asyncio.Future[tuple[list[asyncssh.SFTPName], bool]]]
                       ) -> None:
        """Cancel the READDIRs asked ahead and wait for them to end (errors ignored)."""
        for extra in ahead:
            extra.cancel()
        if ahead:
            await asyncio.gather(*ahead, return_exceptions=True)
        ahead.clear()

    async def _readdir(self, handle: bytes, path: str) -> tuple[list[asyncssh.SFTPName], bool]:
        """One READDIR: the names it brought, and whether the folder ended (SFTP v3 says
        so only with an EOF status, one request later)."""
        try:
            async with asyncio.timeout(self._timeout):
                names, at_end = await self._sftp._handler.readdir(handle)
        except asyncssh.SFTPEOFError:
            return [], True
        except (asyncssh.Error, OSError) as exc:
            failure = await self._failed_start()
            raise (failure or translate(exc, path)) from None
        return list(names), at_end

    def _close_later(self, close: Awaitable[None]) -> None:
        """Send a handle's CLOSE and go on: its answer only frees the handle at the
        server (nothing to confirm on a folder or a file read), errors ignored."""

        async def closing() -> None:
            try:
                async with asyncio.timeout(self._timeout):
                    await close
            except (asyncssh.Error, OSError):
                pass

        task = asyncio.ensure_future(closing())
        self._closing.add(task)
        task.add_done_callback(self._closing.discard)

    async def _close_quietly(self, handle: asyncssh.SFTPClientFile) -> None:
        try:
            async with asyncio.timeout(self._timeout):
                await handle.close()
        except (asyncssh.Error, OSError):
            pass

    async def remove(self, path: str) -> None:
        await self._bounded(self._sftp.remove(self._full(path)), path)

    async def close(self) -> None:
        if self._closed:
            return
        self._closed = True
        self._on_close(self)
        try:
            self._sftp.exit()
            self._conn.close()
            async with asyncio.timeout(self._timeout):
                await self._conn.wait_closed()
        except (asyncssh.Error, OSError):
            pass
