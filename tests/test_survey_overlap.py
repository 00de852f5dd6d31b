"""The survey lists an existing destination root beside its check, not after it, where
the store logs several sessions in at once (``LogsInAhead``: FTP, the listing on a
session of its own) or a session carries several requests from its login on
(``SharesSessionsEarly``: SFTP, the listing on the look's own session).

The first files' decisions wait for that listing: over FTP at 60 ms the root's check
(SIZE, MDTM, CWD) then LIST cost a round trip more before the first byte; over SFTP the
stat, then OPENDIR, one more too. Real local
stores; the only injected part is a gate: the destination root's ``stat`` answers only
once its listing has started, so the old order (stat, then list) never gets there. A
missing root is made on the session that looked at it, never behind that listing."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import pytest

from fsmove.transfers.backend import Capabilities, Entry, Session, Store
from tests.test_survey_roots import survey


class GatedSession:
    def __init__(self, inner: Session, owner: GatedStore) -> None:
        self._inner = inner
        self._owner = owner

    def __getattr__(self, name: str) -> Any:
        return getattr(self._inner, name)

    async def stat(self, path: str) -> Entry:
        if path == "":
            await self._owner.listing_started.wait()
        return await self._inner.stat(path)

    async def list(self, path: str) -> AsyncIterator[Entry]:
        if path == "":
            self._owner.listing_started.set()
        async for entry in self._inner.list(path):
            yield entry


class GatedStore:
    def __init__(self, inner: Store) -> None:
        self._inner = inner
        self.display = inner.display
        self.listing_started = asyncio.Event()

    async def connect(self) -> GatedSession:
        return GatedSession(await self._inner.connect(), self)

    async def capabilities(self) -> Capabilities:
        return await self._inner.capabilities()

    async def aclose(self) -> None:
        await self._inner.aclose()


class LogsInAheadStore(GatedStore):
    def log_in_ahead(self, count: int) -> None:
        """``LogsInAhead``, as FTP: the listing goes beside the look on a session of
        its own (a local connect is immediate: nothing to start)."""


class SharesEarlyStore(GatedStore):
    def early_ops_per_session(self) -> int:
        """``SharesSessionsEarly``, as SFTP: the look and the listing share the one
        session before the capabilities are asked."""
        return 4


@pytest.mark.parametrize(("store", "sessions"), [(LogsInAheadStore, 2), (SharesEarlyStore, 1)])
def test_the_destination_root_is_listed_beside_its_check(
    tmp_path: Path, store: type[GatedStore], sessions: int
) -> None:
    src, dst = tmp_path / "src", tmp_path / "dst"
    src.mkdir()
    dst.mkdir()
    (dst / "there.txt").write_bytes(b"x")
    sides, names = asyncio.run(survey(src, dst, sessions=sessions, wrap_dst=store))
    assert sides.dst_root_exists and names == ["there.txt"]


class StuckListingSession(GatedSession):
    async def stat(self, path: str) -> Entry:
        return await self._inner.stat(path)  # not gated: the listing waits for it here

    async def list(self, path: str) -> AsyncIterator[Entry]:
        if path == "":
            await asyncio.Event().wait()  # a listing that never ends
        async for entry in self._inner.list(path):
            yield entry


class StuckListingStore(SharesEarlyStore):
    async def connect(self) -> GatedSession:
        return StuckListingSession(await self._inner.connect(), self)


def test_a_missing_root_is_made_without_waiting_for_its_listing(tmp_path: Path) -> None:
    """One session (an SFTP side has one logged in at first), shared by the look and the
    listing started beside it: the root is looked at and made on it, never behind that
    listing, which is dropped (here it would never end). (A missing root's other
    cases: test_survey_roots.py.)"""
    src, dst = tmp_path / "src", tmp_path / "missing"
    src.mkdir()
    sides, names = asyncio.run(survey(src, dst, wrap_dst=StuckListingStore))
    assert not sides.dst_root_exists and names is None
    assert dst.is_dir()
