"""What every runner provides, and the copy job it is given."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Protocol

from ..environment import Location
from ..measure import Command


@dataclass(frozen=True)
class CopyJob:
    src: Location
    dst: Location
    #: a private folder for this run: config files, scripts, journals, HOME
    scratch: Path
    #: True for the second run of the resume cell (continue what a killed run left)
    resume: bool = False


class Runner(Protocol):
    name: str

    def version(self) -> str: ...

    def files_in_flight(self) -> int | None:
        """The most files this tool copies at once as the benchmark runs it (None: unknown)."""
        ...

    def command(self, job: CopyJob) -> Command: ...


def private_file(path: Path, text: str) -> Path:
    """Write ``text`` to a new file only its owner can read (it may hold a password)."""
    path.unlink(missing_ok=True)
    path.touch(mode=0o600)
    path.write_text(text)
    return path
