"""``--delete`` and the clean-up of stale temporary files at the destination.

What may be deleted is decided by the plan (``transfers/plan.py``: never at or below a
source path fsmove did not copy or could not read); this module only removes.
"""

from __future__ import annotations

import contextlib
from collections.abc import AsyncIterator

from ..backend import BackendError, Entry
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
        except BackendError as exc:
            yield e, exc
            continue
        if journal is not None:
            journal.remove_file(e.path)
        yield e, None


async def remove_stale_temps(dst: SessionPool, temps: list[str]) -> None:
    """Remove this job's temporary files that no file of the plan resumes (best effort:
    one that cannot be removed is left, and found again by the next run)."""
    for t in temps:
        with contextlib.suppress(BackendError):
            async with dst.session() as s:
                await s.remove(t)
