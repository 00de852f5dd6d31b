"""One owner per file transfer (transfers/copy/transfer.py), against real stores: the engine
copies from a real local folder to a real local folder or a real sshd. The only added
parts are thin wrappers around those real stores that change the source, or hold a
write, at a chosen moment, so the order of events is set by events, not by timing.

Regressions (issue 14):
* item 3: a segmented file whose source shrank during the copy ended *larger* than the
  source (exit 0): the failed attempt's other segments were never cancelled and kept
  writing their old ranges into the retried temporary file.
* item 6: a file rewritten in place (same size, new mtime) during its copy was placed
  mixed (neither the old nor the new file): the unchanged-source check ran only in the
  last segment's reader, and never for files of 4 MiB or less.
"""

from __future__ import annotations

import asyncio
import os
from collections import defaultdict
from collections.abc import AsyncIterable, AsyncIterator, Callable
from pathlib import Path
from typing import Any

import pytest

from fsmove.transfers.backend import Capabilities, Session, Store
from fsmove.transfers.copy import CopyEngine, CopyOptions
from fsmove.transfers.events import Summary
from fsmove.transfers.policy import Limits
from fsmove.transfers.pool import SessionPool
from tests.conformance_stores import store_for
from tests.servers import RunningServer

MiB = 1024 * 1024
MTIME = 1_600_000_000


class WrappedSession:
    """A real session; ``read`` and ``write`` go through the owner's hooks."""

    def __init__(self, inner: Session, owner: WrappedStore) -> None:
        self._inner = inner
        self._owner = owner

    def __getattr__(self, name: str) -> Any:
        return getattr(self._inner, name)

    def read(self, path: str, *, offset: int = 0, length: int | None = None,
             **kw: Any) -> AsyncIterator[bytes]:
        return self._owner.read(self._inner, path, offset=offset, length=length, **kw)

    async def write(self, path: str, data: AsyncIterable[bytes], **kw: Any) -> int:
        return await self._owner.write(self._inner, path, data, **kw)


class WrappedStore:
    """A real store whose sessions' reads and writes the test can hook."""

    def __init__(self, inner: Store) -> None:
        self._inner = inner
        self.display = inner.display

    async def connect(self) -> WrappedSession:
        return WrappedSession(await self._inner.connect(), self)

    async def capabilities(self) -> Capabilities:
        return await self._inner.capabilities()

    async def aclose(self) -> None:
        await self._inner.aclose()

    async def read(self, inner: Session, path: str, *, offset: int,
                   length: int | None, **kw: Any) -> AsyncIterator[bytes]:
        async for piece in inner.read(path, offset=offset, length=length, **kw):
            yield piece

    async def write(self, inner: Session, path: str, data: AsyncIterable[bytes],
                    **kw: Any) -> int:
        return await inner.write(path, data, **kw)


async def copy_with(src: Store, dst: Store, **options: Any) -> Summary:
    s, d = SessionPool(src, max_sessions=8), SessionPool(dst, max_sessions=8)
    opts = CopyOptions(workers=4, retries=3, retry_delay=0.0, **options)
    try:
        async with asyncio.timeout(240):  # a wrong order of events must fail, not hang
            return await CopyEngine(src=s, dst=d, journal=None, options=opts).run()
    finally:
        await asyncio.gather(s.aclose(), d.aclose())


def destination(kind: str, tmp_path: Path, request: pytest.FixtureRequest,
                fresh_subdir: Callable[[RunningServer], RunningServer]) -> tuple[Store, Path]:
    if kind == "local":
        root = tmp_path / "dst"
        return store_for(None, root), root
    server = fresh_subdir(request.getfixturevalue("sshd_server"))
    return store_for(server), server.root


# ---------------------------------------------------------------------------------------
# Item 3: a source that shrinks 64 -> 16 MiB while its four segments are in flight.
# ---------------------------------------------------------------------------------------

SEGMENT = 16 * MiB
SHRUNK = 16 * MiB


class ShrinkingSource(WrappedStore):
    """Segments at 32 MiB and beyond read their first MiB, then the file is truncated
    to 16 MiB (the rest of their reads find the end of file). The segment at 16 MiB
    reads only once such a segment's writer is at the destination, so that segment
    fails while the others are writing."""

    def __init__(self, inner: Store, file: Path, writer_waiting: asyncio.Event) -> None:
        super().__init__(inner)
        self._file = file
        self._writer_waiting = writer_waiting
        self.truncated = False

    async def read(self, inner: Session, path: str, *, offset: int,
                   length: int | None, **kw: Any) -> AsyncIterator[bytes]:
        if not self.truncated and SEGMENT <= offset < 2 * SEGMENT:
            await self._writer_waiting.wait()
        got = 0
        async for piece in inner.read(path, offset=offset, length=length, **kw):
            yield piece
            got += len(piece)
            if offset >= 2 * SEGMENT and got >= MiB and not self.truncated:
                os.truncate(self._file, SHRUNK)
                self.truncated = True


class GatedDestination(WrappedStore):
    """Holds a first-attempt write beyond the new end of the file until the retry has
    created the temporary file again; the retry's own writes wait until every held
    writer is gone (written, or cancelled)."""

    def __init__(self, inner: Store, writer_waiting: asyncio.Event) -> None:
        super().__init__(inner)
        self.creates = 0
        self.held = 0
        self._writer_waiting = writer_waiting
        self._recreated = asyncio.Event()
        self._no_held_writer = asyncio.Event()
        self._no_held_writer.set()

    async def write(self, inner: Session, path: str, data: AsyncIterable[bytes],
                    **kw: Any) -> int:
        if kw.get("create"):
            self.creates += 1
            try:
                return await inner.write(path, data, **kw)
            finally:
                if self.creates == 2:
                    self._recreated.set()
        if self.creates == 1 and kw.get("offset", 0) >= 2 * SEGMENT:
            self.held += 1
            self._no_held_writer.clear()
            self._writer_waiting.set()
            try:
                await self._recreated.wait()
                return await inner.write(path, _one_turn_each(data), **kw)
            finally:
                self.held -= 1
                if self.held == 0:
                    self._no_held_writer.set()
        if self.creates >= 2:
            await self._no_held_writer.wait()
        return await inner.write(path, data, **kw)


async def _one_turn_each(data: AsyncIterable[bytes]) -> AsyncIterator[bytes]:
    """The pieces, one event-loop turn apart, as they would come from a network (an
    SFTP writer sends its pipelined requests on those turns)."""
    async for piece in data:
        yield piece
        await asyncio.sleep(0)


@pytest.mark.parametrize("dst_kind", ["local", "sftp"])
def test_a_source_that_shrinks_never_leaves_a_bigger_file(
    dst_kind: str, tmp_path: Path, request: pytest.FixtureRequest,
    fresh_subdir: Callable[[RunningServer], RunningServer],
) -> None:
    src_root = tmp_path / "src"
    src_root.mkdir()
    data = os.urandom(4 * SEGMENT)
    (src_root / "big.bin").write_bytes(data)
    dst_store, dst_root = destination(dst_kind, tmp_path, request, fresh_subdir)

    async def go() -> tuple[Summary, GatedDestination]:
        writer_waiting = asyncio.Event()
        src = ShrinkingSource(store_for(None, src_root), src_root / "big.bin", writer_waiting)
        dst = GatedDestination(dst_store, writer_waiting)
        summary = await copy_with(src, dst, segment_threshold=4 * SEGMENT,
                                  segment_size=SEGMENT, bounds=Limits(segments_per_file=4))
        return summary, dst

    summary, dst = asyncio.run(go())
    final = dst_root / "big.bin"
    assert final.stat().st_size <= SHRUNK  # never larger than the source
    assert summary.status == "ok", summary.failed
    assert final.read_bytes() == data[:SHRUNK]
    assert [p for p, _why in summary.restarted] == ["big.bin"]
    assert dst.creates == 2 and dst.held == 0
    assert [n for n in os.listdir(dst_root) if n != "big.bin"] == []


# ---------------------------------------------------------------------------------------
# Item 6: a file rewritten in place (same size, new mtime) while it is read.
# ---------------------------------------------------------------------------------------


class RewritingSource(WrappedStore):
    """The first read at offset 0 yields one piece; then (once ``ready`` is set) the
    file is rewritten in place with ``new`` (same size, a later mtime) and the read goes
    on, now reading the new bytes."""

    def __init__(self, inner: Store, file: Path, new: bytes, ready: asyncio.Event, *,
                 mtime: float = MTIME + 100) -> None:
        super().__init__(inner)
        self._file = file
        self._new = new
        self._ready = ready
        self._mtime = mtime
        self.rewritten = False

    async def read(self, inner: Session, path: str, *, offset: int,
                   length: int | None, **kw: Any) -> AsyncIterator[bytes]:
        first = offset == 0 and not self.rewritten
        async for piece in inner.read(path, offset=offset, length=length, **kw):
            yield piece
            if first and not self.rewritten:
                await self._ready.wait()
                rewrite_in_place(self._file, self._new, mtime=self._mtime)
                self.rewritten = True


class WatchedDestination(WrappedStore):
    """Tells when the write of the segment starting at ``offset`` has returned."""

    def __init__(self, inner: Store) -> None:
        super().__init__(inner)
        self.returned: defaultdict[int, asyncio.Event] = defaultdict(asyncio.Event)

    async def write(self, inner: Session, path: str, data: AsyncIterable[bytes],
                    **kw: Any) -> int:
        try:
            return await inner.write(path, data, **kw)
        finally:
            self.returned[kw.get("offset", 0)].set()


@pytest.mark.parametrize(("size", "segments"), [(2 * MiB, 1), (4 * SEGMENT, 4)],
                         ids=["small-file", "four-segments"])
def test_a_file_rewritten_during_its_copy_is_never_placed_mixed(
    size: int, segments: int, tmp_path: Path
) -> None:
    src_root, dst_root = tmp_path / "src", tmp_path / "dst"
    src_root.mkdir()
    old, new = os.urandom(size), os.urandom(size)
    file = src_root / "live.db"
    file.write_bytes(old)
    os.utime(file, (MTIME, MTIME))

    async def go() -> tuple[Summary, RewritingSource]:
        dst = WatchedDestination(store_for(None, dst_root))
        # Small file: rewrite after its first piece. Segmented: once the last segment
        # was read and written (the old engine checked the source there, and only
        # there), while the first segment is still reading.
        ready = asyncio.Event() if segments > 1 else None
        src = RewritingSource(store_for(None, src_root), file, new,
                              ready if ready is not None else _set_event())
        task = asyncio.create_task(copy_with(src, dst, segment_threshold=4 * SEGMENT,
                                             segment_size=SEGMENT,
                                             bounds=Limits(segments_per_file=4)))
        if ready is not None:
            await dst.returned[(segments - 1) * SEGMENT].wait()
            ready.set()
        return await task, src

    summary, src = asyncio.run(go())
    assert src.rewritten
    placed = (dst_root / "live.db").read_bytes()
    assert placed in (old, new), "a mixed file was placed"
    assert summary.status == "ok", summary.failed
    assert placed == new
    assert [p for p, _why in summary.restarted] == ["live.db"]


def rewrite_in_place(file: Path, new: bytes, *, mtime: float) -> None:
    """Same size, new bytes, the given mtime: as a database rewrites its file."""
    with open(file, "r+b") as fh:
        fh.write(new)
    os.utime(file, (mtime, mtime))


def test_checksum_sees_a_rewrite_that_kept_size_and_mtime(tmp_path: Path) -> None:
    """Only the content can tell (the mtime is put back, as a careful tool or an FTP
    server's 1 s resolution would): --checksum reads the source again before placing."""
    src_root, dst_root = tmp_path / "src", tmp_path / "dst"
    src_root.mkdir()
    old, new = os.urandom(2 * MiB), os.urandom(2 * MiB)
    file = src_root / "live.db"
    file.write_bytes(old)
    os.utime(file, (MTIME, MTIME))

    async def go() -> Summary:
        src = RewritingSource(store_for(None, src_root), file, new, _set_event(),
                              mtime=MTIME)
        return await copy_with(src, store_for(None, dst_root), checksum=True)

    summary = asyncio.run(go())
    assert summary.status == "ok", summary.failed
    assert (dst_root / "live.db").read_bytes() == new
    assert [p for p, _why in summary.restarted] == ["live.db"]


def _set_event() -> asyncio.Event:
    event = asyncio.Event()
    event.set()
    return event


class SwappingSource(WrappedStore):
    """After the first piece of ``name``, the file is replaced by a symlink to another
    file of the same size (as an attacker with write access to the source would)."""

    def __init__(self, inner: Store, root: Path, name: str, target: Path) -> None:
        super().__init__(inner)
        self._file = root / name
        self._target = target
        self.swapped = False

    async def read(self, inner: Session, path: str, *, offset: int,
                   length: int | None, **kw: Any) -> AsyncIterator[bytes]:
        async for piece in inner.read(path, offset=offset, length=length, **kw):
            yield piece
            if not self.swapped and self._file.name == path.rsplit("/", 1)[-1]:
                self._file.unlink()
                self._file.symlink_to(self._target)
                self.swapped = True


def test_a_file_swapped_for_a_link_during_its_copy_is_not_placed(tmp_path: Path) -> None:
    src_root, dst_root = tmp_path / "src", tmp_path / "dst"
    src_root.mkdir()
    (src_root / "a.txt").write_bytes(os.urandom(2 * MiB))
    secret = tmp_path / "secret"
    secret.write_bytes(b"S" * 2 * MiB)

    async def go() -> tuple[Summary, SwappingSource]:
        src = SwappingSource(store_for(None, src_root), src_root, "a.txt", secret)
        return await copy_with(src, store_for(None, dst_root)), src

    summary, src = asyncio.run(go())
    assert src.swapped
    assert summary.status == "partial"
    assert [p for p, _why in summary.failed] == ["a.txt"]
    assert "no longer a regular file" in summary.failed[0][1]
    assert not (dst_root / "a.txt").exists()
    assert [p.name for p in dst_root.iterdir()] == []  # no temporary file left either
