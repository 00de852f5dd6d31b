"""Engine events rendered for people (tqdm bars on stderr) and scripts (JSON lines)."""

from __future__ import annotations

import json
import sys
import time
from typing import IO

from tqdm import tqdm

from fsmove.transfers.events import (
    BytesMoved,
    Event,
    FileDeleted,
    FileDone,
    FileFailed,
    FileRestarted,
    FileRetry,
    FileStarted,
    PathRefused,
    Planned,
    Summary,
)


def human_bytes(n: float) -> str:
    for unit in ("B", "KiB", "MiB", "GiB", "TiB"):
        if abs(n) < 1024 or unit == "TiB":
            return f"{n:.0f} {unit}" if unit == "B" else f"{n:.1f} {unit}"
        n /= 1024
    return f"{n:.1f} TiB"


def human_seconds(s: float) -> str:
    s = round(s)
    if s < 60:
        return f"{s}s"
    if s < 3600:
        return f"{s // 60}m{s % 60:02d}s"
    return f"{s // 3600}h{(s % 3600) // 60:02d}m"


class ProgressBars:
    """A byte bar with files done / total, rate, ETA and the file being moved."""

    def __init__(self, stream: IO[str] | None = None) -> None:
        self._stream = stream or sys.stderr
        self._bar: tqdm | None = None
        self._files_total = 0
        self._files_done = 0
        self._current: list[str] = []
        self._last_refresh = 0.0

    def __call__(self, event: Event) -> None:
        if isinstance(event, Planned):
            self._files_total = event.files_to_copy
            if event.files_to_copy:
                self._bar = tqdm(
                    total=event.bytes_to_copy,
                    unit="B",
                    unit_scale=True,
                    unit_divisor=1024,
                    file=self._stream,
                    dynamic_ncols=True,
                    mininterval=0.2,
                    smoothing=0.05,
                    bar_format="{l_bar}{bar}| {n_fmt}/{total_fmt} [{elapsed}<{remaining}, "
                    "{rate_fmt}] {postfix}",
                )
                self._describe()
        elif self._bar is None:
            return
        elif isinstance(event, BytesMoved):
            self._bar.update(event.n)
        elif isinstance(event, FileStarted):
            self._current.append(event.path)
            if event.resume_from and self._bar.total:
                # Bytes already at the destination from an earlier run: not to move again.
                self._bar.total = max(self._bar.n, self._bar.total - event.resume_from)
            self._describe()
        elif isinstance(event, FileDone | FileFailed):
            self._files_done += 1
            if event.path in self._current:
                self._current.remove(event.path)
            self._describe()
            if isinstance(event, FileFailed):
                self._bar.write(f"failed: {event.path}: {event.reason}")
        elif isinstance(event, FileRetry):
            self._bar.write(f"retry {event.attempt} in {event.delay:.0f}s: {event.reason}")
        elif isinstance(event, FileRestarted):
            self._bar.write(f"restarted: {event.path}: {event.reason}")
        elif isinstance(event, Summary):
            self._bar.close()
            self._bar = None

    def _describe(self) -> None:
        if self._bar is None:
            return
        now = time.monotonic()
        if now - self._last_refresh < 0.2 and self._files_done < self._files_total:
            return
        self._last_refresh = now
        current = self._current[-1] if self._current else ""
        if len(current) > 40:
            current = "…" + current[-39:]
        self._bar.set_description(f"{self._files_done}/{self._files_total} files", refresh=False)
        self._bar.set_postfix_str(current, refresh=False)


class JsonEvents:
    """One JSON object per line on stdout. Byte counts are aggregated into a
    ``progress`` event at most every half second, so the stream stays small. Every
    event carries ``t``: seconds since the command started (for timelines).

    Lines are flushed at most every ``FLUSH_EVERY`` seconds (and at once for the plan,
    failures and the summary): a flush per event cost a system call per file, a tenth
    of the client's time on small files."""

    FLUSH_EVERY = 0.2

    def __init__(self, stream: IO[str] | None = None) -> None:
        self._stream = stream or sys.stdout
        self._bytes = 0
        self._last = 0.0
        self._start = time.monotonic()
        self._flushed = 0.0

    def _write(self, data: dict[str, object], *, flush: bool = False) -> None:
        now = time.monotonic()
        data["t"] = round(now - self._start, 3)
        self._stream.write(json.dumps(data, ensure_ascii=False) + "\n")
        if flush or now - self._flushed >= self.FLUSH_EVERY:
            self._flushed = now
            self._stream.flush()

    def __call__(self, event: Event) -> None:
        if isinstance(event, BytesMoved):
            self._bytes += event.n
            now = time.monotonic()
            if now - self._last >= 0.5:
                self._last = now
                self._write({"type": "progress", "bytes_sent": self._bytes})
            return
        data = event.to_dict()
        if isinstance(event, Summary):
            data["rate"] = event.rate
        self._write(data, flush=isinstance(event, Summary | Planned | FileFailed))


def summary_text(s: Summary) -> str:
    """The final summary for people: files, bytes, time, rate, skipped, failed."""
    head = "Dry run: nothing was written." if s.dry_run else f"Copy {s.status}."
    lines = [
        head,
        f"  copied:   {s.files_copied} files, {human_bytes(s.bytes_copied)}"
        + ("" if s.dry_run else f" in {human_seconds(s.seconds)}"
           f" ({human_bytes(s.rate)}/s, {human_bytes(s.bytes_sent)} sent this run)"),
        f"  skipped:  {s.files_skipped} files already identical, {human_bytes(s.bytes_skipped)}",
    ]
    if s.files_deleted:
        verb = "would delete" if s.dry_run else "deleted"
        lines.append(f"  {verb}: {s.files_deleted} files only in the destination")
    if s.restarted:
        lines.append(f"  restarted: {len(s.restarted)} files")
        lines += [f"    {p}: {why}" for p, why in s.restarted[:20]]
    if s.refused:
        lines.append(f"  refused:  {len(s.refused)} source entries (not copied)")
        lines += [f"    {p}: {why}" for p, why in s.refused[:20]]
    if s.failed:
        lines.append(f"  FAILED:   {len(s.failed)} files (rerun the same command to retry them)")
        lines += [f"    {p}: {why}" for p, why in s.failed[:50]]
        if len(s.failed) > 50:
            lines.append(f"    … and {len(s.failed) - 50} more (see --json output)")
    return "\n".join(lines)


class DeletionList:
    """In a dry run, list what --delete would remove."""

    def __init__(self, stream: IO[str] | None = None) -> None:
        self._stream = stream or sys.stderr

    def __call__(self, event: Event) -> None:
        if isinstance(event, FileDeleted) and event.dry_run:
            self._stream.write(f"would delete: {event.path}\n")
        elif isinstance(event, PathRefused):
            self._stream.write(f"refused: {event.path}: {event.reason}\n")
