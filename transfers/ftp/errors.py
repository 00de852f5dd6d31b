"""FTP replies and network failures translated to the backend error taxonomy.

Every message is one line, names the host and the path, never holds a password, and
says what to do next where that is obvious.
"""

from __future__ import annotations

import asyncio
import socket
import ssl

import aioftp

from ..backend import (
    AuthError,
    BackendError,
    ConnectError,
    NoSpaceError,
    NotFoundError,
    PermanentError,
    PermissionDeniedError,
    TooManySessionsError,
    TransientError,
)
from .client import ProtocolError, Reply
from .tls import UntrustedCertificateError

#: Exceptions that mean the connection itself failed (the session is then unusable).
NETWORK_ERRORS = (
    OSError,
    TimeoutError,
    asyncio.IncompleteReadError,
    ssl.SSLError,
    ProtocolError,
    aioftp.AIOFTPException,
)

_DENIED = ("permission denied", "access denied", "not allowed", "forbidden", "not permitted")
#: How servers say a *name* is refused (proftpd "Invalid directory name", pure-ftpd
#: "Prohibited file name", others "Illegal file name", "Bad file name").
_NAME_REFUSED = ("invalid directory name", "invalid file name", "invalid filename",
                 "prohibited file name", "illegal file name", "illegal filename",
                 "bad file name", "bad filename", "invalid name", "illegal name")
_MISSING = (
    "no such file",
    "no such directory",
    "not found",
    "does not exist",
    "doesn't exist",
    "not exist",
    "cannot find",
    "can't find",
    "can't check for file existence",
)
_TOO_MANY = ("too many", "maximum number", "max number", "connection limit", "limit reached")
#: How servers say one file is over their size limit (as opposed to a full disk).
_TOO_LARGE = ("too large", "too big", "file size", "filesize", "size limit")
_QUOTA = ("quota", "no space", "disk full", "storage allocation")
_WRITE_FAILED = ("failure writing", "error during write", "input/output error", "no space",
                 "disk full", "quota")


def _has(text: str, words: tuple[str, ...]) -> bool:
    low = text.lower()
    return any(w in low for w in words)


def looks_denied(reply: Reply) -> bool:
    return _has(reply.text, _DENIED)


def looks_like_name_refused(reply: Reply) -> bool:
    return _has(reply.text, _NAME_REFUSED)


def looks_missing(reply: Reply) -> bool:
    return _has(reply.text, _MISSING)


def _subject(action: str, path: str | None, where: str) -> str:
    """``LIST 'a/b' on HOST:21``; the root is named in words (a bare ``''`` says
    nothing); connecting reads ``cannot connect to HOST:21``."""
    if action == "connect to":
        return f"cannot connect to {where}"
    if path is None:
        return f"{action} on {where}"
    return f"{action} {path!r} on {where}" if path else f"{action} the root folder on {where}"


def reply_error(
    reply: Reply, *, where: str, action: str, path: str | None = None
) -> BackendError:
    """The error for a refusal. ``550`` becomes NotFoundError unless the text says the
    access was denied; callers that can tell better (a follow-up existence check) pass
    the class themselves with ``error_for_550``."""
    subject = _subject(action, path, where)
    said = f"server replied {reply.text!r}"
    code = reply.code
    if code == 421:
        if _has(reply.text, ("timeout", "timed out", "idle")):
            return TransientError(f"{subject}: the server closed the session ({said})", path=path)
        return TooManySessionsError(
            f"{subject}: the server refused another connection ({said}); "
            "lower the number of connections for this side",
            path=path,
        )
    if code == 530:
        if _has(reply.text, _TOO_MANY):
            return TooManySessionsError(
                f"{subject}: the server refused another login ({said}); "
                "lower the number of connections for this side",
                path=path,
            )
        return AuthError(f"{subject}: not logged in ({said})", path=path)
    if code in (452, 552) and _has(reply.text, _TOO_LARGE) and not _has(reply.text,
                                                                           _QUOTA):
        # A limit on one file's size (proftpd ``MaxStoreFileSize``: "552 Transfer
        # aborted. File too large"), not a full disk: that file fails, the copy goes on
        # (before session 33 the run stopped starting files: "the destination is full").
        return PermanentError(f"{subject}: the server refuses a file this large ({said}); "
                              "it sets a limit per file", path=path)
    if code in (452, 552):
        return NoSpaceError(f"{subject}: no space left ({said}); free space or raise the quota",
                            path=path)
    if code == 451 and action == "write" and _has(reply.text, _WRITE_FAILED):
        # What vsftpd, proftpd and pure-ftpd answer when their own write() fails
        # (measured on a full tmpfs: "Failure writing to local file", "Input/output
        # error", "Error during write to file"): a disk that is full or over quota, in
        # practice; retrying only fills it with more partial files.
        return NoSpaceError(f"{subject}: the server could not write the file ({said}): its "
                            "disk is full or over quota", path=path)
    if code == 550:
        if looks_denied(reply):
            return PermissionDeniedError(f"{subject}: permission denied ({said})", path=path)
        return NotFoundError(f"{subject}: no such file or folder ({said})", path=path)
    if code == 553:
        if looks_denied(reply):
            return PermissionDeniedError(f"{subject}: permission denied ({said})", path=path)
        if looks_like_name_refused(reply):
            # The server's rule on names (pure-ftpd "Prohibited file name" for a dot
            # file): a folder's state has nothing to do with it.
            return PermanentError(f"{subject}: the server refuses this name ({said})",
                                  path=path)
        return PermanentError(
            f"{subject}: name refused ({said}); check that the folder exists and is writable",
            path=path,
        )
    if 400 <= code < 500:
        return TransientError(f"{subject}: temporary failure ({said})", path=path)
    if code == 500 and any(ln.lstrip(" -").upper().startswith("OOPS") for ln in reply.lines):
        # vsftpd's "500 OOPS: ..." is an internal failure (e.g. no free passive port)
        # after which it ends the session: worth retrying on a new one.
        return TransientError(f"{subject}: the server failed and closed the session ({said})",
                              path=path)
    return PermanentError(f"{subject}: refused ({said})", path=path)


def error_for_550(
    reply: Reply, *, exists: bool, where: str, action: str, path: str | None
) -> BackendError:
    """A 550 once a follow-up check told whether the path exists."""
    subject = _subject(action, path, where)
    if exists:
        return PermissionDeniedError(
            f"{subject}: refused although the path exists "
            f"(server replied {reply.text!r}); check its permissions",
            path=path,
        )
    return NotFoundError(f"{subject}: no such file or folder (server replied {reply.text!r})",
                         path=path)


def login_error(reply: Reply, *, user: str, where: str) -> BackendError:
    if reply.code in (421, 530) and _has(reply.text, _TOO_MANY):
        return TooManySessionsError(
            f"login as {user!r} at {where} refused: too many sessions "
            f"(server replied {reply.text!r}); lower the number of connections",
        )
    if reply.code == 530 or reply.code == 331 or reply.code == 332:
        return AuthError(
            f"login refused for user {user!r} at {where} (server replied {reply.text!r}): "
            "check the user and password "
            "(FSMOVE_SRC_PASSWORD / FSMOVE_DST_PASSWORD or ~/.netrc)"
        )
    return reply_error(reply, where=where, action=f"login as {user!r}")


def network_error(
    exc: BaseException, *, where: str, action: str, path: str | None = None,
    connecting: bool = False,
) -> BackendError:
    """A network-level failure: refused, unresolvable, TLS, timeout, dropped connection."""
    subject = _subject(action, path, where)
    if isinstance(exc, BackendError):
        return exc
    if isinstance(exc, ssl.SSLCertVerificationError):
        return UntrustedCertificateError(
            f"{subject}: the server's TLS certificate is not trusted "
            f"({exc.verify_message}); pass the certificate or the CA that signed it with "
            "--ca-file PEM, or --insecure-tls to skip the check if you trust this network",
            path=path,
        )
    if isinstance(exc, ConnectionRefusedError):
        return ConnectError(
            f"{subject}: connection refused; check the host and port and that the server runs",
            path=path,
        )
    if isinstance(exc, socket.gaierror):
        return ConnectError(f"{subject}: cannot resolve the host name ({exc.strerror})",
                            path=path)
    if isinstance(exc, (TimeoutError, asyncio.TimeoutError)):
        text = f"{subject}: no answer from the server in time (the server stalled)"
        return ConnectError(text, path=path) if connecting else TransientError(text, path=path)
    if isinstance(exc, ssl.SSLError):
        text = f"{subject}: TLS failure ({exc.reason or exc})"
        return ConnectError(text, path=path) if connecting else TransientError(text, path=path)
    if isinstance(exc, (ProtocolError, aioftp.AIOFTPException)):
        return TransientError(f"{subject}: protocol error ({exc})", path=path)
    if isinstance(exc, (asyncio.IncompleteReadError, ConnectionError, EOFError)):
        return TransientError(f"{subject}: connection lost ({type(exc).__name__})", path=path)
    if isinstance(exc, OSError):
        text = f"{subject}: network error ({exc.strerror or type(exc).__name__})"
        return ConnectError(text, path=path) if connecting else TransientError(text, path=path)
    return TransientError(f"{subject}: {type(exc).__name__}: {exc}", path=path)
