"""How a copy run ended, in words: the line for a run that stopped early, the note
`fsmove status` shows for a failed run, the error for a journal that cannot be written,
and the journal's last record of the run."""

from __future__ import annotations

import contextlib
import errno
import sqlite3
from collections.abc import Iterator
from pathlib import Path

from fsmove.errors import FsmoveError
from fsmove.progress import human_bytes
from fsmove.transfers.events import Summary
from fsmove.transfers.journal import Journal


def stopped_line(summary: Summary) -> str | None:
    """The one line for a run that stopped early (None when it tried every file)."""
    if summary.stopped == "destination-full":
        return (f"the destination is full: {summary.files_left} files, "
                f"{human_bytes(summary.bytes_left)} left to copy; free space and rerun")
    return None


@contextlib.contextmanager
def verification_recorded(journal_path: Path, src: str, dst: str) -> Iterator[list[int]]:
    """``copy --verify``'s verification, recorded in the job's journal: while it runs the
    job is "running" (its lock held), a verification that does not end (Ctrl-C, kill
    -9, an error) leaves the job unfinished ("interrupted", or "failed" with why), so
    ``fsmove status`` and ``fsmove resume`` see it; one that ends puts back the copy's
    own outcome, or "partial" when it found differences. The caller appends the
    verification's exit code to the list yielded. (Before session 32 the job said "ok"
    from the copy's end, and ``resume`` found nothing to resume.)"""
    codes: list[int] = []
    if not journal_path.exists():
        yield codes
        return
    with Journal(journal_path, src=src, dst=dst) as journal:
        last = journal.last_run()
        if last is None:
            yield codes
            return
        run_id, status, note = last
        journal.set_run_status(run_id, "running", note="verifying after the copy")
        try:
            yield codes
        except KeyboardInterrupt:
            with contextlib.suppress(sqlite3.Error):
                journal.set_run_status(run_id, "interrupted",
                                       note="the copy ended; its verification did not")
            raise
        except BaseException as exc:
            with contextlib.suppress(sqlite3.Error):
                journal.set_run_status(run_id, "failed",
                                       note=f"verification: {failure_note(exc)}")
            raise
        code = codes[-1] if codes else 0
        if code == 4:
            status, note = "partial", "verification found differences: see its report"
        elif code == 3:
            status, note = "partial", "verification could not read some paths"
        with contextlib.suppress(sqlite3.Error):
            journal.set_run_status(run_id, status, note=note)


def end_run(journal: Journal, status: str, *, note: str | None = None) -> None:
    """Record how the run ended; the error that ended it matters more than a journal
    that cannot take this last record (a full disk): that one is not raised."""
    with contextlib.suppress(sqlite3.Error):
        journal.finish_run(status, note=note)


def journal_write_problem(exc: BaseException, path: Path) -> FsmoveError | None:
    """The one-line error for a journal that cannot be written (its filesystem full,
    read-only, failing), or None when ``exc`` is not about the journal. Backends turn
    their own OSErrors into BackendErrors, so a bare OSError here is the journal's."""
    full_codes = (errno.ENOSPC, errno.EDQUOT)
    if isinstance(exc, sqlite3.Error):
        name = getattr(exc, "sqlite_errorname", "")
        full = name == "SQLITE_FULL" or "full" in str(exc)
        if not (full or name.startswith(("SQLITE_IOERR", "SQLITE_READONLY", "SQLITE_CANTOPEN"))):
            return None
    elif isinstance(exc, OSError) and exc.errno in full_codes:
        full = True  # the journal's folder, its lock file (other OSErrors are not ours)
    else:
        return None
    folder = path.parent
    if full:
        # Not "or give --journal elsewhere": another journal is another job, which does
        # not know this one's partial files (they would stay at the destination).
        return FsmoveError(f"the journal's folder {folder} is full: free space there and "
                           "rerun the same command to resume")
    return FsmoveError(f"cannot write the journal in {folder} ({exc}): check that folder "
                       "(or give --journal elsewhere) and rerun to resume")


def failure_note(exc: BaseException) -> str:
    """One line saying why a run failed, for `fsmove status` (errors above the engine
    and backend errors never hold a password; other exceptions show their type only)."""
    from fsmove.errors import FsmoveError
    from fsmove.transfers.backend import BackendError

    if isinstance(exc, FsmoveError | BackendError):
        text = " ".join(str(exc).split())
    else:
        text = f"internal error ({type(exc).__name__})"
    return text if len(text) <= 200 else text[:197] + "..."
