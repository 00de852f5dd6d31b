"""Planning decisions that need no I/O: what ``--delete`` may remove.

``--delete`` removes a destination file only when the source was seen whole and has
no such file. Where the source has something fsmove does not copy or could not read
(a symlink, a special file, a refused name, a folder it could not list), the
destination's files at that path *and below it* are left alone: the source holds that
subtree in a form fsmove did not look into, so their absence proves nothing. (A source
``media -> /real`` with a real ``media/`` at the destination deletes nothing there.)
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping

from .backend import Entry, parent_of


def is_at_or_below(path: str, roots: set[str]) -> bool:
    """Whether ``path`` is one of ``roots`` or inside one of them."""
    if not roots:
        return False
    if "" in roots:
        return True  # the root itself
    while path:
        if path in roots:
            return True
        path = parent_of(path)
    return False


def deletions(
    dst_files: Mapping[str, Entry], src_files: Mapping[str, Entry], blind: Iterable[str]
) -> list[Entry]:
    """The destination files ``--delete`` removes: not in the source, and not at or
    below a source path in ``blind`` (not copied, or not readable)."""
    unseen = set(blind)
    return [
        d for p, d in dst_files.items()
        if p not in src_files and not is_at_or_below(p, unseen)
    ]
