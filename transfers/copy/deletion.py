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
    NotFoundError,
    parent_of,
)
from ..journal import Journal
from ..pool import SessionPool


class FoldersSeenAgain:
    """Every folder above a deletion, looked at again right before it (its parent
    listed: a link shows as one on every server, where FTP's CWD would follow it). The
    walk saw real folders, but it may have been hours ago: a destination folder
    replaced by a link to elsewhere meanwhile (another writer on the destination) made
    ``--delete`` remove files outside the destination (session 34's adversarial pass,
    on OpenSSH, vsftpd, proftpd and pure-ftpd). A small window between the look and
    the removal remains: FTP and SFTP have no removal relative to a folder handle."""

    def __init__(self, dst: SessionPool) -> None:
        self._dst = dst
        self._real: dict[str, bool] = {"": True}

    async def refusal(self, path: str) -> LinkRefusedError | None:
        """Why nothing at ``path`` may be removed (a folder above it is no longer a
        real folder), or None."""
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
            kinds = [e.kind async for e in self._listed(parent_of(folder)) if e.path == folder]
            real = kinds == [EntryKind.DIR]
        self._real[folder] = real
        return real

    async def _listed(self, folder: str) -> AsyncIterator[Entry]:
        try:
            async with self._dst.session() as s:
                async for entry in s.list(folder):
                    yield entry
        except BackendError:
            return


async def delete_files(dst: SessionPool, entries: list[Entry], *,
                       journal: Journal | None) -> AsyncIterator[tuple[Entry, BackendError | None]]:
    """Remove each destination file in turn, each folder above it seen again first
    (``FoldersSeenAgain``); yield it with the error that kept it (None: removed, and
    forgotten by the journal)."""
    folders = FoldersSeenAgain(dst)
    for e in entries:
        refused = await folders.refusal(e.path)
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


async def remove_folders(dst: SessionPool, folders: list[str]) -> int:
    """Remove each folder that is empty by now, the deepest first; the number removed
    (a folder that cannot be removed is kept: see the module docstring)."""
    removed = 0
    seen = FoldersSeenAgain(dst)
    for folder in sorted(folders, key=lambda p: (-p.count("/"), p)):
        if await seen.refusal(folder) is not None:
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
