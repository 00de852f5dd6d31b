"""Where a command's output goes besides the terminal (fsmove/output.py decides what
goes where): the ``--log-file`` (lines stamped with the time) and the ``--json`` stream
(one event per line on stdout, ending with the summary)."""

from __future__ import annotations

import errno
import json
import os
import time
from datetime import datetime
from pathlib import Path
from typing import IO, Any

from fsmove.errors import FsmoveError, UsageError
from fsmove.printable import printable
from fsmove.transfers.events import BytesMoved, Event, FileFailed, Planned, Summary

#: JSON progress events at most this often.
JSON_PROGRESS_EVERY = 0.5
#: JSON lines are flushed at most this often (and at once for the plan, failures and the
#: summary): a flush per event cost a system call per file, a tenth of the client's time.
JSON_FLUSH_EVERY = 0.2


class LogFile:
    """``--log-file``: lines appended with a timestamp, flushed one by one."""

    def __init__(self, path: Path) -> None:
        try:
            self._fh: IO[str] | None = open(path, "a", encoding="utf-8")
        except OSError as exc:
            raise UsageError(f"--log-file {path}: {exc.strerror or exc}") from None

    def write(self, text: str) -> None:
        if self._fh is None:
            return
        stamp = datetime.now().astimezone().strftime("%Y-%m-%d %H:%M:%S")
        for line in printable(text).split("\n"):
            self._fh.write(f"{stamp} {line}\n")
        self._fh.flush()

    def close(self) -> None:
        if self._fh is not None:
            self._fh.close()
            self._fh = None


class OutputClosedError(FsmoveError):
    """Standard output (or error) can no longer be written (its reader ended: ``|
    head``; its disk is full: ``> /dev/full``): the run stops as an error, its journal
    kept, rather than go on with nobody reading. ``command_entry`` says what becomes of
    the run (resume it, or nothing was changed)."""

    #: The one line gets the command's own ending (``command_entry.error_message``).
    stops_the_run = True

    def __init__(self, which: str = "standard output", *,
                 error: OSError | None = None) -> None:
        super().__init__(f"{which} could not be written ({_why_unwritable(error)}): "
                         "the run stopped")


def _why_unwritable(error: OSError | None) -> str:
    if error is None or isinstance(error, BrokenPipeError):
        return "broken pipe: whatever read it ended"
    if error.errno == errno.ENOSPC:
        return "its disk is full"
    return error.strerror or type(error).__name__


def silence(stream: IO[str]) -> None:
    """Point ``stream``'s descriptor at /dev/null: what is still buffered for it, and
    Python's flush at exit, then go nowhere instead of failing again."""
    try:
        null = os.open(os.devnull, os.O_WRONLY)
        os.dup2(null, stream.fileno())
        os.close(null)
    except (OSError, ValueError):
        pass


class JsonStream:
    """One JSON object per line. Byte counts are aggregated into a ``progress`` event
    at most every ``JSON_PROGRESS_EVERY``; every event carries ``t``, seconds since the
    command started. The engine's summary is held back: ``summary`` writes the last
    event, once, with the command's exit code."""

    def __init__(self, stream: IO[str], started: float) -> None:
        self._stream = stream
        self._start = started
        self._bytes = 0
        self._last_progress = 0.0
        self._flushed = 0.0
        self.summary_written = False
        #: The reader of stdout went away: nothing more is written.
        self.closed = False

    def write(self, data: dict[str, Any], *, flush: bool = False) -> None:
        if self.closed:
            return
        now = time.monotonic()
        data["t"] = round(now - self._start, 3)
        try:
            self._stream.write(json.dumps(data, ensure_ascii=False) + "\n")
            if flush or now - self._flushed >= JSON_FLUSH_EVERY:
                self._flushed = now
                self._stream.flush()
        except (OSError, ValueError) as exc:
            # Once: the run stops with one line on stderr (before session 32 it
            # stopped with none, exit 1, as "internal error (BrokenPipeError)"; a full
            # disk behind ``> file`` was a traceback before session 33).
            self.closed = True
            silence(self._stream)
            raise OutputClosedError(error=exc if isinstance(exc, OSError) else None
                                    ) from None

    def on_event(self, event: Event) -> None:
        if isinstance(event, BytesMoved):
            self._bytes += event.n
            now = time.monotonic()
            if now - self._last_progress >= JSON_PROGRESS_EVERY:
                self._last_progress = now
                self.write({"type": "progress", "bytes_sent": self._bytes})
            return
        if isinstance(event, Summary):
            return
        self.write(event.to_dict(), flush=isinstance(event, Planned | FileFailed))

    def summary(self, data: dict[str, Any]) -> None:
        if self.summary_written:
            return
        self.summary_written = True
        self.write({"type": "summary", **data}, flush=True)
