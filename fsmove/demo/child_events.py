"""The events of a ``fsmove copy --json`` child, read back into the engine's own event
types, so the demo shows them with the same display as ``fsmove copy`` and tells what
happened from them (never from a script of what should have happened)."""

from __future__ import annotations

import dataclasses
import json
from dataclasses import dataclass, field
from typing import Any

from fsmove.transfers import events as ev

_KINDS: dict[str, type[ev.Event]] = {
    "plan": ev.Planned,
    "file_started": ev.FileStarted,
    "file_done": ev.FileDone,
    "file_skipped": ev.FileSkipped,
    "file_restarted": ev.FileRestarted,
    "retry": ev.FileRetry,
    "file_failed": ev.FileFailed,
    "time_not_kept": ev.TimeNotKept,
    "mode_not_kept": ev.ModeNotKept,
    "refused": ev.PathRefused,
    "deleted": ev.FileDeleted,
    "file_planned": ev.FilePlanned,
    "summary": ev.Summary,
}


def _has_every_field(kind: type[ev.Event], data: dict[str, Any]) -> bool:
    """Whether ``data`` holds every field of ``kind`` that has no default."""
    return all(f.name in data for f in dataclasses.fields(kind)
               if f.default is dataclasses.MISSING
               and f.default_factory is dataclasses.MISSING)


def _build(kind: type[ev.Event], data: dict[str, Any]) -> ev.Event:
    names = {f.name for f in dataclasses.fields(kind)}
    return kind(**{k: v for k, v in data.items() if k in names})


@dataclass
class ChildEvents:
    """Turns the child's JSON lines into events; keeps them for the demo's account."""

    events: list[ev.Event] = field(default_factory=list)
    #: The child's last ``summary`` event as written (with ``exit_code``), if any.
    summary: dict[str, Any] | None = None
    _bytes_sent: int = 0

    def parse(self, line: str) -> ev.Event | None:
        """The event on ``line`` (None for anything else). ``progress`` events carry
        the bytes sent so far: they become a ``BytesMoved`` of the difference."""
        try:
            data = json.loads(line)
        except json.JSONDecodeError:
            return None
        if not isinstance(data, dict):
            return None
        kind = data.get("type")
        event: ev.Event | None
        if kind == "progress":
            sent = int(data.get("bytes_sent", 0))
            event = ev.BytesMoved(path="", n=sent - self._bytes_sent)
            self._bytes_sent = sent
        elif kind == "summary":
            self.summary = data
            if not _has_every_field(ev.Summary, data):
                # A fatal error's summary (a few counts, no engine summary to rebuild):
                # before session 33 a TypeError ended the demo after the child's line.
                return None
            event = _build(ev.Summary, data)
        elif isinstance(kind, str) and kind in _KINDS:
            event = _build(_KINDS[kind], data)
        else:
            return None
        self.events.append(event)
        return event

    def of_type(self, kind: type[ev.Event]) -> list[Any]:
        return [e for e in self.events if isinstance(e, kind)]
