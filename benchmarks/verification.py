"""Check a destination folder against a corpus manifest by hashing every file."""

from __future__ import annotations

import os
import shutil
from dataclasses import dataclass
from pathlib import Path

from .corpora import Corpus, hash_file


@dataclass(frozen=True)
class Verification:
    files_ok: int
    missing: int
    mismatched: int
    extra: int
    #: up to five offending paths, for the report
    examples: tuple[str, ...]

    @property
    def ok(self) -> bool:
        return self.missing == 0 and self.mismatched == 0 and self.extra == 0

    def describe(self) -> str:
        if self.ok:
            return f"ok ({self.files_ok} files hashed)"
        return f"FAILED: {self.missing} missing, {self.mismatched} differ, {self.extra} extra" + (
            f" (e.g. {', '.join(self.examples)})" if self.examples else ""
        )


def _files_under(root: Path) -> set[str]:
    found: set[str] = set()
    for dirpath, _dirs, files in os.walk(root):
        rel_dir = Path(dirpath).relative_to(root)
        for name in files:
            found.add((rel_dir / name).as_posix())
    return found


def verify_tree(corpus: Corpus, dest: Path) -> Verification:
    """Hash every file under ``dest`` and compare with the corpus manifest."""
    present = _files_under(dest) if dest.is_dir() else set()
    ok = missing = mismatched = 0
    examples: list[str] = []
    for entry in corpus.entries:
        path = dest / entry.path
        if entry.path not in present:
            missing += 1
            examples.append(f"missing {entry.path}")
            continue
        present.discard(entry.path)
        if path.stat().st_size != entry.size or hash_file(path) != entry.digest:
            mismatched += 1
            examples.append(f"differs {entry.path}")
        else:
            ok += 1
    examples += [f"extra {p}" for p in sorted(present)[:5]]
    return Verification(
        files_ok=ok,
        missing=missing,
        mismatched=mismatched,
        extra=len(present),
        examples=tuple(examples[:5]),
    )


def empty_folder(path: Path, *, owner: tuple[int, int]) -> None:
    """Make ``path`` an empty folder owned by ``owner`` (the servers' account)."""
    if path.exists():
        shutil.rmtree(path)
    path.mkdir(parents=True)
    os.chown(path, *owner)
