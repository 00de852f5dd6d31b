"""The roots of a copy or a verify: each must be a folder (the destination's may be made).

A refused login or a missing root is not a per-path finding: it stops the whole run
with the backend's error, worded once here for copy and verify alike.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from typing import Literal

from .backend import (
    BackendError,
    EntryKind,
    KnowsLoginFolder,
    NotFoundError,
    PermanentError,
    Session,
)
from .pool import SessionPool

Role = Literal["source", "destination"]


async def check_root(pool: SessionPool, role: Role) -> None:
    """Log in on ``pool`` and check its root is a folder: NotFoundError when it is
    missing, PermanentError when it is something else (AuthError... from the login)."""
    async with pool.session() as session:
        try:
            root = await session.stat("")
        except NotFoundError:
            raise NotFoundError(
                f"the {role} folder {pool.display} does not exist: check the path"
                f"{await login_hint(pool, session)}", path=""
            ) from None
    if root.kind is EntryKind.FILE:
        # fsmove copies folders; one file is a folder's copy filtered to it.
        name = pool.display.rstrip("/").rsplit("/", 1)[-1]
        raise PermanentError(
            f"the {role} {pool.display} is a file, not a folder: give the folder that "
            f"holds it, with --include '/{name}' to take that file alone", path="")
    if root.kind is not EntryKind.DIR:
        raise PermanentError(f"the {role} {pool.display} is not a folder", path="")


async def login_hint(pool: SessionPool, session: Session) -> str:
    """A root that is not there, on a server whose login lands below its root: the
    path was probably meant from the login folder (``ftp://h/www`` for the login
    folder's ``www``; fsmove takes a URL's path from the server's root, as
    ``/www``). Says where the login lands, or "" (a chrooted login, a local path)."""
    if not isinstance(session, KnowsLoginFolder):
        return ""
    try:
        home = await session.login_folder()
    except BackendError:
        return ""
    root = session.server_root().rstrip("/") or "/"
    if not home or home == "/" or root == home or root.startswith(home.rstrip("/") + "/"):
        return ""
    return (f" (a URL's path starts at the server's root: this login lands in {home}; "
            f"for a folder there, write {home.rstrip('/')}{root})")


async def find_or_make_root(pool: SessionPool,
                            may_write: Callable[[], Awaitable[bool]]) -> bool:
    """Whether the destination root is there (True), logging in on ``pool``:
    PermanentError when it is something else than a folder. When it is missing, it is
    created (its parents too) once ``may_write()`` says so (the source proved readable;
    False: a dry run, nothing written), before the store's capabilities are asked: its
    write probe then runs in it. Look and creation go on one session (one borrow: the
    creation never waits for another session while the pool logs in). Writes nothing
    else, not even the store's write probe."""
    async with pool.session(before_capabilities=True) as session:
        try:
            root = await session.stat("")
        except NotFoundError:
            if await may_write():
                try:
                    await session.mkdir("")
                except BackendError as exc:
                    raise type(exc)(
                        f"cannot create the destination folder {pool.display}: {exc}"
                        f"{await login_hint(pool, session)}", path="") from None
            return False
    if root.kind is EntryKind.FILE:
        raise PermanentError(
            f"the destination {pool.display} is a file, not a folder: give a folder "
            "(a missing one is created)", path="")
    if root.kind is not EntryKind.DIR:
        raise PermanentError(f"the destination {pool.display} is not a folder", path="")
    return True


async def make_root(pool: SessionPool) -> bool:
    """Check the destination root is a folder, creating it (and its parents) when it is
    missing; True when it was created now."""
    return not await find_or_make_root(pool, _yes)


async def _yes() -> bool:
    return True
