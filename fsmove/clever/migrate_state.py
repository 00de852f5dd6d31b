"""The migration's journal: which phases of ``fsmove migrate`` are done, in a small JSON file.

One file per (app, old add-on, new add-on), spelled as the user typed them (like the
cut-over's journal), in ``$XDG_STATE_HOME/fsmove/migrate/`` (default ``~/.local/state``).
A phase is marked done right after it succeeded, and the file is replaced atomically
(statefile.py: write, fsync, rename), so a crash leaves the previous version.

It holds the app and add-on names, the copy job's journal path, the app's zone, the
verification verdict and the last failure (phase and exit code, never the message): no
password, no token, no bucket host. Each phase keeps its own finer journal: the copy
its SQLite job journal (resume inside files), the cut-over its step journal.
"""

from __future__ import annotations

import enum
import time
from dataclasses import asdict, dataclass, field, replace
from pathlib import Path

from . import statefile

VERSION = 1
#: Every phase, in the order they run.
PHASES = ("preflight", "copy", "verify", "delta", "cutover", "dns")


class Until(enum.StrEnum):
    """The phases ``--until`` may stop after."""

    COPY = "copy"
    VERIFY = "verify"
    DELTA = "delta"
    CUTOVER = "cutover"


@dataclass(frozen=True)
class MigrateState:
    app: str
    old: str
    new: str
    #: phase -> when it finished (seconds since the epoch); absent = not done.
    done: dict[str, float] = field(default_factory=dict)
    #: "match", "mismatch" or "unreadable" once a verification ran.
    verdict: str | None = None
    #: The last verification found differences: the next copy compares contents.
    recheck: bool = False
    #: The phase that failed last and its exit code, until that phase succeeds.
    failed_phase: str | None = None
    failed_code: int | None = None
    #: Learned in preflight: the app's zone, the copy job's journal (no secret in either).
    zone: str | None = None
    copy_journal: str | None = None

    def is_done(self, phase: str) -> bool:
        return phase in self.done

    def mark_done(self, phase: str) -> MigrateState:
        failed = self.failed_phase == phase
        return replace(self, done={**self.done, phase: time.time()},
                       failed_phase=None if failed else self.failed_phase,
                       failed_code=None if failed else self.failed_code)

    def undo(self, phase: str) -> MigrateState:
        return replace(self, done={k: v for k, v in self.done.items() if k != phase})

    def mark_failed(self, phase: str, code: int | None) -> MigrateState:
        """``code``: the exit code a phase returned; None when it raised (cli.py maps
        exceptions to exit codes, in one place)."""
        return replace(self, failed_phase=phase, failed_code=code)


_KIND = "migrate"
_WHAT = "migration journal"
_ADVICE = ("delete it to start over (done phases are then run again: the copy resumes "
           "from its own journal, the cut-over from its own)")


def state_path(app: str, old: str, new: str) -> Path:
    return statefile.state_path(_KIND, app, old, new)


def load(path: Path, *, app: str, old: str, new: str) -> MigrateState:
    """The journal at ``path``, or a fresh state when there is none."""
    data = statefile.read(path, version=VERSION, what=_WHAT, advice=_ADVICE)
    if data is None:
        return MigrateState(app=app, old=old, new=new)
    try:
        done = {str(k): float(v) for k, v in dict(data["done"]).items()}
        unknown = sorted(set(done) - set(PHASES))
        if unknown:
            raise ValueError(f"unknown phase {unknown[0]!r}")
        return MigrateState(
            app=str(data["app"]), old=str(data["old"]), new=str(data["new"]), done=done,
            verdict=data.get("verdict"), recheck=bool(data.get("recheck", False)),
            failed_phase=data.get("failed_phase"), failed_code=data.get("failed_code"),
            zone=data.get("zone"), copy_journal=data.get("copy_journal"),
        )
    except (ValueError, KeyError, TypeError) as exc:
        raise statefile.journal_error(path, _WHAT, _ADVICE, exc) from None


def save(path: Path, state: MigrateState) -> None:
    statefile.write(path, asdict(state), version=VERSION)
