"""`fsmove copy` refuses a destination that is its source, or inside it (or the reverse),
however each is spelled."""

from __future__ import annotations

import os
import socket

from fsmove.errors import UsageError
from fsmove.transfers.endpoint import Endpoint


def _server_of(e: Endpoint) -> tuple[str, str, int | None, str | None]:
    """Who serves an endpoint, normalised: ftp and ftps on one host and port are one
    server; host names compare case-insensitively; a missing port is the default one."""
    family = "ftp" if e.scheme in ("ftp", "ftps") else e.scheme
    return family, e.host.lower().rstrip("."), e.effective_port, e.user


def _addresses(host: str, port: int | None) -> set[str]:
    """The addresses ``host`` resolves to (none when it does not resolve)."""
    try:
        found = socket.getaddrinfo(host, port, type=socket.SOCK_STREAM)
    except (OSError, UnicodeError):
        return set()
    return {str(info[4][0]) for info in found}


def same_server(src: Endpoint, dst: Endpoint) -> bool:
    """One server under two names (``localhost`` and ``127.0.0.1``): same scheme family,
    port and user, and the names share an address (FTP and SFTP serve one account per
    address and port; no name-based virtual hosts)."""
    a, b = _server_of(src), _server_of(dst)
    if a == b:
        return True
    if a[0] != b[0] or a[2:] != b[2:]:
        return False
    return bool(_addresses(a[1], a[2]) & _addresses(b[1], b[2]))


def _real_local(path: str) -> str:
    """The path with every symlink resolved (the missing tail of a path that does not
    exist yet kept as written)."""
    return os.path.realpath(path)


def check_distinct(src: Endpoint, dst: Endpoint) -> None:
    """Refuse a destination equal to, or inside, the source (and the reverse), also
    through symlinks (local paths are compared resolved, as written too) and through
    spellings of one server (``ftp://h`` and ``ftps://H:21``)."""
    if src.is_local != dst.is_local:
        return
    if src.is_local:
        pairs = [(src.path, dst.path), (_real_local(src.path), _real_local(dst.path))]
    elif same_server(src, dst):
        pairs = [(src.path, dst.path)]
    else:
        return
    for a, b in ((x.rstrip("/") + "/", y.rstrip("/") + "/") for x, y in pairs):
        if a == b:
            raise UsageError("source and destination are the same folder: nothing to do")
        if b.startswith(a):
            raise UsageError(
                "the destination is inside the source: the copy would copy itself"
            )
        if a.startswith(b):
            raise UsageError(
                "the source is inside the destination: choose a separate destination"
            )
