"""What a copy must do: filter the source tree, compare it with the destination, name
the temporary files, decide which files to skip, copy or delete."""

from __future__ import annotations

import fnmatch
from dataclasses import dataclass

import xxhash

from .backend import Entry, parent_of

TEMP_PREFIX = ".fsmove."
TEMP_SUFFIX = ".part"


def temp_name(path: str) -> str:
    """The partial file a transfer writes before renaming it into place: hidden, in the
    same directory (so the rename is atomic), short (names may be up to 255 bytes), and
    the same on every run, so a resumed run finds it."""
    tag = xxhash.xxh3_64_hexdigest(path.encode("utf-8", "surrogateescape"))
    parent = parent_of(path)
    name = f"{TEMP_PREFIX}{tag}{TEMP_SUFFIX}"
    return f"{parent}/{name}" if parent else name


def is_temp_name(name: str) -> bool:
    """Whether ``name`` is one of ``temp_name``'s partial files (prefix, 16 hex, suffix)."""
    tag = name[len(TEMP_PREFIX) : -len(TEMP_SUFFIX)]
    return (
        name.startswith(TEMP_PREFIX)
        and name.endswith(TEMP_SUFFIX)
        and len(tag) == 16
        and all(c in "0123456789abcdef" for c in tag)
    )


@dataclass(frozen=True)
class Filters:
    """Include/exclude globs (rsync-like): a pattern with no "/" matches a name at any
    depth, one with "/" matches the whole relative path. Excludes win; with includes,
    a file must match one of them (directories are always walked)."""

    include: tuple[str, ...] = ()
    exclude: tuple[str, ...] = ()

    @staticmethod
    def _match(path: str, pattern: str) -> bool:
        if "/" in pattern:
            return fnmatch.fnmatchcase(path, pattern.strip("/"))
        return fnmatch.fnmatchcase(path.rsplit("/", 1)[-1], pattern)

    def excluded(self, path: str, *, is_dir: bool) -> bool:
        if any(self._match(path, p) for p in self.exclude):
            return True
        if is_dir or not self.include:
            return False
        return not any(self._match(path, p) for p in self.include)


def same_mtime(a: float | None, b: float | None, *, tolerance: float) -> bool:
    if a is None or b is None:
        return False
    return abs(a - b) <= tolerance


@dataclass(frozen=True, slots=True)
class CopyItem:
    entry: Entry
    #: Why it is copied: "new", "changed", "resume".
    reason: str
