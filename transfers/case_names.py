"""Names that differ by case alone, for a destination that may not tell them apart.

Linux stores (Clever Cloud's buckets, every server the tests start) hold ``Logo.png``
and ``logo.png`` as two files. An FTP server on Windows, or a macOS or Windows disk,
holds one: the second copied lands on the first (a wrong file called copied), and a
destination ``logo.png`` missing from a source that has ``Logo.png`` is not a file
``--delete`` may remove: it *is* the source's file, just copied there. The march
compares names with these helpers and, only when a pair turns up, asks the destination
once whether it tells them apart (``copy/name_gate.py``, ``DestinationNames.folds_case``).

Cases are compared with ``str.lower`` (a simple case mapping, as NTFS's and APFS's
tables are): ``straße`` and ``STRASSE`` stay two names.
"""

from __future__ import annotations

from collections.abc import Iterable, Set


def case_twin(seen: dict[str, str], name: str) -> str | None:
    """The name noted before ``name`` in one folder that differs from it by case alone,
    or None (then ``name`` is noted). ``seen`` is the folder's own, kept across the
    parts of its listing; a name listed twice is not its own twin."""
    first = seen.setdefault(name.lower(), name)
    return None if first == name else first


def case_variants(src_paths: Set[str], dst_paths: Iterable[str]) -> dict[str, str]:
    """Destination paths of one folder missing from the source whose source twin
    differs by case alone: ``{destination path: source path}`` (usually empty, and then
    cheap: only paths missing from the source are folded)."""
    missing = [p for p in dst_paths if p not in src_paths]
    if not missing:
        return {}
    by_case = {p.lower(): p for p in src_paths}
    return {p: by_case[p.lower()] for p in missing if p.lower() in by_case}
