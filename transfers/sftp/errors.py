"""asyncssh and socket errors translated to the backend taxonomy: one line, no secret."""

from __future__ import annotations

import errno
import os
import socket

import asyncssh

from ..backend import (
    BackendError,
    NoSpaceError,
    NotFoundError,
    PermanentError,
    PermissionDeniedError,
    TransientError,
    UnsupportedError,
)

#: Words in an SFTP FAILURE message that mean the destination is full.
_NO_SPACE_WORDS = ("no space", "quota", "disk full", "space left", "enospc", "insufficient")


def one_line(text: object) -> str:
    return " ".join(str(text).split())


def socket_reason(exc: OSError) -> str:
    """Why a connection could not be made, in words (asyncio's own text for a refused
    port is ``Connect call failed ('127.0.4.3', 2999)``)."""
    if isinstance(exc, socket.gaierror):
        return f"cannot resolve the host name ({exc.strerror})"
    refused = isinstance(exc, ConnectionRefusedError) or exc.errno == errno.ECONNREFUSED \
        or "[Errno 111]" in str(exc)
    if refused:
        return "connection refused; check the host and port and that the SSH server runs"
    if exc.errno:
        return os.strerror(exc.errno).lower()
    return one_line(exc.strerror or exc)


def translate(exc: BaseException, path: str) -> BackendError:
    """Map an asyncssh / socket error to the backend taxonomy (one line, no secret)."""
    where = path or "."
    if isinstance(exc, BackendError):
        return exc
    if isinstance(exc, asyncssh.SFTPError):
        reason = one_line(exc.reason) or type(exc).__name__
        if isinstance(exc, asyncssh.SFTPNoSuchFile | asyncssh.SFTPNoSuchPath):
            return NotFoundError(f"{where}: not found", path=path)
        if isinstance(exc, asyncssh.SFTPPermissionDenied | asyncssh.SFTPWriteProtect):
            return PermissionDeniedError(f"{where}: permission denied ({reason})", path=path)
        if isinstance(exc, asyncssh.SFTPNoSpaceOnFilesystem | asyncssh.SFTPQuotaExceeded) or (
            isinstance(exc, asyncssh.SFTPFailure)
            and any(word in reason.lower() for word in _NO_SPACE_WORDS)
        ):
            return NoSpaceError(f"{where}: no space left on the destination ({reason})", path=path)
        if isinstance(exc, asyncssh.SFTPOpUnsupported):
            return UnsupportedError(f"{where}: not supported by the server ({reason})", path=path)
        if isinstance(exc, asyncssh.SFTPConnectionLost | asyncssh.SFTPNoConnection):
            return TransientError(f"{where}: SFTP connection lost ({reason})", path=path)
        return PermanentError(f"{where}: {reason}", path=path)
    if isinstance(exc, TimeoutError):
        return TransientError(f"{where}: no answer from the SFTP server in time", path=path)
    if isinstance(exc, asyncssh.Error):
        reason = one_line(exc.reason) or type(exc).__name__
        return TransientError(f"{where}: SSH connection lost ({reason})", path=path)
    if isinstance(exc, OSError):
        return TransientError(f"{where}: SSH connection lost ({exc.strerror or exc})", path=path)
    return PermanentError(f"{where}: {one_line(exc) or type(exc).__name__}", path=path)
