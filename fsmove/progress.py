"""A copy's progress as numbers for people: sizes, durations and rates in one set of
units (KiB, MiB, GiB, powers of 1024, and the same in every line, bar and summary), the
running counters every rendering reads (``CopyProgress``), the plain one-line report
written off a terminal, and the final summary.

The renderings themselves live in ``output.py`` (modes, JSON, log lines) and
``live_display.py`` (the terminal display)."""

from __future__ import annotations

import time
from collections import deque
from dataclasses import dataclass, field

from fsmove.transfers.events import (
    BytesMoved,
    Event,
    FileDeleted,
    FileDone,
    FileFailed,
    FilePlanned,
    FileRetry,
    FileStarted,
    Planned,
    Summary,
)

#: Seconds of history the displayed rate is computed over (a rate over the whole run
#: hides a stall; an instantaneous one jumps around).
RATE_WINDOW = 10.0


def human_bytes(n: float) -> str:
    for unit in ("B", "KiB", "MiB", "GiB", "TiB"):
        if abs(n) < 1024 or unit == "TiB":
            return f"{n:.0f} {unit}" if unit == "B" else f"{n:.1f} {unit}"
        n /= 1024
    return f"{n:.1f} TiB"


def human_rate(bytes_per_second: float) -> str:
    return f"{human_bytes(bytes_per_second)}/s"


def human_seconds(s: float) -> str:
    s = round(s)
    if s < 60:
        return f"{s}s"
    if s < 3600:
        return f"{s // 60}m{s % 60:02d}s"
    return f"{s // 3600}h{(s % 3600) // 60:02d}m"


def path_and_why(path: str, why: str) -> str:
    """``path: why``, once: many reasons already begin with their path (an exception's
    message names its file), and "a.bin: a.bin: changed since it was listed" read as a
    stutter."""
    if not path:
        # The root folder itself (its listing refused): an empty path read ": could
        # not list this folder" (session 33).
        return f"(the root folder): {why}"
    prefix = f"{path}: "
    return f"{path}: {why[len(prefix):] if why.startswith(prefix) else why}"


def files_word(n: int) -> str:
    return f"{n} file" if n == 1 else f"{n} files"


@dataclass
class Transfer:
    """A file in flight."""

    path: str
    size: int
    done: int = 0


@dataclass
class CopyProgress:
    """Counters fed by the engine's events; every rendering reads them."""

    started: float = field(default_factory=time.monotonic)
    planned: Planned | None = None
    files_done: int = 0
    files_failed: int = 0
    retries: int = 0
    bytes_sent: int = 0
    #: Bytes of this run still to send (the plan, less what resumed files already hold).
    #: The plan grows while the copy walks the trees (``Planned.complete`` False).
    bytes_to_send: int = 0
    #: Bytes resumed files already held at the destination (not sent by this run).
    bytes_resumed: int = 0
    in_flight: dict[str, Transfer] = field(default_factory=dict)
    #: A dry run's decisions, counted from ``FilePlanned`` / ``FileDeleted`` events.
    would_delete_bytes: int = 0
    #: Whether byte counts name their file (a display then shows each file's share).
    file_bytes_known: bool = False
    _samples: deque[tuple[float, int]] = field(default_factory=deque)

    def update(self, event: Event) -> None:
        if isinstance(event, BytesMoved):
            self.bytes_sent += event.n
            t = self.in_flight.get(event.path)
            if event.path:
                self.file_bytes_known = True
            if t is not None:
                t.done += event.n
        elif isinstance(event, FileStarted):
            self.in_flight[event.path] = Transfer(event.path, event.size, event.resume_from)
            if event.resume_from:
                self.bytes_resumed += event.resume_from
                self.bytes_to_send = max(self.bytes_sent, self.bytes_to_send - event.resume_from)
        elif isinstance(event, FileDone):
            self.files_done += 1
            self.in_flight.pop(event.path, None)
        elif isinstance(event, FileFailed):
            self.files_failed += 1
            self.in_flight.pop(event.path, None)
        elif isinstance(event, FileRetry):
            self.retries += 1
        elif isinstance(event, Planned):
            # A growing plan's totals replace the previous ones (the last is the whole).
            self.planned = event
            self.bytes_to_send = max(self.bytes_sent, event.bytes_to_copy - self.bytes_resumed)
        elif isinstance(event, FileDeleted) and event.dry_run:
            self.would_delete_bytes += event.size or 0
        elif isinstance(event, FilePlanned | Summary):
            pass

    @property
    def elapsed(self) -> float:
        return time.monotonic() - self.started

    def rate(self) -> float:
        """Bytes per second over the last ``RATE_WINDOW`` seconds."""
        now = time.monotonic()
        self._samples.append((now, self.bytes_sent))
        while len(self._samples) > 2 and now - self._samples[1][0] > RATE_WINDOW:
            self._samples.popleft()
        t0, b0 = self._samples[0]
        if now - t0 < 0.5:
            return self.bytes_sent / self.elapsed if self.elapsed > 0.5 else 0.0
        return max(0.0, (self.bytes_sent - b0) / (now - t0))

    def eta(self, rate: float) -> float | None:
        """Seconds left at ``rate``; None while unknown (no rate yet, or the walk still
        finds files to copy: an ETA from part of the plan would be a promise broken)."""
        left = self.bytes_to_send - self.bytes_sent
        if rate <= 0 or left < 0 or self.planned is None or not self.planned.complete:
            return None
        return left / rate

    @property
    def fraction(self) -> float:
        if not self.bytes_to_send:
            return 1.0 if self.planned is not None else 0.0
        return min(1.0, max(0.0, self.bytes_sent / self.bytes_to_send))


@dataclass
class VerifyProgress:
    """Counters of a verification, fed by the verifier's progress events."""

    started: float = field(default_factory=time.monotonic)
    listed: dict[str, int] = field(default_factory=dict)
    sides_listed: int = 0
    checked: int = 0
    problems: int = 0
    bytes_read: int = 0
    _samples: deque[tuple[float, int]] = field(default_factory=deque)

    def update(self, event: object) -> None:
        # Imported here: only a verification needs the verifier (start-up time).
        from fsmove.verify.verifier import (
            BytesHashed,
            Category,
            EntryListed,
            ListingFinished,
            PathChecked,
        )

        if isinstance(event, BytesHashed):
            self.bytes_read += event.nbytes
        elif isinstance(event, EntryListed):
            self.listed[event.side.value] = self.listed.get(event.side.value, 0) + 1
        elif isinstance(event, ListingFinished):
            self.sides_listed += 1
        elif isinstance(event, PathChecked):
            self.checked += 1
            if event.category is not Category.IDENTICAL:
                self.problems += 1

    @property
    def elapsed(self) -> float:
        return time.monotonic() - self.started

    @property
    def paths(self) -> int:
        """Distinct paths listed so far (at least the larger side's count)."""
        return max(self.listed.values(), default=0)

    @property
    def fraction(self) -> float:
        return min(1.0, self.checked / self.paths) if self.paths else 0.0

    def rate(self) -> float:
        now = time.monotonic()
        self._samples.append((now, self.bytes_read))
        while len(self._samples) > 2 and now - self._samples[1][0] > RATE_WINDOW:
            self._samples.popleft()
        t0, b0 = self._samples[0]
        if now - t0 < 0.5:
            return self.bytes_read / self.elapsed if self.elapsed > 0.5 else 0.0
        return max(0.0, (self.bytes_read - b0) / (now - t0))


def verify_line(v: VerifyProgress, *, short: bool = False) -> str:
    """One line of a verification's progress: ``progress: …`` for logs, the short
    form for the terminal's live display."""
    listed = f"{v.paths}" if v.sides_listed >= 2 else f"{v.paths}+"
    rate = human_rate(v.rate())
    if short:
        return (f"Verifying {v.checked}/{listed} paths · {human_bytes(v.bytes_read)} read · "
                f"{rate} · {v.problems} problems · {human_seconds(v.elapsed)}")
    return (f"progress: {v.checked} of {listed} paths checked, "
            f"{human_bytes(v.bytes_read)} read at {rate}, {v.problems} problems, "
            f"elapsed {human_seconds(v.elapsed)}")


def stats_line(p: CopyProgress) -> str:
    """The plain progress line written every ``--stats`` interval off a terminal:
    no carriage return, no bar, complete on its own (a log is read line by line)."""
    if p.planned is None:
        return f"listing source and destination, elapsed {human_seconds(p.elapsed)}"
    rate = p.rate()
    eta = p.eta(rate)
    parts = [
        f"{human_bytes(p.bytes_sent)} of {human_bytes(p.bytes_to_send)} "
        f"({p.fraction:.0%})",
        f"{p.files_done} of {p.planned.files_to_copy} files",
        human_rate(rate),
        f"ETA {human_seconds(eta)}" if eta is not None else "ETA -",
        f"elapsed {human_seconds(p.elapsed)}",
    ]
    if p.in_flight:
        parts.append(f"{len(p.in_flight)} in flight")
    if p.files_failed:
        parts.append(f"{p.files_failed} failed")
    return "progress: " + ", ".join(parts)


def summary_text(s: Summary, planned: Planned | None = None) -> str:
    """The final summary for people: files, bytes, time, rate, skipped, failed. A dry
    run says what it *would* do (from the plan), never "copied"."""
    if s.dry_run:
        lines = ["Dry run: nothing was written."]
        if planned is not None:
            lines.append(f"  would copy:   {files_word(planned.files_to_copy)}, "
                         f"{human_bytes(planned.bytes_to_copy)}")
            lines.append(f"  would skip:   {files_word(planned.files_skipped)} already "
                         f"identical, {human_bytes(planned.bytes_skipped)}")
        if s.files_deleted:
            lines.append(f"  would delete: {files_word(s.files_deleted)} only in the "
                         "destination")
        if s.notes:
            # Questions only a write can answer: the plan above took the plain answer.
            lines.append(f"  not asked:    {len(s.notes)} "
                         f"{'name' if len(s.notes) == 1 else 'names'} the real run "
                         "asks the destination about first (a dry run writes nothing); "
                         "the plan above takes them as kept apart and unchanged")
            lines += [f"    {p}: {why}" for p, why in s.notes[:20]]
            if len(s.notes) > 20:
                lines.append(f"    … and {len(s.notes) - 20} more (see --json output)")
    else:
        lines = [
            f"Copy {s.status}.",
            f"  copied:   {files_word(s.files_copied)}, {human_bytes(s.bytes_copied)}"
            f" in {human_seconds(s.seconds)} ({human_rate(s.rate)}, "
            f"{human_bytes(s.bytes_sent)} sent this run)",
            f"  skipped:  {files_word(s.files_skipped)} already identical, "
            f"{human_bytes(s.bytes_skipped)}",
        ]
        if s.files_deleted:
            lines.append(f"  deleted:  {files_word(s.files_deleted)} only in the destination")
    if s.restarted:
        lines.append(f"  restarted: {files_word(len(s.restarted))}")
        lines += [f"    {path_and_why(p, why)}" for p, why in s.restarted[:20]]
    if s.times_not_kept:
        lines.append(f"  time not kept: {files_word(len(s.times_not_kept))} (copied; the "
                     "destination would not take their modification time)")
        lines += [f"    {p}: {why}" for p, why in s.times_not_kept[:20]]
    if s.modes_not_kept:
        lines.append(f"  permissions not kept: {files_word(len(s.modes_not_kept))} "
                     "(copied; the destination would not take their permission bits: "
                     "check who can read them there)")
        lines += [f"    {p}: {why}" for p, why in s.modes_not_kept[:20]]
    if s.refused:
        lines.append(f"  refused:  {len(s.refused)} source entries (not copied; a rerun "
                     "refuses them again until they change at the source)")
        lines += [f"    {p}: {why}" for p, why in s.refused[:20]]
    # A refused name is also a failure (the run is partial: exit 3); it is listed once,
    # above, where "rerun to retry" is not the advice.
    said = {(p, f"not copied: {why}") for p, why in s.refused}
    failed = [f for f in s.failed if f not in said]
    if failed:
        if s.dry_run:
            lines.append(f"  would fail: {files_word(len(failed))} (the real run stops at "
                         "them too)")
        else:
            # Every one refused for its rights (a read-only account or server: OpenSSH's
            # `internal-sftp -R`): a rerun as such fails them again (session 35).
            denied = all("permission denied" in why.lower() for _p, why in failed)
            advice = ("the destination refused to write them: give the account the "
                      "right to write there, then rerun the same command" if denied
                      else "rerun the same command to retry them")
            lines.append(f"  FAILED:   {files_word(len(failed))} ({advice})")
        lines += [f"    {path_and_why(p, why)}" for p, why in failed[:50]]
        if len(failed) > 50:
            lines.append(f"    … and {len(failed) - 50} more (see --json output)")
    return "\n".join(lines)
