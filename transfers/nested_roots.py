"""Two roots on one server that are one folder, or nested, through a link on the server.

``fsmove copy`` refuses a destination that is its source or inside it (and the reverse)
by comparing the URLs' paths (``fsmove/commands/distinct_sides.py``). On a server the
paths can differ and still name one tree: ``/real`` and ``/alias/sub`` where ``alias``
is a link to ``real``, or ``/~/www`` and ``/home/u/www``. Copied as typed, the files
were written into the source, and ``--delete`` deleted the source's files (session 34's
adversarial pass, on OpenSSH, vsftpd, proftpd and pure-ftpd). So when both sides are on
one server, each root is named by the server with its links resolved before anything is
written, and compared again. A root that does not exist yet is named by its nearest
existing parent, the rest of its path as typed.

OpenSSH's ``realpath`` and the ``PWD`` after a ``CWD`` of vsftpd, pure-ftpd and proftpd
all name a folder with its links resolved (tests/test_copy_safety.py). Where a server
cannot (no such folder, or an answer fsmove cannot read), the check finds only what the
URLs show.
"""

from __future__ import annotations

import asyncio
import posixpath

from .backend import ResolvesPaths, UnsafePathError
from .pool import SessionPool


async def resolved_root(pool: SessionPool) -> str | None:
    """The pool's root as the server names it, links resolved; None when it cannot
    tell (a store that cannot name folders, a root none of whose parents it can enter)."""
    async with pool.session(before_capabilities=True) as session:
        if not isinstance(session, ResolvesPaths):
            return None
        path = session.server_root() or "."
        tail: list[str] = []
        for _ in range(256):  # bounded: a path has at most that many levels here
            real = await session.real_path(path)
            if real is not None:
                return posixpath.normpath(posixpath.join(real, *reversed(tail)))
            parent, name = posixpath.split(path.rstrip("/"))
            if not name:
                return None
            tail.append(name)
            path = parent or ("/" if path.startswith("/") else ".")
        return None


async def check_not_nested(src: SessionPool, dst: SessionPool) -> None:
    """UnsafePathError when the two roots, resolved on their one server, are one folder
    or one is inside the other. Writes nothing."""
    a, b = await asyncio.gather(resolved_root(src), resolved_root(dst))
    if a is None or b is None:
        return
    where = f"(on the server, {src.display} is {a} and {dst.display} is {b})"
    a, b = a.rstrip("/") + "/", b.rstrip("/") + "/"
    if a == b:
        raise UnsafePathError(f"source and destination are the same folder {where}: "
                              "nothing to do")
    if b.startswith(a):
        raise UnsafePathError(f"the destination is inside the source {where}: the copy "
                              "would copy itself; choose a separate destination")
    if a.startswith(b):
        raise UnsafePathError(f"the source is inside the destination {where}: choose a "
                              "separate destination")
