"""The steps copy and verify share: the root checks (transfers/roots.py) and the
survey's order (transfers/survey.py), the whole-file digest read
(transfers/digest_read.py) and run_together (transfers/together.py)."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import pytest

from fsmove.transfers.backend import (
    PIECE_SIZE,
    AuthError,
    NotFoundError,
    PermanentError,
    Session,
    TransientError,
)
from fsmove.transfers.decorators import SessionDecorator, StoreDecorator
from fsmove.transfers.digest_read import read_file_digest
from fsmove.transfers.endpoint import parse_endpoint
from fsmove.transfers.local import LocalStore
from fsmove.transfers.policy import NO_RETRIES, READ_RETRIES
from fsmove.transfers.pool import SessionPool
from fsmove.transfers.roots import check_root, make_root
from fsmove.transfers.survey import open_sides
from fsmove.transfers.together import run_together
from fsmove.verify.digest import digest_bytes


class CutSession(SessionDecorator):
    """A real local session whose reads are cut after their first piece while the
    store still has cuts to make (a connection dropped in the middle of a file)."""

    def __init__(self, inner: Session, store: CuttingStore) -> None:
        super().__init__(inner)
        self._store = store

    async def read(self, path: str, **kw: Any) -> AsyncIterator[bytes]:  # type: ignore[override]
        cut = self._store.cuts > 0
        self._store.cuts -= cut
        async for piece in self.inner.read(path, **kw):
            yield piece
            if cut:
                raise (self._store.error or TransientError)(f"{path}: cut (injected)")


class CuttingStore(StoreDecorator):
    def __init__(self, root: Path, cuts: int, error: type[Exception] | None = None) -> None:
        super().__init__(LocalStore(parse_endpoint(str(root))))
        self.cuts = cuts
        self.error = error

    def wrap(self, session: Session) -> CutSession:
        return CutSession(session, self)


def _digest(pool: SessionPool, path: str, **kw: Any) -> tuple[Any, list[int]]:
    seen: list[int] = []

    async def go() -> Any:
        try:
            return await read_file_digest(pool, path, on_bytes=seen.append, **kw)
        finally:
            await pool.aclose()

    return asyncio.run(go()), seen


DATA = bytes(range(256)) * (3 * PIECE_SIZE // 256)  # three pieces of a local read


def test_a_read_cut_in_the_middle_is_read_again_and_its_bytes_taken_back(
    tmp_path: Path,
) -> None:
    (tmp_path / "f.bin").write_bytes(DATA)
    got, seen = _digest(SessionPool(CuttingStore(tmp_path, cuts=2), max_sessions=1),
                        "f.bin", retries=READ_RETRIES)
    assert got.digest == digest_bytes(DATA) and got.size == len(DATA)
    # Two attempts cut after their first piece, each taken back, then the whole file.
    assert seen[:4] == [PIECE_SIZE, -PIECE_SIZE, PIECE_SIZE, -PIECE_SIZE]
    assert seen[4:] == [PIECE_SIZE] * 3


def test_the_last_failure_is_raised_and_other_errors_are_never_retried(
    tmp_path: Path,
) -> None:
    (tmp_path / "f.bin").write_bytes(DATA)
    store = CuttingStore(tmp_path, cuts=3)
    with pytest.raises(TransientError):
        _digest(SessionPool(store, max_sessions=1), "f.bin", retries=READ_RETRIES)
    assert store.cuts == 0  # three attempts, all cut
    store = CuttingStore(tmp_path, cuts=1)
    with pytest.raises(TransientError):
        _digest(SessionPool(store, max_sessions=1), "f.bin", retries=NO_RETRIES)
    store = CuttingStore(tmp_path, cuts=1, error=AuthError)
    with pytest.raises(AuthError):
        _digest(SessionPool(store, max_sessions=1), "f.bin", retries=READ_RETRIES)


def test_roots_are_checked_with_one_wording_and_the_destination_made(tmp_path: Path) -> None:
    (tmp_path / "file").write_bytes(b"x")

    def pool(rel: str) -> SessionPool:
        return SessionPool(LocalStore(parse_endpoint(str(tmp_path / rel))), max_sessions=1)

    async def go() -> None:
        with pytest.raises(NotFoundError, match=r"^the source folder .*missing does not "
                           r"exist: check the path$"):
            await check_root(pool("missing"), "source")
        with pytest.raises(PermanentError, match=r"^the destination .*file is a file, not a "
                           r"folder: give the folder that holds it, with --include '/file' "
                           r"to take that file alone$"):
            await check_root(pool("file"), "destination")
        made = pool("new/deeper")
        assert await make_root(made) is True
        assert await make_root(made) is False
        await check_root(made, "destination")
        with pytest.raises(PermanentError, match=r"is a file, not a folder: give a folder "
                           r"\(a missing one is created\)$"):
            await make_root(pool("file"))

    asyncio.run(go())
    assert (tmp_path / "new" / "deeper").is_dir()


def test_run_together_raises_the_first_error_and_cancels_the_others() -> None:
    ended: list[str] = []

    async def fails() -> None:
        await asyncio.sleep(0)
        raise NotFoundError("first")

    async def waits() -> None:
        try:
            await asyncio.Event().wait()
        finally:
            ended.append("waits")

    async def go() -> None:
        assert await run_together([asyncio.sleep(0, result=1), asyncio.sleep(0, result=2)]) \
            == [1, 2]
        with pytest.raises(NotFoundError, match="first"):
            await run_together([waits(), fails()])

    asyncio.run(go())
    assert ended == ["waits"]


def test_an_empty_file_has_the_digest_of_no_bytes(tmp_path: Path) -> None:
    (tmp_path / "empty").write_bytes(b"")
    got, seen = _digest(SessionPool(LocalStore(parse_endpoint(str(tmp_path))),
                                    max_sessions=1), "empty")
    assert got.size == 0 and got.digest == digest_bytes(b"") and seen == []


class WatchedSession(SessionDecorator):
    """A real local session that tells its store what it was asked."""

    def __init__(self, inner: Session, store: WatchedStore) -> None:
        super().__init__(inner)
        self._store = store

    async def stat(self, path: str) -> Any:
        try:
            return await self.inner.stat(path)
        finally:
            self._store.calls.append(f"stat {path}")
            self._store.looked.set()

    async def mkdir(self, path: str, *, mode: int | None = None) -> None:
        self._store.calls.append(f"mkdir {path}")
        await self.inner.mkdir(path, mode=mode)


class WatchedStore(StoreDecorator):
    def __init__(self, inner: LocalStore, *, gate: asyncio.Event | None = None) -> None:
        super().__init__(inner)
        self.calls: list[str] = []
        self.looked = asyncio.Event()
        self.gate = gate

    def wrap(self, session: Session) -> Session:
        return WatchedSession(session, self)

    async def capabilities(self) -> Any:
        self.calls.append("capabilities")
        return await self.inner.capabilities()

    async def connect(self) -> Session:
        if self.gate is not None:
            await self.gate.wait()
        return await super().connect()


def test_the_destination_root_is_looked_at_beside_the_source_check_never_written_before(
    tmp_path: Path,
) -> None:
    """open_sides: while the source is still being checked (its login held), the
    destination's root is stat'ed (a read) and nothing more: not made, not probed. Once
    the source fails its check, the destination is left as it was."""

    async def go() -> None:
        gate = asyncio.Event()
        src = WatchedStore(LocalStore(parse_endpoint(str(tmp_path / "missing"))), gate=gate)
        dst = WatchedStore(LocalStore(parse_endpoint(str(tmp_path / "new"))))
        sides = asyncio.ensure_future(open_sides(
            SessionPool(src, max_sessions=2), SessionPool(dst, max_sessions=2),
            dry_run=False))
        await dst.looked.wait()
        for _ in range(50):  # whatever the destination side would do next, unhindered
            await asyncio.sleep(0)
        assert dst.calls == ["stat "], "written or probed before the source was checked"
        gate.set()
        with pytest.raises(NotFoundError, match="the source folder"):
            await sides
        assert dst.calls == ["stat "]

    asyncio.run(go())
    assert not (tmp_path / "new").exists()
