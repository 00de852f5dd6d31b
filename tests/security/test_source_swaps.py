"""A source file swapped after the listing is never copied as what it became (issue 14,
item 2): a world-writable ``a.txt`` replaced by a link to a root-only file of the same
size must not bring that file's content to the destination; a file replaced by another
one is copied again from a fresh look at it, never from a stale listing.

The swap happens at a precise point, with no timing: a source store that wraps the real
local store runs it right after the source folder was listed (a decorator, as restic's
test backends are, not a mock). The SFTP case checks the backend contract itself
(``read(expect=...)``) against a real OpenSSH server.
"""

from __future__ import annotations

import asyncio
import os
import secrets
from collections.abc import AsyncIterator, Callable
from pathlib import Path
from typing import Any

import pytest

from fsmove.transfers.backend import (
    Capabilities,
    Entry,
    LinkRefusedError,
    Session,
    SourceChangedError,
    Store,
)
from fsmove.transfers.copy import CopyEngine, CopyOptions
from fsmove.transfers.endpoint import parse_endpoint
from fsmove.transfers.events import Summary
from fsmove.transfers.local import LocalStore
from fsmove.transfers.pool import SessionPool
from tests.conformance_stores import run, store_for
from tests.servers import RunningServer, make_tree


class SwapAfterListing:
    """A real session; once folder "" was listed whole, ``swap()`` runs (once)."""

    def __init__(self, inner: Session, owner: SwappingStore) -> None:
        self._inner = inner
        self._owner = owner

    def __getattr__(self, name: str) -> Any:
        return getattr(self._inner, name)

    async def list(self, path: str) -> AsyncIterator[Entry]:
        async for entry in self._inner.list(path):
            yield entry
        if path == "" and not self._owner.swapped:
            self._owner.swapped = True
            self._owner.swap()


class SwappingStore:
    def __init__(self, inner: Store, swap: Callable[[], None]) -> None:
        self._inner = inner
        self.display = inner.display
        self.swap = swap
        self.swapped = False

    async def connect(self) -> SwapAfterListing:
        return SwapAfterListing(await self._inner.connect(), self)

    async def capabilities(self) -> Capabilities:
        return await self._inner.capabilities()

    async def aclose(self) -> None:
        await self._inner.aclose()


def _copy(src: Path, dst: Path, swap: Callable[[], None]) -> Summary:
    async def go() -> Summary:
        s = SessionPool(SwappingStore(LocalStore(parse_endpoint(str(src))), swap),
                        max_sessions=2)
        d = SessionPool(LocalStore(parse_endpoint(str(dst))), max_sessions=2)
        opts = CopyOptions(workers=2, retries=2, retry_delay=0.0)
        try:
            return await CopyEngine(src=s, dst=d, journal=None, options=opts).run()
        finally:
            await asyncio.gather(s.aclose(), d.aclose())

    return asyncio.run(go())


def _secret_of_size(tmp_path: Path, size: int) -> tuple[Path, bytes]:
    token = b"fsmove-root-only-" + secrets.token_hex(8).encode()
    content = (token * (size // len(token) + 1))[:size]
    secret = tmp_path / "root-only.txt"
    secret.write_bytes(content)
    secret.chmod(0o600)
    return secret, token


def test_a_source_file_swapped_for_a_link_is_not_copied(tmp_path: Path) -> None:
    src, dst = tmp_path / "src", tmp_path / "dst"
    src.mkdir()
    public = b"public data, anyone may write this file. " * 10
    (src / "a.txt").write_bytes(public)
    (src / "a.txt").chmod(0o666)
    (src / "b.txt").write_bytes(b"untouched")
    secret, token = _secret_of_size(tmp_path, len(public))

    def swap() -> None:
        (src / "a.txt").unlink()
        (src / "a.txt").symlink_to(secret)

    summary = _copy(src, dst, swap)
    assert summary.status == "partial"
    failed = dict(summary.failed)
    assert "a.txt" in failed and "link" in failed["a.txt"], summary.failed
    assert (dst / "b.txt").read_bytes() == b"untouched"
    for path in dst.rglob("*"):
        assert path.is_dir() or token not in path.read_bytes(), path


def test_a_source_file_replaced_by_another_is_copied_from_a_fresh_look(
    tmp_path: Path,
) -> None:
    """Same size, same mtime, another inode: the listed file is gone; what is copied is
    the file as it is now, after a restart that says so."""
    src, dst = tmp_path / "src", tmp_path / "dst"
    src.mkdir()
    (src / "a.txt").write_bytes(b"old content")
    stamp = os.stat(src / "a.txt").st_mtime_ns

    def swap() -> None:
        fresh = src / "a.txt.new"
        fresh.write_bytes(b"new content")
        os.utime(fresh, ns=(stamp, stamp))
        os.replace(fresh, src / "a.txt")

    summary = _copy(src, dst, swap)
    assert summary.status == "ok", summary.failed
    assert [p for p, _why in summary.restarted] == ["a.txt"]
    assert (dst / "a.txt").read_bytes() == b"new content"


def test_sftp_read_refuses_a_name_that_is_no_longer_the_listed_file(
    sshd_server: RunningServer, fresh_subdir: Callable[[RunningServer], RunningServer],
) -> None:
    server = fresh_subdir(sshd_server)
    public = b"x" * 64
    make_tree(server, {"a.txt": public, "b.txt": b"b" * 64})
    outside = server.root.parent / f"{server.root.name}-secret"
    outside.write_bytes(b"S" * 64)
    outside.chmod(0o644)

    async def go() -> None:
        store = store_for(server)
        session = await store.connect()
        try:
            listed = {e.path: e async for e in session.list("")}
            ok = b"".join([p async for p in session.read("b.txt", expect=listed["b.txt"])])
            assert ok == b"b" * 64
            (server.root / "a.txt").unlink()
            (server.root / "a.txt").symlink_to(outside)
            with pytest.raises(LinkRefusedError):
                _ = [p async for p in session.read("a.txt", expect=listed["a.txt"])]
            make_tree(server, {"b.txt": b"c" * 65})
            with pytest.raises(SourceChangedError):
                _ = [p async for p in session.read("b.txt", expect=listed["b.txt"])]
        finally:
            await session.close()
            await store.aclose()

    run(go)
