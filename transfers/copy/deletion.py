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

from ..backend import BackendError, Entry, NotFoundError
from ..journal import Journal
from ..pool import SessionPool


async def delete_files(dst: SessionPool, entries: list[Entry], *,
                       journal: Journal | None) -> AsyncIterator[tuple[Entry, BackendError | None]]:
    """Remove each destination file in turn; yield it with the error that kept it
    (None: removed, and forgotten by the journal)."""
    for e in entries:
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
    for folder in sorted(folders, key=lambda p: (-p.count("/"), p)):
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
