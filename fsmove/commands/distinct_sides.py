"""`fsmove copy` refuses a destination that is its source, or inside it (or the reverse),
however each is spelled."""

from __future__ import annotations

import os

from fsmove.errors import UsageError
from fsmove.transfers.endpoint import Endpoint


def _server_of(e: Endpoint) -> tuple[str, str, int | None, str | None]:
    """Who serves an endpoint, normalised: ftp and ftps on one host and port are one
    server; host names compare case-insensitively; a missing port is the default one."""
    family = "ftp" if e.scheme in ("ftp", "ftps") else e.scheme
    return family, e.host.lower().rstrip("."), e.effective_port, e.user


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
    elif _server_of(src) == _server_of(dst):
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
