"""What a command prints, decided once, the same in every command.

- **live** (stderr is a terminal, no ``--stats``): the live display
  (``live_display.py``) while it runs, then the summary.
- **lines** (stderr is not a terminal, or ``--stats`` given): one ``progress:`` line
  every ``--stats`` (default 60 s; ``0``: none), never a carriage return; the summary.
- **quiet** (``-q``): errors only, then the summary.
- **json** (``--json``): nothing on stderr but the fatal error; stdout gets one JSON
  event per line, ending with a ``summary`` event in every outcome.

``-v`` adds one line per file (copied, deleted; in a dry run: would copy, would skip,
with sizes). Errors (a failed file, the fatal error) are printed in every mode but json,
warnings (a retry, a restarted file, a refused entry) in all but quiet and json.
``--log-file FILE`` appends the same lines, each stamped with the time, plus a
``progress:`` line every ``--stats`` interval (default 60 s) whatever the mode: the
record of an overnight run. A dry run never shows progress: it says what it would do.

The JSON stream ends with one ``summary`` event whatever happens: the engine's summary
plus ``exit_code`` when the run ends; ``{"status": "error"|"interrupted", "exit_code",
"error", ...counters so far}`` on a fatal error or Ctrl-C (``fatal``, called by the
CLI's one exception handler).
"""

from __future__ import annotations

import asyncio
import errno
import re
import sys
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import IO, TYPE_CHECKING, Any

from fsmove.errors import UsageError
from fsmove.output_channels import JsonStream, LogFile, OutputClosedError, silence
from fsmove.printable import printable
from fsmove.progress import (
    CopyProgress,
    VerifyProgress,
    human_bytes,
    path_and_why,
    stats_line,
    summary_text,
    verify_line,
)
from fsmove.transfers import events as ev

if TYPE_CHECKING:
    from fsmove.live_display import Frame, LiveDisplay

#: The ``--stats`` interval off a terminal when none is given (rclone's default is 1 m).
DEFAULT_STATS_INTERVAL = 60.0
#: How often the live display is redrawn.
LIVE_REFRESH = 0.25

_INTERVAL = re.compile(r"^\s*(\d+(?:\.\d+)?)\s*(ms|s|m|h)?\s*$")
_UNIT_SECONDS = {"ms": 0.001, "s": 1.0, "m": 60.0, "h": 3600.0, None: 1.0}


def parse_interval(text: str) -> float:
    """``30s``, ``1m``, ``0.2s``, ``500ms``, ``2h`` or plain seconds; ``0`` = off."""
    m = _INTERVAL.match(text)
    if m is None:
        raise UsageError(f"--stats {text!r}: give a duration like 30s, 1m or 500ms "
                         "(0 turns the progress lines off)")
    return float(m.group(1)) * _UNIT_SECONDS[m.group(2)]


@dataclass(frozen=True)
class OutputSettings:
    quiet: bool = False
    verbose: bool = False
    json: bool = False
    #: Seconds between progress lines; None: the live display on a terminal, lines
    #: every ``DEFAULT_STATS_INTERVAL`` off it.
    stats: float | None = None
    log_file: Path | None = None


def is_terminal(stream: IO[str]) -> bool:
    import os

    try:
        return stream.isatty() and os.environ.get("TERM") != "dumb"
    except (AttributeError, ValueError):
        return False


class CommandOutput:
    """Everything one command prints: a subscriber of the engine's events, the ticker
    of the live display and the progress lines, the summary and the fatal error."""

    def __init__(self, settings: OutputSettings, *, command: str,
                 stderr: IO[str] | None = None, stdout: IO[str] | None = None) -> None:
        self.settings = settings
        self.command = command
        self._err = stderr or sys.stderr
        self._out = stdout or sys.stdout
        self.progress = CopyProgress()
        self._json = JsonStream(self._out, self.progress.started) if settings.json else None
        self._log = LogFile(settings.log_file) if settings.log_file else None
        terminal = is_terminal(self._err)
        self.live_wanted = (terminal and settings.stats is None and not settings.quiet
                            and not settings.json)
        self.lines_interval = (0.0 if settings.quiet or settings.json or self.live_wanted
                               else settings.stats if settings.stats is not None
                               else DEFAULT_STATS_INTERVAL)
        self.log_interval = settings.stats if settings.stats is not None \
            else DEFAULT_STATS_INTERVAL
        self._live: LiveDisplay | None = None
        self._timer: asyncio.TimerHandle | None = None
        self._line: Callable[[], str] = lambda: stats_line(self.progress)
        self._last_line = 0.0
        self._last_log = 0.0
        self._summary: ev.Summary | None = None
        self._result: dict[str, Any] = {}
        self._dry_run = False
        self._closed = False
        self._err_closed = False
        if self._log is not None:
            self._log.write(f"fsmove {command}: started")

    # -- messages ------------------------------------------------------------------
    def _emit_line(self, text: str, *, level: str) -> None:
        """``level``: error (shown unless json), warn (unless quiet/json), file (only -v)."""
        s = self.settings
        show = not s.json and (
            level == "error" or (level == "warn" and not s.quiet)
            or (level == "file" and s.verbose)
        )
        if show:
            if self._live is not None:
                self._live.print_above(text)
            else:
                self._say(text)
        if self._log is not None and (level != "file" or s.verbose):
            self._log.write(text)

    def log_only(self, text: str) -> None:
        """A line for the ``--log-file`` alone (e.g. which job this is)."""
        if self._log is not None:
            self._log.write(text)

    def warn(self, text: str) -> None:
        self._emit_line(text, level="warn")

    def alert(self, text: str) -> None:
        """A warning shown in every mode (stderr stays free of JSON), e.g. a journal
        set aside, a ``~/.netrc`` others can read."""
        if self._live is not None:
            self._live.print_above(text)
        else:
            self._say(text)
        if self._log is not None:
            self._log.write(text)

    def _say(self, text: str) -> None:
        """One line on stderr. Its reader gone (``2>&1 | head``): the run stops
        (``OutputClosedError``, its journal kept), quietly: there is nowhere to say it,
        and the log file, when given, gets the reason. Before session 32 it stopped
        as "internal error (BrokenPipeError)"."""
        if self._err_closed:
            return
        try:
            self._err.write(printable(text) + "\n")
            self._err.flush()
        except (OSError, ValueError) as exc:
            self._err_closed = True
            silence(self._err)
            if isinstance(exc, OSError) and exc.errno == errno.EIO:
                return  # a hung-up terminal: silent from now on (live_display._drawn)
            raise OutputClosedError("standard error", error=exc if isinstance(
                exc, OSError) else None) from None

    # -- the engine's events ---------------------------------------------------------
    def __call__(self, event: ev.Event) -> None:
        self.progress.update(event)
        if self._json is not None:
            self._json.on_event(event)
        if isinstance(event, ev.BytesMoved):
            return  # the hot one (a piece moved): counted above, never a line
        if isinstance(event, ev.FileDone):
            self._emit_line(f"copied: {event.path} ({human_bytes(event.size)})", level="file")
        elif isinstance(event, ev.FileFailed):
            self._emit_line(f"failed: {path_and_why(event.path, event.reason)}",
                            level="error")
        elif isinstance(event, ev.FileRetry):
            prefix = f"{event.path}: "
            why = event.reason.removeprefix(prefix)
            self._emit_line(f"retry {event.attempt} of {event.path} in {event.delay:.0f}s: "
                            f"{why}", level="warn")
        elif isinstance(event, ev.FileRestarted):
            self._emit_line(f"restarted: {path_and_why(event.path, event.reason)}",
                            level="warn")
        elif isinstance(event, ev.PathRefused):
            self._emit_line(f"refused: {event.path}: {event.reason}", level="warn")
        elif isinstance(event, ev.TimeNotKept):
            self._emit_line(f"time not kept: {event.path}: {event.reason}", level="warn")
        elif isinstance(event, ev.ModeNotKept):
            self._emit_line(f"permissions not kept: {event.path}: {event.reason}",
                            level="warn")
        elif isinstance(event, ev.FilePlanned):
            verb = "would copy" if event.action == "copy" else "would skip"
            self._emit_line(f"{verb}: {event.path} ({human_bytes(event.size)})", level="file")
        elif isinstance(event, ev.FileDeleted):
            size = f" ({human_bytes(event.size)})" if event.size is not None else ""
            if event.dry_run:
                # Always listed, not only under -v: a deletion is what a dry run is for.
                self._emit_line(f"would delete: {event.path}{size}", level="warn")
            else:
                self._emit_line(f"deleted: {event.path}{size}", level="file")
        elif isinstance(event, ev.Summary):
            self._summary = event

    # -- the ticker ------------------------------------------------------------------
    def start(self, *, dry_run: bool = False) -> None:
        """Call on the running event loop when the copy starts. A dry run shows no
        progress at all (it moves nothing)."""
        self._dry_run = dry_run
        if dry_run:
            return
        progress = self.progress

        def frame() -> Frame:
            from fsmove.live_display import copy_frame
            return copy_frame(progress)

        self._run_progress(frame, lambda: stats_line(progress))

    def start_verify(self) -> Callable[[object], None]:
        """Call on the running event loop when a verification starts; returns the
        verifier's ``on_progress`` callback."""
        progress = VerifyProgress()

        def frame() -> Frame:
            from fsmove.live_display import verify_frame
            return verify_frame(progress)

        self._run_progress(frame, lambda: verify_line(progress))
        return progress.update

    def _run_progress(self, frame: Callable[[], Frame], line: Callable[[], str]) -> None:
        """``frame`` builds the live display's frame: called (and rich imported, ~20 ms
        of start-up) only when a live display is wanted, not with --quiet, --json,
        --stats or off a terminal."""
        self.stop_progress()
        self._line = line
        if self.live_wanted:
            from fsmove.live_display import LiveDisplay
            self._live = LiveDisplay(self._err, frame())
            self._live.start()
        now = time.monotonic()
        self._last_line = self._last_log = now
        if self._live is not None or self.lines_interval > 0 or (
                self._log is not None and self.log_interval > 0):
            self._schedule()

    def _period(self) -> float:
        periods = [LIVE_REFRESH] if self._live is not None else []
        if self.lines_interval > 0:
            periods.append(self.lines_interval)
        if self._log is not None and self.log_interval > 0:
            periods.append(self.log_interval)
        return min(periods)

    def _schedule(self) -> None:
        loop = asyncio.get_running_loop()
        self._timer = loop.call_later(self._period(), self._tick)

    def _tick(self) -> None:
        self._timer = None
        if self._closed:
            return
        now = time.monotonic()
        if self._live is not None:
            self._live.refresh()
        line = None
        if self.lines_interval > 0 and now - self._last_line >= self.lines_interval * 0.999:
            self._last_line = now
            line = self._line()
            self._say(line)
        if self._log is not None and self.log_interval > 0 \
                and now - self._last_log >= self.log_interval * 0.999:
            self._last_log = now
            self._log.write(line or self._line())
        self._schedule()

    def stop_progress(self) -> None:
        if self._timer is not None:
            self._timer.cancel()
            self._timer = None
        if self._live is not None:
            self._live.stop()
            self._live = None

    # -- ends ------------------------------------------------------------------------
    def copy_finished(self) -> None:
        """The engine returned: the progress stops and the summary is printed."""
        self.stop_progress()
        s = self._summary
        if s is None:
            return
        text = summary_text(s, self.progress.planned)
        if not self.settings.json:
            self._say(text)
        if self._log is not None:
            self._log.write(text)
        data = s.to_dict()
        data.pop("type", None)
        data["rate"] = s.rate
        if s.dry_run and self.progress.planned is not None:
            pl = self.progress.planned
            data.update(would_copy=pl.files_to_copy, would_copy_bytes=pl.bytes_to_copy,
                        would_skip=pl.files_skipped, would_delete=s.files_deleted)
        self._result.update(data)

    def verification(self, report: dict[str, Any], text: str) -> None:
        """A verification's report: the JSON document as one ``verification`` event,
        or its text on stdout."""
        if self._json is not None:
            self._json.write({"type": "verification", **report}, flush=True)
        else:
            self._out.write(printable(text) + "\n")
            self._out.flush()
        if self._log is not None:
            self._log.write(text)
        self._result["verification"] = report.get("verdict")
        if "status" not in self._result:
            self._result["status"] = report.get("verdict")

    def print_info(self, text: str) -> None:
        """A line for people on stdout (e.g. where a report was written); logged too."""
        if not self.settings.json:
            self._out.write(printable(text) + "\n")
            self._out.flush()
        if self._log is not None:
            self._log.write(text)

    def close(self, exit_code: int) -> None:
        """The command ends normally with ``exit_code``: the JSON summary event."""
        self.stop_progress()
        if self._closed:
            return
        self._closed = True
        if self._json is not None:
            self._json.summary({"command": self.command, **self._result,
                                "exit_code": int(exit_code)})
        if self._log is not None:
            self._log.write(f"fsmove {self.command}: exit {int(exit_code)}")
            self._log.close()

    def fatal(self, message: str, exit_code: int, *, interrupted: bool) -> None:
        """A fatal error or Ctrl-C: the display is erased (the CLI prints the error on a
        line of its own), the JSON stream gets its summary, the log the error."""
        self.stop_progress()
        if self._closed:
            return
        self._closed = True
        p = self.progress
        if self._json is not None:
            self._json.summary({
                "command": self.command,
                "status": "interrupted" if interrupted else "error",
                "exit_code": int(exit_code), "error": message,
                "files_copied": p.files_done, "files_failed": p.files_failed,
                "bytes_sent": p.bytes_sent,
                "seconds": round(p.elapsed, 3),
            })
        if self._log is not None:
            self._log.write(f"fsmove: error: {message}")
            self._log.write(f"fsmove {self.command}: exit {int(exit_code)}")
            self._log.close()
