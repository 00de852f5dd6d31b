"""Names that differ by case or by Unicode normalization alone ("twins"), for a
destination that may not tell them apart.

Linux stores (Clever Cloud's buckets, every server the tests start) hold ``Logo.png``
and ``logo.png`` as two files, and ``café`` written with ``é`` (NFC) and with ``e`` and a
combining accent (NFD) as two more. An FTP server on Windows, or a Windows disk,
ignores case; macOS's APFS ignores case (unless formatted otherwise) and normalization.
There one file holds both twins: the second copied lands on the first (a wrong file
called copied), and a destination ``logo.png`` missing from a source that has
``Logo.png`` is not a file ``--delete`` may remove: it *is* the source's file, just
copied there. The march notes each folder's names by their loosest key (``FolderNames``,
no await for an ordinary name) and, only when twins turn up, asks the destination once
per run whether it tells them apart, one question per way they differ
(``copy/name_gate.py``, ``DestinationNames.folds``).

Cases are compared with ``str.lower`` (a simple case mapping, as NTFS's and APFS's
tables are): ``straße`` and ``STRASSE`` stay two names.
"""

from __future__ import annotations

import unicodedata
from collections.abc import Iterable, Set
from typing import Literal

Folding = Literal["case", "normalization"]
#: The ways two names may differ that a destination may ignore.
FOLDINGS: tuple[Folding, ...] = ("case", "normalization")


def loose_key(name: str) -> str:
    """``name`` with case and normalization folded: twins share it."""
    if name.isascii():
        return name.lower()
    return unicodedata.normalize("NFC", name).lower()


def differences(a: str, b: str) -> tuple[Folding, ...]:
    """How twins ``a`` and ``b`` (one loose key, not equal) differ: what a destination
    must ignore to hold them as one name."""
    if a.lower() == b.lower():
        return ("case",)
    if unicodedata.normalize("NFC", a) == unicodedata.normalize("NFC", b):
        return ("normalization",)
    return FOLDINGS


class FolderNames:
    """One folder's names by loose key, kept across the parts of its listing."""

    __slots__ = ("_first", "_more")

    def __init__(self) -> None:
        self._first: dict[str, str] = {}
        self._more: dict[str, list[str]] = {}

    def twins_of(self, name: str) -> list[str]:
        """The names kept before ``name`` that are its twins (empty for almost every
        name, which is then kept; a name listed twice is not its own twin). A name with
        twins is kept only by ``keep``, once the destination's answer let it through."""
        key = loose_key(name)
        first = self._first.setdefault(key, name)
        if first == name:
            return []
        kept = [first, *self._more.get(key, ())]
        return [] if name in kept else kept

    def keep(self, name: str) -> None:
        self._more.setdefault(loose_key(name), []).append(name)


def twin_variants(src_paths: Set[str], dst_paths: Iterable[str]) -> dict[str, str]:
    """Destination paths of one folder missing from the source that are twins of a
    source path: ``{destination path: source path}`` (usually empty, and then cheap:
    only paths missing from the source are folded)."""
    missing = [p for p in dst_paths if p not in src_paths]
    if not missing:
        return {}
    by_key = {loose_key(p): p for p in src_paths}
    return {p: by_key[k] for p in missing if (k := loose_key(p)) in by_key}
