"""The backend protocol every store implements, the values that cross it, and its errors.

A *store* is one endpoint (an FTP account and a root folder, an SFTP account, a local
folder). It opens *sessions*: one logged-in connection each (or, for SFTP, one SFTP
channel that serves several requests at once, see ``Capabilities.ops_per_session``).
The engine never asks "is this FTP?": it reads ``Capabilities``, probed once from the
live server when the first session connects.

Paths crossing this boundary are always *relative* POSIX paths from the store root,
"/"-separated, with no leading slash, no "." or ".." parts ("" is the root itself).
Backends join them to their root and refuse anything else (``check_relpath``).
"""

from __future__ import annotations

import enum
from collections.abc import AsyncIterable, AsyncIterator, Awaitable, Callable
from dataclasses import dataclass, field
from typing import Protocol, runtime_checkable

#: Default size of the pieces a backend yields from ``read`` / accepts in ``write``.
PIECE_SIZE = 256 * 1024

#: ``write``'s ``acked(n)`` callback: ``n`` bytes from the offset are acknowledged.
Acked = Callable[[int], None]


class EntryKind(enum.Enum):
    FILE = "file"
    DIR = "dir"
    LINK = "link"  # a symlink that is not followed (local only; reported, never copied)
    OTHER = "other"  # device, socket, fifo: reported, never copied


@dataclass(frozen=True, slots=True)
class Entry:
    """One listed or stat'ed object. ``path`` is relative to the store root."""

    path: str
    kind: EntryKind
    size: int = 0
    #: Modification time, POSIX seconds UTC; ``None`` where the server gave none.
    mtime: float | None = None
    #: Permission bits (``st_mode & 0o7777``) where the store shows them (local lstat,
    #: SFTP attributes, FTP ``UNIX.mode`` facts or ``LIST`` permission strings).
    mode: int | None = field(default=None, compare=False)
    #: (device, inode) where the store has them (local only): ``read(expect=...)``
    #: refuses an object that is not the one listed.
    file_id: tuple[int, int] | None = field(default=None, compare=False)

    @property
    def name(self) -> str:
        return self.path.rsplit("/", 1)[-1]


class OffsetWrites(enum.Enum):
    """What a store can do when asked to write a file starting at an offset > 0."""

    #: Write anywhere into an existing file without truncating it (local, SFTP, vsftpd).
    ANY = "any"
    #: Only at the current end of the file (FTP APPE on servers whose REST+STOR truncates
    #: or is refused: pure-ftpd, proftpd).
    APPEND = "append"
    #: Never: a partial file must be restarted from zero.
    NONE = "none"


@dataclass(frozen=True, slots=True)
class Capabilities:
    """What a store can do, probed from the live server (rclone's Features, as flags)."""

    #: ``read(path, offset=N)`` starts at N without sending the bytes before it.
    ranged_read: bool = True
    #: ``read(..., length=L)`` stops after L bytes without reading the rest of the file.
    bounded_read: bool = True
    offset_writes: OffsetWrites = OffsetWrites.ANY
    #: Several sessions may write different ranges of one file at once (local, SFTP).
    parallel_writes: bool = True
    set_mtime: bool = True
    rename: bool = True
    #: ``rename`` over an existing file replaces it (else the engine removes it first).
    rename_replaces: bool = True
    #: How many requests one session can carry at once (1 for FTP, many for SFTP).
    ops_per_session: int = 1
    #: Requests sent on one session are carried out in the order sent (SFTP on one
    #: channel), so dependent requests may be pipelined without waiting for replies.
    ordered_requests: bool = False
    #: Each request costs a round trip over a network (False: the local disk, where
    #: overlapping requests to save round trips buys nothing).
    remote: bool = True
    #: Hard limit on sessions the server allows, if known (e.g. from a 421 reply).
    max_sessions: int | None = None
    #: The shortest command round trip measured (seconds), where the store measures one
    #: (FTP at each login, SFTP on each new session): a fact the pool sizes itself from
    #: (transfers/session_count.py); ``inf`` until the first reading.
    round_trip: float | None = None
    #: How many logins measured ``round_trip`` (None: not counted, the figure stands).
    round_trip_samples: int | None = None
    #: Each transfer opens a new TLS-secured data connection (FTPS): a handshake per file.
    tls_per_transfer: bool = False
    #: mtime granularity in seconds when read back (FTP MDTM/MLSD: 1 s).
    mtime_resolution: float = 1.0
    #: ``place(..., mode=...)`` sets permission bits (local chmod, SFTP setstat; FTP
    #: ``SITE CHMOD`` where the server lists it in ``SITE HELP``).
    set_mode: bool = True
    #: The probe wrote a file into the destination root (None: not known). A folder
    #: that then cannot be made there is refused for its own sake (a server's
    #: ``deny_file``, ``PathDenyFilter``), not because the root is read-only.
    root_writable: bool | None = None
    #: Human readable notes on what the probe found (for reports and ``--debug``).
    notes: tuple[str, ...] = ()


# ---------------------------------------------------------------------------------------
# Errors: translated at the backend boundary, classified for retry and exit codes.
# ---------------------------------------------------------------------------------------


class BackendError(Exception):
    """Base of every error a backend raises. ``str()`` is one line, with no secret in it."""

    #: Whether retrying the same operation (on a fresh session) may succeed.
    retryable = False

    def __init__(self, message: str, *, path: str | None = None) -> None:
        super().__init__(message)
        self.path = path


class NotFoundError(BackendError):
    """The path does not exist (FTP 550 on a missing path, ENOENT, SFTP NO_SUCH_FILE)."""


class PermissionDeniedError(BackendError):
    """The server refused access to that path (EACCES, SFTP PERMISSION_DENIED)."""


class AuthError(BackendError):
    """Login refused: wrong user or password, key refused."""


class HostKeyError(AuthError):
    """The SFTP server's host key is unknown or does not match the one on record."""


class ConnectError(BackendError):
    """The server could not be reached: DNS, refused port, TLS handshake, timeout."""

    retryable = True


class TransientError(BackendError):
    """A dropped connection, a timeout, a 4xx reply: worth retrying on a new session."""

    retryable = True


class TooManySessionsError(TransientError):
    """The server refused another connection (FTP 421 or similar): lower the cap, retry."""


class NoSpaceError(BackendError):
    """The destination is full (ENOSPC, FTP 452/552, SFTP FAILURE with a quota)."""


class PermanentError(BackendError):
    """Anything else the server refused for good (FTP 5xx, SFTP FAILURE)."""


class UnsupportedError(BackendError):
    """The store cannot do this at all (check ``Capabilities`` first)."""


class AttributesNotKeptError(UnsupportedError):
    """Raised by ``place``/``set_mtime`` once the file is in place, complete: its
    modification time (``time_kept`` False) or its permission bits (``mode_kept``
    False) could not be set. The copy notes each and counts the file copied (failing
    it meant failing it again on every run)."""

    time_kept = True
    mode_kept = True

    def __init__(self, message: str, *, path: str | None = None,
                 time_kept: bool | None = None, mode_kept: bool | None = None) -> None:
        super().__init__(message, path=path)
        if time_kept is not None:
            self.time_kept = time_kept
        if mode_kept is not None:
            self.mode_kept = mode_kept


class TimeNotKeptError(AttributesNotKeptError):
    """Only the modification time could not be set."""

    time_kept = False


class ModeNotKeptError(AttributesNotKeptError):
    """Only the permission bits could not be set: raised for a file the source keeps
    from group or others (``is_private_mode``), which would otherwise stay readable
    under the server's default mode without a word. A public file left at the
    server's default (0644) is not reported (README: servers without SITE CHMOD)."""

    mode_kept = False


def is_private_mode(mode: int | None) -> bool:
    """Whether permission bits ``mode`` keep a file's bytes from group or others."""
    return mode is not None and mode & 0o044 != 0o044


class UnsafePathError(BackendError):
    """A path that would escape the store root or is not a valid relative path."""


class NameRefusedError(PermanentError):
    """The server refuses this name (not writes as such): a folder it will not make
    (proftpd: "Invalid directory name" for a "*"). The copy fails what is in that
    folder and goes on with the rest."""


class LinkRefusedError(PermanentError):
    """A symbolic link (or another non-folder) stands where fsmove would write, read or
    make a folder: it is never followed, so nothing lands outside the store root."""


class SourceChangedError(TransientError):
    """The object at a path is no longer the one listed (replaced, resized, touched):
    retried from a fresh listing of it, never copied as it is now."""


#: Permission bits fsmove keeps (setuid, setgid and sticky are never copied).
PERMISSION_BITS = 0o777
#: A private file at least this big is made private at the destination before its first
#: byte where that costs an extra step (FTP: an empty upload and ``SITE CHMOD 600``, ~3
#: round trips). A smaller one is readable by others for the moment of its upload (it
#: leaves with its STOR): over a WAN the extra step would cost each small file of a
#: tree made with umask 077 a third of its time.
PRIVATE_BEFORE_BYTES = 1024 * 1024


def hides_from_others(mode: int | None, size: int) -> bool:
    """Whether a file of ``mode`` (the source's; None: unknown, taken as 0644) keeps its
    bytes from group or others, and is big enough (``PRIVATE_BEFORE_BYTES``) that its
    partial copy is made private first (``Session.write``'s ``private``)."""
    return is_private_mode(mode) and size >= PRIVATE_BEFORE_BYTES


#: What a new file gets where the source's bits are unknown or ``--no-perms`` is given.
NEW_FILE_MODE = 0o644


def placed_mode(source_mode: int | None, *, keep: bool) -> int:
    """The permission bits a copied file gets: the source's own bits (``keep``), else
    ``NEW_FILE_MODE`` — never wider than the source's bits where they are known, so a
    0600 ``.env`` never becomes readable by others, whatever the options."""
    if source_mode is None:
        return NEW_FILE_MODE
    bits = source_mode & PERMISSION_BITS
    return bits if keep else NEW_FILE_MODE & bits


async def no_bytes() -> AsyncIterator[bytes]:
    """No bytes: what ``Session.write`` is given to create (truncate) an empty file."""
    return
    yield b""  # pragma: no cover  (makes this an async generator)


def link_refusal(path: str, *, action: str = "write") -> LinkRefusedError:
    return LinkRefusedError(
        f"{path}: is a symbolic link; fsmove never {action}s through a link "
        "(remove or replace it with a real folder or file)", path=path)


def check_listed(path: str, expect: Entry, *, kind: EntryKind, size: int,
                 mtime: float | None, file_id: tuple[int, int] | None = None) -> None:
    """Raise when what was opened at ``path`` is not the entry the listing gave: a link
    or a special file (LinkRefusedError / PermanentError, never retried), or another or
    modified file (SourceChangedError, retried from a fresh stat)."""
    if kind is EntryKind.LINK:
        raise link_refusal(path, action="read")
    if kind is not EntryKind.FILE:
        raise PermanentError(f"{path}: is no longer a regular file; not copied", path=path)
    if expect.file_id is not None and file_id is not None and file_id != expect.file_id:
        raise SourceChangedError(f"{path}: replaced by another file since it was listed",
                                 path=path)
    if size != expect.size or (
        expect.mtime is not None and mtime is not None and mtime != expect.mtime
    ):
        raise SourceChangedError(f"{path}: changed since it was listed", path=path)


def check_relpath(path: str) -> str:
    """Return ``path`` if it is a clean relative POSIX path, else raise UnsafePathError.

    Refuses absolute paths, "." / ".." parts, empty parts, NUL and newline bytes: a
    hostile listing must never make a backend touch anything outside its root.
    """
    if path == "":
        return path
    if path.startswith("/") or "\x00" in path or "\n" in path or "\r" in path:
        raise UnsafePathError(f"unsafe path {path!r}", path=path)
    for part in path.split("/"):
        if part in ("", ".", ".."):
            raise UnsafePathError(f"unsafe path {path!r}", path=path)
    return path


def is_safe_relpath(path: str) -> bool:
    """Whether ``check_relpath`` takes ``path``."""
    try:
        check_relpath(path)
    except UnsafePathError:
        return False
    return True


def folders_of(path: str) -> list[str]:
    """The folders leading to ``path`` below the root, outermost first ("a", "a/b")."""
    parts = path.split("/")[:-1]
    return ["/".join(parts[: i + 1]) for i in range(len(parts))]


def join_relpath(parent: str, name: str) -> str:
    return f"{parent}/{name}" if parent else name


def parent_of(path: str) -> str:
    return path.rsplit("/", 1)[0] if "/" in path else ""


# ---------------------------------------------------------------------------------------
# The protocol.
# ---------------------------------------------------------------------------------------


@runtime_checkable
class Session(Protocol):
    """One logged-in connection to a store. Not safe for concurrent use beyond
    ``Capabilities.ops_per_session`` operations at a time.

    Health is part of the protocol: ``usable`` says whether the session can serve
    another operation. A session never repairs itself (no silent re-login): the pool
    (transfers/pool.py) alone drops an unusable session and opens another."""

    @property
    def usable(self) -> bool:
        """False once the session knows it cannot serve another operation: its
        connection was lost or fell out of step (the operation that saw it got the
        error), or it was closed. A local answer, no round trip."""
        ...

    async def stat(self, path: str) -> Entry:
        """Entry for ``path``; NotFoundError if it does not exist."""
        ...

    def list(self, path: str) -> AsyncIterator[Entry]:
        """Entries directly inside directory ``path`` (not recursive, no "." / "..")."""
        ...

    def read(
        self, path: str, *, offset: int = 0, length: int | None = None,
        expect: Entry | None = None,
    ) -> AsyncIterator[bytes]:
        """Stream the file's bytes from ``offset``, ``length`` bytes (or to EOF).

        With ``expect`` (the listed entry) the object opened must still be that regular
        file (``check_listed``), checked where the protocol can tell (local: fstat of
        the descriptor opened without following a link; SFTP: lstat beside the open)."""
        ...

    async def write(self, path: str, data: AsyncIterable[bytes], *, offset: int = 0,
                    create: bool = True, acked: Acked | None = None,
                    private: bool = False) -> int:
        """Write the stream into ``path`` and return the number of bytes written.

        ``private`` (with ``create``): the file must not be readable by others before
        it is placed, even where new files are not made private at once (FTP: an empty
        file is made and ``SITE CHMOD 600`` given before the first byte goes; local and
        SFTP files are always created 0600). The engine asks it for files whose source
        hides them from group or others.

        ``create=True`` (only with ``offset == 0``) removes whatever has that name (a
        file, or a symlink planted there: never followed) and creates a new file, private
        (0600) where the store can say so. ``create=False`` writes into the existing
        file at ``offset`` without truncating it (``Capabilities.offset_writes`` says
        where that is allowed); a link there is refused. A link at any folder of the
        path is refused (LinkRefusedError). Returns only once the server acknowledged
        every byte.

        ``acked(n)``, where the protocol can tell, is called as the destination
        acknowledges data: ``n`` is the count of bytes from ``offset`` that are now all
        acknowledged (contiguous, non-decreasing). Backends that cannot tell (FTP:
        nothing is acknowledged before the final 226 reply) never call it; the engine
        then takes the return of ``write`` as the acknowledgement of everything."""
        ...

    async def mkdir(self, path: str, *, mode: int | None = None) -> None:
        """Create ``path`` and its missing parents; no error if it exists as a folder.
        A symbolic link where a folder is needed is refused (LinkRefusedError).
        ``mode``: the permission bits of ``path`` itself when this call makes it (a
        private source folder; never wider than given); None: the store's default."""
        ...

    async def rename(self, src: str, dst: str) -> None:
        """Rename a file; replaces ``dst`` if ``Capabilities.rename_replaces``."""
        ...

    async def remove(self, path: str) -> None:
        """Remove a file (NotFoundError if missing)."""
        ...

    async def rmdir(self, path: str) -> None:
        """Remove an empty directory."""
        ...

    async def set_mtime(self, path: str, mtime: float) -> None:
        """Set the file's modification time (POSIX seconds)."""
        ...

    async def place(self, temp: str, final: str, *, mtime: float | None,
                    mode: int | None = None, size: int | None = None) -> None:
        """Put a finished temporary file in place: set its permission bits (``mode``,
        where ``Capabilities.set_mode``) and modification time (when ``mtime`` is
        given), then rename ``temp`` to ``final`` — in as few round trips as the
        protocol safely allows (pipelined where the server keeps order). Raises like
        ``set_mtime`` / ``rename``; the rename is never sent before the bytes. ``size``:
        what the file must hold; a store that acknowledges only at the end (FTP) checks
        it at the final name and raises TransientError when the server holds something
        else (the others acknowledged every byte already and ignore it)."""
        ...

    async def close(self) -> None:
        """Log out and close; never raises."""
        ...


@runtime_checkable
class IdleCheck(Protocol):
    """Optional: a session whose connection may die unnoticed while it sits idle
    (servers and middleboxes drop idle connections) and that can ask the server
    cheaply whether it still answers (FTP ``NOOP``, as rclone does before reusing an
    FTP connection). SFTP needs none (SSH keepalives); the local disk has no
    connection."""

    async def still_alive(self) -> bool:
        """Ask the server; False (the session then unusable) if it does not answer."""
        ...


@runtime_checkable
class PlacesInBackground(Protocol):
    """Optional: a session that can send ``place``'s commands and go back to the pool
    before their replies come (FTP, where the next operation's commands then follow
    them on the same connection). The copy waits on the function returned (None: it
    placed at once) before it counts the file done."""

    async def place_started(
        self, temp: str, final: str, *, mtime: float | None, mode: int | None = None,
        size: int | None = None,
    ) -> Callable[[], Awaitable[None]] | None:
        ...


@runtime_checkable
class OwesReplies(Protocol):
    """Optional: a session whose commands may still be owed replies while it is idle
    (FTP: the next ``EPSV`` sent ahead at a transfer's end, a placing answered in the
    background). Its next operation waits behind them: after a big upload vsftpd
    answers that ``EPSV`` only once it has closed the file, ~0.25 s for 512 MiB on ext4
    (benchmarks/README.md "Session 20"), so a borrower that must not wait (a big file's
    placing) prefers an idle session that owes nothing."""

    @property
    def owes_replies(self) -> bool:
        """Whether replies to commands already sent are still to come. Local, no I/O."""
        ...


@dataclass(frozen=True, slots=True)
class SessionFeatures:
    """Which optional session methods a store's sessions have, detected once from the
    first session (rclone's ``Features.Fill``) and then read as flags."""

    #: ``IdleCheck.still_alive``: the pool checks a session idle for a while first.
    idle_check: bool = False
    #: ``OwesReplies.owes_replies``: a ``settled`` borrower prefers sessions owing none.
    owes_replies: bool = False

    @classmethod
    def of(cls, session: Session) -> SessionFeatures:
        return cls(idle_check=isinstance(session, IdleCheck),
                   owes_replies=isinstance(session, OwesReplies))


@runtime_checkable
class Store(Protocol):
    """An endpoint: opens sessions, knows its capabilities once probed."""

    #: A display form of the endpoint with no secret in it (``ftp://user@host/path``).
    display: str

    async def connect(self) -> Session:
        """Open and log in a new session (ConnectError, AuthError, HostKeyError...)."""
        ...

    async def capabilities(self) -> Capabilities:
        """Probe (once, then cached on this store) and return what the server can do."""
        ...

    async def aclose(self) -> None:
        """Release anything the store keeps open (shared SSH connections...)."""
        ...


#: What a store's early capabilities (``WritesBeforeProbe``) must already say as its
#: probe will: the engine chooses how files are written and compares mtimes with them
#: before the probe has answered. (``round_trip`` is a sizing hint, the shortest login
#: so far: it may shrink meanwhile.)
EARLY_FIELDS = ("parallel_writes", "ops_per_session", "ordered_requests", "remote",
                "mtime_resolution", "tls_per_transfer")


@runtime_checkable
class WritesBeforeProbe(Protocol):
    """A store whose write probe takes many round trips (FTP: three transfers in a row)
    and which can take new files under temporary names meanwhile."""

    def early_capabilities(self) -> Capabilities | None:
        """What holds before the probe has answered, for new files written from their
        first byte under a temporary name: no offset writes, no mtimes, a rename that
        may not replace (the engine settles each file with the probe's answers before
        placing it). None when there is no probe to wait for (done, or a read-only
        store) or not even a login yet."""
        ...

    async def probe_with(self, session: Session) -> Capabilities:
        """The probe (then cached as ``capabilities``) on a session the caller lends:
        the pool's, so that on a server that takes few sessions the probe does not need
        a login of its own while the copy holds them all."""
        ...


#: The longest path a Linux server takes (PATH_MAX, 4,096 bytes with its NUL).
SERVER_PATH_MAX = 4095


@runtime_checkable
class LimitsPaths(Protocol):
    """A store on a server, whose paths are bounded (``copy/name_gate.py``)."""

    def path_room(self) -> int:
        """How many bytes a store-relative path may take (the root's own taken off)."""
        ...


@runtime_checkable
class NamesInCharset(Protocol):
    """A store whose names are written in a charset that may not hold every name
    (the local disk under a locale that is not UTF-8)."""

    def name_charset(self) -> str | None:
        """That charset, or None where any name can be written."""
        ...


@runtime_checkable
class KnowsLoginFolder(Protocol):
    """A session on a server that can say where a login lands (FTP: ``PWD``; SFTP:
    ``realpath(".")``): a root that does not exist is often the login folder's child
    written from the server's root (``roots.py``)."""

    async def login_folder(self) -> str | None:
        """The login folder's absolute server path, or None when it cannot be told."""
        ...

    def server_root(self) -> str:
        """The store's root as an absolute server path."""
        ...


@runtime_checkable
class ListsKinds(Protocol):
    """A session whose listing costs more when it must give exact times (FTP on a
    LIST-only server: an MDTM per file): what a folder holds, kinds only."""

    async def kinds_in(self, path: str) -> dict[str, EntryKind]:
        """path -> kind of each entry directly in folder ``path``."""
        ...


@runtime_checkable
class ResolvesPaths(Protocol):
    """A session that can name a server folder with its links resolved (SFTP:
    ``realpath``; FTP: ``CWD`` + ``PWD``): two roots on one server that are one folder,
    or nested, through a link (``/www`` and ``/home/u/www``) are told apart from
    distinct ones (``transfers/nested_roots.py``)."""

    def server_root(self) -> str:
        """The store's root as a server path."""
        ...

    async def real_path(self, abs_path: str) -> str | None:
        """The folder's absolute path with every link resolved; None when it cannot be
        told (missing, not a folder, refused)."""
        ...


@runtime_checkable
class RewritesNames(Protocol):
    """A store that may keep a name other than the one it was sent, or refuse it
    (FTP: ``ftp/names.py``); the copy asks before it copies a name with a feature such
    stores rewrite (``tree.risky_name_features``)."""

    def name_known(self, name: str) -> bool:
        """Whether ``name_refusal`` answers for ``name`` without a session."""
        ...

    async def name_refusal(self, name: str, session: Session | None) -> str | None:
        """Why ``name`` cannot be stored as it is, or None; ``session`` (a written
        store's, lent by the caller) is needed unless ``name_known``."""
        ...


@runtime_checkable
class SharesSessionsEarly(Protocol):
    """A store whose sessions carry several requests at once from their login on,
    before its capabilities are asked (SFTP: requests are pipelined on one channel, and
    asking the capabilities writes nothing). The reads that must come before any write
    (the destination root's look and its listing) then share the first session to log
    in instead of each waiting for a login of its own."""

    def early_ops_per_session(self) -> int:
        """How many borrowers a session carries before the capabilities are known."""
        ...


@runtime_checkable
class WatchesRoundTrip(Protocol):
    """A store whose round trip (``Capabilities.round_trip``) is measured again by each
    login (FTP) or new session (SFTP): it tells the watcher each figure as it comes, so
    the pool sizes itself from all of them rather than from the first
    (transfers/session_count.py)."""

    def watch_round_trip(self, watcher: Callable[[float, int], None]) -> None:
        """Call ``watcher(shortest, samples)`` after each reading."""
        ...


def early_fields_differ(early: Capabilities, final: Capabilities) -> list[str]:
    """The ``EARLY_FIELDS`` on which a store's early capabilities were wrong."""
    return [name for name in EARLY_FIELDS if getattr(early, name) != getattr(final, name)]
