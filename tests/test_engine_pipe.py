"""The engine's source pipe when the destination fails mid-file (in process, real local
stores; the only injected part is a destination connection that drops after N pieces),
and a source file that cannot be opened over SFTP (real sshd on both sides).

Regression: a destination that failed while the source had filled the pipe's queue made
the source reader, once cancelled, wait forever to hand over an error nobody would read,
and the whole copy hung (seen under repeated network cuts, tests/test_resume.py)."""

from __future__ import annotations

import asyncio
import os
from collections.abc import AsyncIterable, AsyncIterator, Callable
from pathlib import Path
from typing import Any

import pytest

from fsmove.transfers.backend import Capabilities, Session, Store, TransientError
from fsmove.transfers.copy import CopyEngine, CopyOptions
from fsmove.transfers.endpoint import parse_endpoint
from fsmove.transfers.journal import Journal
from fsmove.transfers.local import LocalStore
from fsmove.transfers.policy import Limits
from fsmove.transfers.pool import SessionPool
from fsmove.transfers.sftp import SftpStore
from tests.copy_harness import temp_leftovers, tree_digests
from tests.servers import RunningServer, make_tree

MiB = 1024 * 1024


class DroppingSession:
    """A real local session whose writes drop the 'connection' after ``after`` pieces,
    for the first ``drops`` writes of the store."""

    def __init__(self, inner: Session, owner: DroppingStore) -> None:
        self._inner = inner
        self._owner = owner

    def __getattr__(self, name: str) -> Any:
        return getattr(self._inner, name)

    async def write(self, path: str, data: AsyncIterable[bytes], **kw: Any) -> int:
        if self._owner.drops <= 0:
            return await self._inner.write(path, data, **kw)
        self._owner.drops -= 1

        async def until_drop() -> AsyncIterator[bytes]:
            n = 0
            async for piece in data:
                if n >= self._owner.after:
                    # Let the source fill the pipe before the drop is noticed.
                    await asyncio.sleep(0.2)
                    raise TransientError(f"{path}: connection dropped (injected)", path=path)
                yield piece
                n += 1

        return await self._inner.write(path, until_drop(), **kw)


class DroppingStore:
    def __init__(self, inner: Store, *, drops: int, after: int) -> None:
        self._inner = inner
        self.display = inner.display
        self.drops = drops
        self.after = after

    async def connect(self) -> DroppingSession:
        return DroppingSession(await self._inner.connect(), self)

    async def capabilities(self) -> Capabilities:
        return await self._inner.capabilities()

    async def aclose(self) -> None:
        await self._inner.aclose()


async def copy(src: Path, dst: Path, journal: Journal, *, drops: int, after: int,
               retries: int) -> Any:
    s = SessionPool(LocalStore(parse_endpoint(str(src))), max_sessions=4)
    d = SessionPool(DroppingStore(LocalStore(parse_endpoint(str(dst))), drops=drops,
                                  after=after), max_sessions=4)
    opts = CopyOptions(workers=2, retries=retries, retry_delay=0.0,
                       bounds=Limits(pieces_per_pipe=2))
    try:
        async with asyncio.timeout(30):  # the bug hung forever
            return await CopyEngine(src=s, dst=d, journal=journal, options=opts).run()
    finally:
        await asyncio.gather(s.aclose(), d.aclose())


@pytest.mark.parametrize("size_mib", [3, 80], ids=["one-stream", "segmented"])
def test_destination_drop_with_a_full_pipe_is_retried(tmp_path: Path, size_mib: int) -> None:
    src, dst = tmp_path / "src", tmp_path / "dst"
    src.mkdir()
    data = os.urandom(size_mib * MiB)
    (src / "big.bin").write_bytes(data)
    with Journal(tmp_path / "job.db", src="a", dst="b") as journal:
        summary = asyncio.run(copy(src, dst, journal, drops=3, after=1, retries=5))
    assert summary.status == "ok", summary.failed
    assert (dst / "big.bin").read_bytes() == data


def test_a_file_that_never_gets_further_gives_up(tmp_path: Path) -> None:
    """Drops before the first byte every time: --retries bounds the attempts (progress
    resets the count only when an attempt gets further than any before)."""
    src, dst = tmp_path / "src", tmp_path / "dst"
    src.mkdir()
    (src / "f.bin").write_bytes(os.urandom(3 * MiB))
    with Journal(tmp_path / "job.db", src="a", dst="b") as journal:
        summary = asyncio.run(copy(src, dst, journal, drops=100, after=0, retries=3))
    assert summary.status == "partial"
    assert [p for p, _ in summary.failed] == ["f.bin"]
    assert "gave up after 3 retries" in summary.failed[0][1]


def test_a_source_file_that_cannot_be_opened_leaves_nothing_at_an_sftp_destination(
    sshd_server: RunningServer, fresh_subdir: Callable[[RunningServer], RunningServer],
) -> None:
    """Over SFTP the destination opens its temporary file while the source opens its
    own: a source the server refuses to open (permission) fails that file alone, and
    the empty temporary file made for it is removed, not left behind."""
    src_server, dst_server = fresh_subdir(sshd_server), fresh_subdir(sshd_server)
    make_tree(src_server, {"a.txt": b"a" * 100, "locked.txt": b"secret", "z/z.txt": b"z"})
    (src_server.root / "locked.txt").chmod(0)

    def pool(server: RunningServer) -> SessionPool:
        endpoint = parse_endpoint(server.url()).with_password(server.password)
        return SessionPool(SftpStore(endpoint, known_hosts=server.known_hosts, client_keys=[]),
                           max_sessions=2)

    async def go() -> Any:
        s, d = pool(src_server), pool(dst_server)
        try:
            with Journal(dst_server.root.parent / f"{dst_server.root.name}.db",
                         src="a", dst="b") as journal:
                opts = CopyOptions(workers=4, retries=1, retry_delay=0.0)
                return await CopyEngine(src=s, dst=d, journal=journal, options=opts).run()
        finally:
            await asyncio.gather(s.aclose(), d.aclose())

    summary = asyncio.run(go())
    assert [p for p, _ in summary.failed] == ["locked.txt"]
    assert "permission denied" in summary.failed[0][1]
    assert tree_digests(dst_server.root).keys() == {"a.txt", "z/z.txt"}
    assert temp_leftovers(dst_server.root) == []


class AppendingSession:
    """A real local source session that appends to ``app.log`` each time it is asked
    to read it, before reading: a file being written to at every attempt (a live
    log)."""

    def __init__(self, inner: Session, root: Path) -> None:
        self._inner = inner
        self._root = root

    def __getattr__(self, name: str) -> Any:
        return getattr(self._inner, name)

    def read(self, path: str, *args: Any, **kw: Any) -> Any:
        if path == "app.log":
            with open(self._root / path, "ab") as fh:
                fh.write(b"one more line\n")
        return self._inner.read(path, *args, **kw)


class AppendingStore(DroppingStore):
    def __init__(self, inner: Store, root: Path) -> None:
        super().__init__(inner, drops=0, after=0)
        self._root = root

    async def connect(self) -> AppendingSession:  # type: ignore[override]
        return AppendingSession(await self._inner.connect(), self._root)


def test_a_file_written_to_at_every_attempt_says_what_to_do(tmp_path: Path) -> None:
    """Given up after --retries (as before), with what to do about it: stop what
    writes it, or exclude it."""
    src, dst = tmp_path / "src", tmp_path / "dst"
    src.mkdir()
    (src / "app.log").write_bytes(os.urandom(MiB))
    (src / "still.txt").write_bytes(b"still")

    async def run() -> Any:
        s = SessionPool(AppendingStore(LocalStore(parse_endpoint(str(src))), src),
                        max_sessions=2)
        d = SessionPool(LocalStore(parse_endpoint(str(dst))), max_sessions=2)
        opts = CopyOptions(workers=2, retries=2, retry_delay=0.0)
        try:
            async with asyncio.timeout(60):
                return await CopyEngine(src=s, dst=d, journal=None, options=opts).run()
        finally:
            await asyncio.gather(s.aclose(), d.aclose())

    summary = asyncio.run(run())
    assert summary.status == "partial"
    [(path, why)] = summary.failed
    assert path == "app.log" and "gave up after 2 retries" in why
    assert "being written to" in why and "--exclude" in why
    assert (dst / "still.txt").read_bytes() == b"still"
