"""What a verify tells its caller while it runs (the verifier itself never prints):
entries listed, a side's listing finished, bytes hashed, a path settled."""

from __future__ import annotations

from dataclasses import dataclass

from fsmove.transfers.backend import EntryKind

from .results import Category, Side

__all__ = ["BytesHashed", "EntryListed", "ListingFinished", "PathChecked", "ProgressEvent"]


@dataclass(frozen=True, slots=True)
class EntryListed:
    side: Side
    path: str
    kind: EntryKind
    size: int


@dataclass(frozen=True, slots=True)
class ListingFinished:
    side: Side
    #: Files and directories this side listed (after exclusions).
    entries: int


@dataclass(frozen=True, slots=True)
class BytesHashed:
    side: Side
    #: Negative when a failed read is retried: its bytes will be read again.
    nbytes: int


@dataclass(frozen=True, slots=True)
class PathChecked:
    path: str
    category: Category


ProgressEvent = EntryListed | ListingFinished | BytesHashed | PathChecked
