"""Typed events the engine emits. The engine never prints: subscribers (progress bars,
the JSON event stream, the summary) turn these into output."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import asdict, dataclass, field, fields

_SCALARS = (str, int, float, bool, type(None))


@dataclass(frozen=True, slots=True)
class Event:
    def to_dict(self) -> dict[str, object]:
        cls = type(self)
        names = _FIELD_NAMES.get(cls)
        if names is None:
            names = _FIELD_NAMES[cls] = tuple(f.name for f in fields(self))
        data: dict[str, object] = {name: getattr(self, name) for name in names}
        if not all(isinstance(v, _SCALARS) for v in data.values()):
            # Lists (the summary's): a deep copy, as before. Events of one file are all
            # scalars and take the shallow path above (``asdict`` was a tenth of the
            # ``--json`` stream's cost per small file).
            data = asdict(self)  # type: ignore[call-overload]
        data["type"] = _TYPE_NAMES[cls]
        return data


@dataclass(frozen=True, slots=True)
class Planned(Event):
    """The plan's totals. A copy decides folder by folder while it copies (the march),
    so it emits running totals as folders are decided (``complete=False``: more may
    come) and, once the walk has ended, the whole plan (``complete=True``, exactly
    once per run, also in a dry run)."""

    files_total: int
    bytes_total: int
    files_to_copy: int
    bytes_to_copy: int
    files_skipped: int
    bytes_skipped: int
    dirs_to_create: int
    files_to_delete: int
    #: Bytes already at the destination from earlier runs (partial files being resumed).
    bytes_resumable: int = 0
    #: Every folder is decided: these are the plan's final totals.
    complete: bool = True


@dataclass(frozen=True, slots=True)
class FileStarted(Event):
    path: str
    size: int
    #: Where this run starts in the file (> 0 when resuming).
    resume_from: int = 0
    segments: int = 1


@dataclass(frozen=True, slots=True)
class BytesMoved(Event):
    path: str
    #: Negative when bytes counted earlier have to be sent again (a retry).
    n: int


@dataclass(frozen=True, slots=True)
class FileDone(Event):
    path: str
    size: int
    digest: str | None
    algorithm: str | None
    resumed_from: int = 0


@dataclass(frozen=True, slots=True)
class FileSkipped(Event):
    path: str
    size: int
    reason: str


@dataclass(frozen=True, slots=True)
class PathReason(Event):
    """What happened to one path, and why (one line): the shape of the three below."""

    path: str
    reason: str


@dataclass(frozen=True, slots=True)
class FileRestarted(PathReason):
    """The file starts over from its first byte (the reason says why)."""


@dataclass(frozen=True, slots=True)
class FileRetry(Event):
    path: str
    attempt: int
    reason: str
    delay: float


@dataclass(frozen=True, slots=True)
class FileFailed(PathReason):
    """The file (or folder) was given up on for this run: the run is partial."""


@dataclass(frozen=True, slots=True)
class TimeNotKept(PathReason):
    """The file is copied, complete, but the destination would not take its
    modification time (a time before 1970 or after 2106 over SFTP, a server refusing
    one): it keeps the time of its copy. The run is not partial for it, and the journal
    keeps it copied, so a rerun skips it."""


@dataclass(frozen=True, slots=True)
class ModeNotKept(PathReason):
    """The file is copied, complete, but the destination would not take its permission
    bits: over FTP for a file the source keeps from group or others (a server refusing
    or not offering ``SITE CHMOD``: the server's default mode may let others read it),
    over SFTP for any file (``SETSTAT`` refused). The run is not partial for it (a rerun
    could not do better); the reason says what the server refused."""


@dataclass(frozen=True, slots=True)
class PathRefused(PathReason):
    """A source entry that is never copied: hostile name, symlink, unreadable dir."""


@dataclass(frozen=True, slots=True)
class DryRunNote(PathReason):
    """A dry run's caveat about one path: a question the real run asks the destination
    before it copies (or deletes) there, which a dry run cannot ask (each writes a
    scratch file): names it may hold as one, names it may rewrite."""


@dataclass(frozen=True, slots=True)
class FilePlanned(Event):
    """A dry run's decision for one source file: ``action`` is ``copy`` or ``skip``
    (already identical). Emitted only by dry runs, so a rerun of a 100,000-file copy
    does not stream 100,000 skip events."""

    path: str
    size: int
    action: str


@dataclass(frozen=True, slots=True)
class FileDeleted(Event):
    path: str
    dry_run: bool = False
    size: int | None = None


@dataclass(frozen=True, slots=True)
class Summary(Event):
    status: str  # ok | partial | failed | interrupted | dry-run
    files_copied: int
    bytes_copied: int
    files_skipped: int
    bytes_skipped: int
    files_failed: int
    files_refused: int
    files_deleted: int
    files_restarted: int
    bytes_sent: int
    bytes_resent: int
    seconds: float
    failed: list[tuple[str, str]] = field(default_factory=list)
    restarted: list[tuple[str, str]] = field(default_factory=list)
    refused: list[tuple[str, str]] = field(default_factory=list)
    dry_run: bool = False
    #: Why the run stopped before trying every file (None: it tried them all):
    #: "destination-full" (no space or over quota: no file could be written any more).
    stopped: str | None = None
    #: With ``stopped``: the files (and bytes) still to copy, all resumable.
    files_left: int = 0
    bytes_left: int = 0
    #: Files copied whose modification time the destination would not take (path, why).
    times_not_kept: list[tuple[str, str]] = field(default_factory=list)
    #: Private files copied whose permission bits the destination would not take.
    modes_not_kept: list[tuple[str, str]] = field(default_factory=list)
    #: A dry run's questions left to the real run (``DryRunNote``: path, what).
    notes: list[tuple[str, str]] = field(default_factory=list)

    @property
    def rate(self) -> float:
        return self.bytes_sent / self.seconds if self.seconds > 0 else 0.0


_TYPE_NAMES: dict[type, str] = {
    Planned: "plan",
    FileStarted: "file_started",
    BytesMoved: "bytes",
    FileDone: "file_done",
    FileSkipped: "file_skipped",
    FileRestarted: "file_restarted",
    FileRetry: "retry",
    FileFailed: "file_failed",
    TimeNotKept: "time_not_kept",
    ModeNotKept: "mode_not_kept",
    PathRefused: "refused",
    FileDeleted: "deleted",
    FilePlanned: "file_planned",
    DryRunNote: "dry_run_note",
    Summary: "summary",
}

#: Field names per event class (``dataclasses.fields`` walks the class every call).
_FIELD_NAMES: dict[type, tuple[str, ...]] = {}

Subscriber = Callable[[Event], None]
