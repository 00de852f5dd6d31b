"""The survey lists an existing destination root beside its check, not after it, where
the store logs several sessions in at once (``LogsInAhead``: FTP).

The first files' decisions wait for that listing: over FTP at 60 ms the root's check
(SIZE, MDTM, CWD) then LIST cost a round trip more before the first byte. Real local
stores; the only injected part is a gate: the destination root's ``stat`` answers only
once its listing has started, so the old order (stat, then list) never gets there. A
missing root is made on the session that looked at it, never behind that listing."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

from fsmove.transfers.backend import Capabilities, Entry, Session, Store
from fsmove.transfers.endpoint import parse_endpoint
from fsmove.transfers.local import LocalStore
from fsmove.transfers.pool import SessionPool
from fsmove.transfers.survey import open_sides
from fsmove.transfers.walk import list_folder

#: Bounds a wait that only a broken order reaches (never a time that decides a test).
_BOUND_S = 20.0


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

    def log_in_ahead(self, count: int) -> None:
        """``LogsInAhead``, as FTP: the listing goes beside the look only on such a
        store (a local connect is immediate: nothing to start)."""

    async def capabilities(self) -> Capabilities:
        return await self._inner.capabilities()

    async def aclose(self) -> None:
        await self._inner.aclose()


def _pools(src: Path, dst: Path) -> tuple[SessionPool, SessionPool]:
    return (SessionPool(LocalStore(parse_endpoint(str(src))), max_sessions=2),
            SessionPool(GatedStore(LocalStore(parse_endpoint(str(dst)))), max_sessions=2))


def test_the_destination_root_is_listed_beside_its_check(tmp_path: Path) -> None:
    src, dst = tmp_path / "src", tmp_path / "dst"
    src.mkdir()
    dst.mkdir()
    (dst / "there.txt").write_bytes(b"x")

    async def go() -> list[str]:
        s, d = _pools(src, dst)
        try:
            async with asyncio.timeout(_BOUND_S):
                sides = await open_sides(
                    s, d, dry_run=False,
                    list_dst_root=lambda: list_folder(d, "", before_capabilities=True))
                listing = sides.take_dst_root_listing()
                assert listing is not None and sides.dst_root_exists
                return [e.path for e in await listing if isinstance(e, Entry)]
        finally:
            await asyncio.gather(s.aclose(), d.aclose())

    assert asyncio.run(go()) == ["there.txt"]


def test_a_missing_destination_root_drops_the_listing_and_is_made(tmp_path: Path) -> None:
    """First run into a root that is not there yet: the listing made beside the check
    is dropped (nothing to compare), the root is created, no error escapes."""
    src, dst = tmp_path / "src", tmp_path / "new" / "deep"
    src.mkdir()

    async def go() -> None:
        s = SessionPool(LocalStore(parse_endpoint(str(src))), max_sessions=2)
        d = SessionPool(LocalStore(parse_endpoint(str(dst))), max_sessions=2)
        try:
            async with asyncio.timeout(_BOUND_S):
                sides = await open_sides(
                    s, d, dry_run=False,
                    list_dst_root=lambda: list_folder(d, "", before_capabilities=True))
                assert not sides.dst_root_exists
                assert sides.take_dst_root_listing() is None
        finally:
            await asyncio.gather(s.aclose(), d.aclose())

    asyncio.run(go())
    assert dst.is_dir()


class StuckListingSession(GatedSession):
    async def stat(self, path: str) -> Entry:
        return await self._inner.stat(path)  # not gated: the listing waits for it here

    async def list(self, path: str) -> AsyncIterator[Entry]:
        if path == "":
            await asyncio.Event().wait()  # a listing that never ends
        async for entry in self._inner.list(path):
            yield entry


class StuckListingStore(GatedStore):
    async def connect(self) -> GatedSession:
        return StuckListingSession(await self._inner.connect(), self)


def test_a_missing_root_is_made_without_waiting_for_its_listing(tmp_path: Path) -> None:
    """One session (an SFTP side has one logged in at first): the root is looked at and
    made on it, never behind the listing started beside the look, which is dropped
    (here it would never end)."""
    src, dst = tmp_path / "src", tmp_path / "missing"
    src.mkdir()

    async def go() -> None:
        s = SessionPool(LocalStore(parse_endpoint(str(src))), max_sessions=1)
        d = SessionPool(StuckListingStore(LocalStore(parse_endpoint(str(dst)))),
                        max_sessions=1)
        try:
            async with asyncio.timeout(_BOUND_S):
                sides = await open_sides(
                    s, d, dry_run=False,
                    list_dst_root=lambda: list_folder(d, "", before_capabilities=True))
                assert not sides.dst_root_exists
                assert sides.take_dst_root_listing() is None
        finally:
            await asyncio.gather(s.aclose(), d.aclose())

    asyncio.run(go())
    assert dst.is_dir()
