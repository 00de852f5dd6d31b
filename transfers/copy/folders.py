"""Destination folders: each missing one made once, parents first, as the first file
below it needs it (overlapping the copy), then the ones no file needed (empty folders).
A few are made ahead, as soon as the march finds them missing (``make_ahead``): the
march lists such a folder next, and its first file then finds it made instead of
waiting one more round trip.
"""

from __future__ import annotations

import asyncio

from ..backend import (
    BackendError,
    LinkRefusedError,
    NameRefusedError,
    NoSpaceError,
    PermanentError,
    parent_of,
)
from ..pool import SessionPool
from ..together import mark_seen

#: Folders made ahead at once (``make_ahead``): a few, so that they do not take the
#: sessions the first files need (FTP: one command at a time per session).
MADE_AHEAD_AT_ONCE = 2


def is_private_folder(mode: int | None) -> bool:
    """Whether a folder's bits keep its names or its way in from group or others (no
    r or no x for them): the only folders made with their source's bits; any other is
    made with the destination's default, as before."""
    return mode is not None and mode & 0o055 != 0o055


class DestinationFolderError(PermanentError):
    """A folder cannot be made in the destination root itself (not writable): nothing
    new can go there, the copy stops with one line (exit 1)."""


class FolderNotMadeError(PermanentError):
    """A destination folder below a top folder cannot be made (its parent turned
    read-only...), or a top folder the server refuses by name in a root the probe wrote
    into (vsftpd ``deny_file={cgi-bin}``: before session 33 that stopped the run as
    "the destination root is not writable"): what is below it fails, the rest of the
    copy goes on, and the summary lists it. (Before session 32 any such folder stopped
    the whole copy, exit 1, no summary of what had been copied.)"""


#: A folder's failure kept for every file below it (no MKD again for each).
_KEPT = (NameRefusedError, LinkRefusedError, FolderNotMadeError)


class DestinationFolders:
    def __init__(self, dst: SessionPool, *, at_once: int) -> None:
        self.dst = dst
        self._at_once = max(1, at_once)
        #: Destination folders still to make, and the tasks making them.
        self._missing: set[str] = set()
        #: The source's bits of a private folder (made so, not with the default).
        self._modes: dict[str, int] = {}
        self._tasks: dict[str, asyncio.Future[None]] = {}
        self._ahead = 0

    def add_missing(self, folder: str, *, mode: int | None = None) -> None:
        """A folder the march did not find at the destination (its parent was
        decided, and added if missing, before it). ``mode``: its permission bits at
        the source; a folder that keeps its names from group or others is made with
        them (before session 33 a 0700 folder came out 0755: its file names listable
        by everyone, its files' own bits kept)."""
        self._missing.add(folder)
        if is_private_folder(mode):
            assert mode is not None
            # Always rwx for the owner: the copy must write into it (a 0500 source
            # folder made 0500 would refuse its own files).
            self._modes[folder] = (mode & 0o777) | 0o700

    def make_ahead(self, folder: str) -> None:
        """Start making ``folder`` (missing, see ``add_missing``) now, in the
        background, unless ``MADE_AHEAD_AT_ONCE`` are being made ahead already (it is
        then made when a file needs it). A failure waits for whoever needs the folder
        (``ensure``, ``make_remaining``), as if it had been made then."""
        if self._ahead >= MADE_AHEAD_AT_ONCE or folder in self._tasks \
                or folder not in self._missing:
            return
        self._ahead += 1
        self._start(folder).add_done_callback(self._made_ahead)

    def _made_ahead(self, _task: asyncio.Future[None]) -> None:
        self._ahead -= 1

    async def make_remaining(self) -> list[tuple[str, str]]:
        """Make every folder no file needed (``at_once`` at a time); return those whose
        name the server refused (path, why): failed, the rest made."""
        sem = asyncio.Semaphore(self._at_once)
        refused: dict[str, str] = {}

        async def one(d: str) -> None:
            async with sem:
                try:
                    await self.ensure(d)
                except _KEPT as exc:
                    if exc.path is not None:
                        refused.setdefault(exc.path, str(exc))

        await asyncio.gather(*(one(d) for d in sorted(self._missing)))
        return sorted(refused.items())

    async def ensure(self, d: str) -> None:
        """Make destination folder ``d`` (parents first, each folder once, one command
        each) if the march found it missing. A refusal for good (not writable...) stops
        what is below that folder (``FolderNotMadeError``), as a refused *name*
        (``NameRefusedError``) or a link in the way (``LinkRefusedError``) does."""
        if d not in self._missing:
            return
        task = self._tasks.get(d) or self._start(d)
        try:
            await asyncio.shield(task)
        except _KEPT:
            raise  # kept: every file below fails with it, no MKD again for each
        except BackendError:
            if self._tasks.get(d) is task:
                del self._tasks[d]  # a retry (of any file below) tries again
            raise

    def _start(self, d: str) -> asyncio.Future[None]:
        task = asyncio.ensure_future(self._make(d))
        # A waiter cancelled before the task ends (the copy stopping) detaches from it;
        # its failure is still taken here, never left "never retrieved".
        task.add_done_callback(mark_seen)
        self._tasks[d] = task
        return task

    async def _make(self, d: str) -> None:
        await self.ensure(parent_of(d))
        try:
            async with self.dst.session() as s:
                await s.mkdir(d, mode=self._modes.get(d))
        except BackendError as exc:
            if exc.retryable or isinstance(exc, NoSpaceError | NameRefusedError
                                           | LinkRefusedError):
                # A refused name, or a link (or what a server hides) in the way, fails
                # what is below that folder, not the whole copy.
                raise
            text = str(exc)
            if parent_of(d) == "" and not (await self.dst.capabilities()).root_writable:
                raise DestinationFolderError(
                    f"the destination root is not writable: {text}" if "mkdir" in text
                    else f"the destination root is not writable: cannot make the folder "
                    f"{d!r} in it: {text}", path=d) from None
            raise FolderNotMadeError(
                text if "mkdir" in text else f"cannot make the folder {d!r} at the "
                f"destination: {text}", path=d) from None
        self._missing.discard(d)

    async def stop(self) -> None:
        """Folder tasks outlive the waiter that stopped the copy: end them before the
        pools close (else they fail later on a closed pool, unseen)."""
        tasks = [t for t in self._tasks.values() if not t.done()]
        for t in tasks:
            t.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)
