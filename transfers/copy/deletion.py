"""``--delete`` and the clean-up of stale temporary files at the destination.

What may be deleted is decided by the plan (``transfers/plan.py``: never at or below a
source path fsmove did not copy or could not read); this module only removes.

``--delete`` makes the destination's tree the source's: files only at the destination
go, and then the folders only at the destination (the march walked them, never below a
source path it could not look into), deepest first. Such a folder that is not empty
afterwards is kept without a word: what is left in it is what the run must not touch
(a file excluded by a filter, a link, a file whose deletion failed and was reported).
Without this, a folder the source lost stayed behind empty, and ``fsmove verify`` then
called the copy a mismatch.
"""

from __future__ import annotations

import contextlib
from collections.abc import AsyncIterator

from ..backend import (
    BackendError,
    Entry,
    EntryKind,
    LinkRefusedError,
    ListsKinds,
    NotFoundError,
    parent_of,
)
from ..journal import Journal
from ..name_twins import loose_key
from ..pool import SessionPool


class FoldersSeenAgain:
    """Every folder above a deletion, looked at again right before it (its parent
    listed, once per run of deletions: a link shows as one on every server, where FTP's
    CWD would follow it). The walk saw real folders, but it may have been hours ago: a
    destination folder replaced by a link to elsewhere meanwhile (another writer on the
    destination) made ``--delete`` remove files outside the destination (session 34's
    adversarial pass, on OpenSSH, vsftpd, proftpd and pure-ftpd). A small window
    between the look and the removal remains: FTP and SFTP have no removal relative to
    a folder handle. A listing that fails is the file's failure (the next run looks
    again), never taken for a link."""

    def __init__(self, dst: SessionPool) -> None:
        self._dst = dst
        self._real: dict[str, bool] = {"": True}
        self._kinds: dict[str, dict[str, EntryKind]] = {}

    async def refusal(self, path: str) -> LinkRefusedError | None:
        """Why nothing at ``path`` may be removed (a folder above it is no longer a
        real folder), or None. A listing's failure is raised (BackendError)."""
        folder = parent_of(path)
        if await self._is_real(folder):
            return None
        return LinkRefusedError(
            f"{path}: a folder above it is no longer a folder at the destination (a link "
            "put there during the run?): not deleted", path=path)

    async def _is_real(self, folder: str) -> bool:
        known = self._real.get(folder)
        if known is not None:
            return known
        real = await self._is_real(parent_of(folder))
        if real:
            kinds = await self._kinds_in(parent_of(folder))
            kind = kinds.get(folder)
            if kind is None:
                # A destination that ignores case or normalization holds the folder
                # under its own spelling (``docs`` for the source's ``Docs``).
                key = loose_key(folder)
                found = [k for p, k in kinds.items() if loose_key(p) == key]
                kind = found[0] if len(found) == 1 else None
            real = kind is EntryKind.DIR
        self._real[folder] = real
        return real

    async def _kinds_in(self, folder: str) -> dict[str, EntryKind]:
        """path -> kind of what ``folder`` holds, listed once (no times asked)."""
        kinds = self._kinds.get(folder)
        if kinds is None:
            async with self._dst.session() as s:
                if isinstance(s, ListsKinds):
                    kinds = await s.kinds_in(folder)
                else:
                    kinds = {e.path: e.kind async for e in s.list(folder)}
            self._kinds[folder] = kinds
        return kinds


async def delete_files(dst: SessionPool, entries: list[Entry], *, journal: Journal | None,
                       folders: FoldersSeenAgain | None = None,
                       ) -> AsyncIterator[tuple[Entry, BackendError | None]]:
    """Remove each destination file in turn, each folder above it seen again first
    (``FoldersSeenAgain``; give one to share its listings with ``remove_folders``);
    yield it with the error that kept it (None: removed, and forgotten by the
    journal)."""
    folders = folders or FoldersSeenAgain(dst)
    for e in entries:
        try:
            refused = await folders.refusal(e.path)
        except BackendError as exc:
            yield e, exc
            continue
        if refused is not None:
            yield e, refused
            continue
        try:
            async with dst.session() as s:
                await s.remove(e.path)
        except NotFoundError as exc:
            # Gone since the listing (the server's own upload file renamed into place,
            # another client): what --delete wanted, unless a look finds it still
            # there (an FTP 550 may be a refusal worded as "not found").
            if await _still_there(dst, e.path):
                yield e, exc
                continue
        except BackendError as exc:
            yield e, exc
            continue
        if journal is not None:
            journal.remove_file(e.path)
        yield e, None


async def _still_there(dst: SessionPool, path: str) -> bool:
    try:
        async with dst.session() as s:
            await s.stat(path)
    except NotFoundError:
        return False
    except BackendError:
        return True
    return True


async def remove_folders(dst: SessionPool, folders: list[str], *,
                         seen: FoldersSeenAgain | None = None) -> int:
    """Remove each folder that is empty by now, the deepest first, each folder above it
    seen again first; the number removed (a folder that cannot be removed is kept: see
    the module docstring)."""
    removed = 0
    seen = seen or FoldersSeenAgain(dst)
    for folder in sorted(folders, key=lambda p: (-p.count("/"), p)):
        try:
            if await seen.refusal(folder) is not None:
                continue
        except BackendError:
            continue
        try:
            async with dst.session() as s:
                await s.rmdir(folder)
        except BackendError:
            continue
        removed += 1
    return removed


async def remove_stale_temps(dst: SessionPool, temps: list[str]) -> None:
    """Remove this job's temporary files that no file of the plan resumes (best effort:
    one that cannot be removed is left, and found again by the next run)."""
    for t in temps:
        with contextlib.suppress(BackendError):
            async with dst.session() as s:
                await s.remove(t)
