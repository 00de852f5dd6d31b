"""One attempt at copying one file, and the rule that makes it safe to retry.

A big file moves in several segments at once, each a reader task (the source) feeding a
writer (the destination). When one segment fails, the others must not live on: an
orphaned writer would keep writing its old range into the temporary file after the
retry reopened (and truncated) it — and even after the rename, through its open handle.
So, as in s3transfer's coordinator, one object owns every task of an attempt:

* ``run_together`` runs the segments; the first failure cancels the others and *waits
  for every one of them to end* (a writer ends only once its backend wrote its last
  byte, see ``Session.write``) before the error is raised. Only then does the engine
  reopen the file for a retry.
* ``FileTransfer`` counts the segment reads of the attempt: the read that finishes
  last re-checks that the source did not change while it was read (size and mtime;
  ``--checksum`` re-reads it whole before the rename), whatever the file's size.
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Iterable
from typing import TypeVar

from .backend import Entry, SourceChangedError, TransientError

T = TypeVar("T")

__all__ = ["DestinationChangedError", "FileTransfer", "SourceChangedError", "run_together"]


class DestinationChangedError(TransientError):
    """The temporary file is not what this attempt wrote (another writer, a store that
    lost data): restart the file from its first byte (retryable)."""


async def run_together(aws: Iterable[Awaitable[T]]) -> list[T]:
    """Await all; on the first failure (or a cancel of the caller) cancel the others and
    wait until every one has ended, then raise the first error (a plain exception, not
    an ExceptionGroup: the CLI maps plain errors to exit codes)."""
    tasks = [asyncio.ensure_future(a) for a in aws]
    if not tasks:
        return []
    errors: list[BaseException] = []  # in the order the tasks failed

    def note(t: asyncio.Future[T]) -> None:
        if not t.cancelled() and t.exception() is not None:
            errors.append(t.exception())  # type: ignore[arg-type]

    for t in tasks:
        t.add_done_callback(note)
    try:
        await asyncio.wait(tasks, return_when=asyncio.FIRST_EXCEPTION)
    finally:
        for t in tasks:
            if not t.done():
                t.cancel()
        await _until_all_ended(tasks)
    errors += [t.exception() for t in tasks  # type: ignore[misc]
               if not t.cancelled() and t.exception() is not None and t.exception() not in errors]
    if errors:
        raise errors[0]
    if any(t.cancelled() for t in tasks):
        raise asyncio.CancelledError()
    return [t.result() for t in tasks]


async def _until_all_ended(tasks: list[asyncio.Future[T]]) -> None:
    """Wait for every task to end, even if the caller is cancelled meanwhile (then the
    cancel is passed on to the tasks and raised once they all ended)."""
    cancelled = False
    while pending := [t for t in tasks if not t.done()]:
        try:
            await asyncio.wait(pending)
        except asyncio.CancelledError:
            cancelled = True
            for t in pending:
                t.cancel()
    if cancelled:
        raise asyncio.CancelledError()


class FileTransfer:
    """The state of one attempt at one file: what was listed (the source must still
    match it once read) and how many segment reads are still running."""

    def __init__(self, entry: Entry, *, reads: int) -> None:
        self.entry = entry
        self._reads_left = reads

    def read_finished(self) -> bool:
        """Record that one segment read every byte of its range; True for the last one:
        its reader then checks the source is unchanged (the whole file was read)."""
        self._reads_left -= 1
        return self._reads_left == 0
