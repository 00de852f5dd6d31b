"""One copy at a time into a destination, whatever job it runs under.

The journal's lock keeps two runs of *one job* apart. Two jobs can name one destination:
another ``--journal``, ``ftp://h`` and ``ftp://h:21``, a local path through a symlink.
Two defences, so they can never corrupt each other:

1. **Temporary names are per job** (``tree.TempNames``, keyed by the job's secret): two
   jobs never write into one temporary file, and a multi-segment file's size is checked
   before its rename. Concurrent runs from two machines stay correct (each places
   whole files; the last rename wins).
2. **This lock**, so that on one machine the second run refuses at once with a one-line
   error instead of doing the work twice: an exclusive ``flock`` on a file named after
   the *normalised* destination (local: every symlink resolved; remote: ftp/ftps as one
   protocol family, host case-insensitive, the default port filled in, the path
   normalised; the user left out, as two accounts may share one tree). The kernel
   releases a ``flock`` when its process dies, so a killed run never leaves a stale
   lock; the file holds the owner (pid, job, start time) for the message only.

Why not a lock file in the destination root: it would be a file in the user's tree
(shown by listings, to be hidden from copy, verify and ``--delete``), FTP cannot create
a file exclusively (STOR replaces), and a lock left by a killed run could only be
declared stale by guessing (its host may be another machine).
"""

from __future__ import annotations

import contextlib
import fcntl
import json
import os
import posixpath
import socket
import time
from pathlib import Path

import xxhash

from .endpoint import Endpoint
from .jobs import default_journal_dir


class DestinationLockedError(Exception):
    """Another fsmove on this machine is copying into the same destination."""

    def __init__(self, message: str, *, job: str | None) -> None:
        super().__init__(message)
        #: The holder's job (its journal path), when the lock file says.
        self.job = job


def destination_key(dst: Endpoint) -> str:
    """The destination, normalised so that every spelling of one tree gives one key."""
    if dst.is_local:
        return "file\n" + os.path.realpath(dst.path)
    family = "ftp" if dst.scheme in ("ftp", "ftps") else dst.scheme
    host = dst.host.lower().rstrip(".")
    path = posixpath.normpath("/" + dst.path.strip("/"))
    return f"{family}\n{host}\n{dst.effective_port}\n{path}"


def default_lock_dir() -> Path:
    return default_journal_dir().parent / "locks"


class DestinationLock:
    """``with DestinationLock(dst, job=...):`` holds the destination for the run."""

    def __init__(self, dst: Endpoint, *, job: str, lock_dir: Path | None = None) -> None:
        key = destination_key(dst)
        directory = lock_dir or default_lock_dir()
        self.path = directory / f"{xxhash.xxh3_64_hexdigest(key.encode())}.lock"
        self._display = dst.display
        self._job = job
        self._fd: int | None = None

    def __enter__(self) -> DestinationLock:
        self.path.parent.mkdir(parents=True, exist_ok=True, mode=0o700)
        fd = os.open(self.path, os.O_RDWR | os.O_CREAT | os.O_NOFOLLOW, 0o600)
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            record = _read_owner(fd)
            os.close(fd)
            owner = (f" (pid {record['pid']}, job {record['job']})"
                     if record is not None else "")
            raise DestinationLockedError(
                f"another fsmove{owner} is copying into {self._display} now; wait for it "
                "or stop it, then rerun",
                job=record["job"] if record is not None else None,
            ) from None
        os.ftruncate(fd, 0)
        record = {"pid": os.getpid(), "host": socket.gethostname(), "job": self._job,
                  "started": time.time()}
        os.pwrite(fd, json.dumps(record).encode(), 0)
        self._fd = fd
        return self

    def __exit__(self, *exc: object) -> None:
        if self._fd is not None:
            with contextlib.suppress(OSError):
                os.ftruncate(self._fd, 0)
            os.close(self._fd)  # releases the flock
            self._fd = None


def _read_owner(fd: int) -> dict[str, str] | None:
    """The holder's pid and job from the lock file, or None when it cannot be read
    (the holder may be writing it right now)."""
    try:
        record = json.loads(os.pread(fd, 4096, 0) or b"{}")
        return {"pid": str(int(record["pid"])), "job": str(record["job"])}
    except (OSError, ValueError, KeyError, TypeError):
        return None
