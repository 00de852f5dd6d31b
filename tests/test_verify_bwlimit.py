"""``--bwlimit`` on verify: every byte read on both sides goes through one token bucket.

The limiter runs on a virtual clock (time moves only when the bucket asks to wait), so
the test checks the bucket's accounting, exactly, and never measures elapsed time.
"""

from __future__ import annotations

import asyncio
import json
from collections.abc import AsyncIterator, Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
from typer.testing import CliRunner

import fsmove.commands.copy as copy_command
import fsmove.commands.verify as verify_command
from fsmove.cli import app
from fsmove.transfers.backend import PIECE_SIZE, Capabilities, Entry, Session
from fsmove.transfers.decorators import SessionDecorator
from fsmove.transfers.endpoint import parse_endpoint
from fsmove.transfers.local import LocalStore
from fsmove.transfers.pool import SessionPool
from fsmove.transfers.ratelimit import RateLimitedSession, RateLimiter, rate_limited
from tests.copy_harness import put_files, side_for
from tests.servers import RunningServer

MiB = 1024 * 1024


class VirtualClock:
    """Seconds that pass only when a waiter sleeps."""

    def __init__(self) -> None:
        self.now = 0.0

    def __call__(self) -> float:
        return self.now

    async def sleep(self, seconds: float) -> None:
        self.now += seconds
        await asyncio.sleep(0)


@pytest.fixture
def limiters(monkeypatch: pytest.MonkeyPatch) -> Iterator[list[RateLimiter]]:
    """Every limiter the verify command makes, each on its own virtual clock."""
    made: list[RateLimiter] = []

    def make(rate: float) -> RateLimiter:
        clock = VirtualClock()
        limiter = RateLimiter(rate, clock=clock, sleep=clock.sleep)
        made.append(limiter)
        return limiter

    monkeypatch.setattr(verify_command, "RateLimiter", make)
    yield made


def _files() -> dict[str, bytes]:
    return {
        "big.bin": bytes(range(256)) * (3 * MiB // 256),
        "d/half.bin": b"h" * (MiB // 2),
        "d/small.txt": b"small\n",
    }


@pytest.mark.interop
def test_verify_bwlimit_paces_every_byte_both_sides_read(
    vsftpd_server: RunningServer, fresh_subdir: Callable[[RunningServer], RunningServer],
    tmp_path: Path, limiters: list[RateLimiter],
) -> None:
    server = fresh_subdir(vsftpd_server)
    files = _files()
    put_files(server, server.root, files)
    put_files(None, tmp_path / "dst", files)
    src = side_for("vsftpd", server, server.root, "src")
    result = CliRunner().invoke(
        app, ["verify", src.url, str(tmp_path / "dst"), "--bwlimit", "1M", "--json",
              "--no-journal"],
        env=dict(src.env),
    )
    assert result.exit_code == 0, result.output
    report = next(e for e in map(json.loads, result.stdout.splitlines())
                  if e.get("type") == "verification")
    assert report["verdict"] == "match"
    (limiter,) = limiters  # one bucket shared by both sides
    assert limiter.rate == MiB
    total = sum(len(b) for b in files.values())
    read = report["totals"]["read"]
    assert read["source"]["bytes"] == read["destination"]["bytes"] == total
    # Every byte read on both sides took its tokens; the bucket made the readers wait
    # for all of them but the first burst.
    assert limiter.bytes_taken == 2 * total
    assert limiter.seconds_waited == pytest.approx((2 * total - limiter.capacity) / MiB)


def test_verify_refuses_a_bwlimit_that_is_not_a_rate(tmp_path: Path) -> None:
    result = CliRunner().invoke(app, ["verify", str(tmp_path), str(tmp_path),
                                      "--bwlimit", "fast"])
    assert result.exit_code == 2, result.output
    assert result.stderr.strip().startswith("fsmove: error: --bwlimit: invalid rate 'fast'")


class _Flagged(SessionDecorator):
    """A session with an attribute of its own backend (as FTP's ``broken``)."""

    broken = True


def test_the_limited_store_passes_everything_but_reads_through(tmp_path: Path) -> None:
    put_files(None, tmp_path / "t", {"a.txt": b"alpha", "sub/b.txt": b"beta"})
    store = LocalStore(parse_endpoint(str(tmp_path / "t")))
    clock = VirtualClock()
    limiter = RateLimiter(1024, clock=clock, sleep=clock.sleep)
    limited = rate_limited(store, limiter)
    assert rate_limited(store, None) is store
    assert limited.display == store.display

    async def go() -> tuple[list[Entry], bytes, Capabilities, bool]:
        pool = SessionPool(limited, max_sessions=1)
        try:
            async with pool.session() as s:
                assert isinstance(s, RateLimitedSession)
                listed = [e async for e in s.list("")]
                data = b"".join([p async for p in s.read("sub/b.txt")])
                await s.write("new.txt", _chunks(b"written"))
            caps = await pool.capabilities()
        finally:
            await pool.aclose()
        flagged = RateLimitedSession(_Flagged(await store.connect()), limiter)
        return listed, data, caps, bool(flagged.broken)

    listed, data, caps, broken = asyncio.run(go())
    assert sorted(e.path for e in listed) == ["a.txt", "sub"]
    assert data == b"beta" and (tmp_path / "t" / "new.txt").read_bytes() == b"written"
    assert caps == asyncio.run(store.capabilities())
    assert broken  # the pool still sees a backend's own health flag
    assert limiter.bytes_taken == 4  # the read only, not the write


async def _chunks(data: bytes):  # type: ignore[no-untyped-def]
    yield data


class _WatchedReads(SessionDecorator):
    """Records when a backend reader ends (an FTP reader aborts its transfer there)."""

    def __init__(self, inner: Session, ended: list[str]) -> None:
        super().__init__(inner)
        self.ended = ended

    async def read(self, path: str, **kw: Any) -> AsyncIterator[bytes]:  # type: ignore[override]
        try:
            async for piece in self.inner.read(path, **kw):
                yield piece
        finally:
            self.ended.append(path)


def test_a_limited_read_closed_early_closes_the_backends_reader_at_once(
    tmp_path: Path,
) -> None:
    put_files(None, tmp_path, {"big.bin": b"b" * (3 * PIECE_SIZE)})
    ended: list[str] = []

    async def go() -> None:
        inner = await LocalStore(parse_endpoint(str(tmp_path))).connect()
        clock = VirtualClock()
        session = RateLimitedSession(_WatchedReads(inner, ended),
                                     RateLimiter(MiB, clock=clock, sleep=clock.sleep))
        reader = session.read("big.bin")
        first = await anext(reader)
        assert len(first) == PIECE_SIZE and ended == []
        await reader.aclose()  # type: ignore[attr-defined]
        assert ended == ["big.bin"]  # not left to the garbage collector
        await session.close()

    asyncio.run(go())


def test_copy_then_verify_verifies_under_the_copys_bwlimit(
    tmp_path: Path, limiters: list[RateLimiter]
) -> None:
    files = _files()
    # Changed long before the copy: the journal's digests stand in for them (a file
    # changed within a minute of its copy is read again: verify.RACY_WINDOW).
    put_files(None, tmp_path / "src", files, mtime=1_600_000_000)
    result = CliRunner().invoke(app, ["copy", str(tmp_path / "src"), str(tmp_path / "dst"),
                                      "--verify", "--bwlimit", "64M", "-q",
                                      "--journal", str(tmp_path / "j.db")])
    assert result.exit_code == 0, result.output
    (limiter,) = limiters
    assert limiter.rate == 64 * MiB
    # The copy's journal stands in for the source: the destination alone is read.
    assert limiter.bytes_taken == sum(len(b) for b in files.values())


def test_copy_paces_every_source_read_through_the_store_decorator(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """copy's --bwlimit is the same RateLimitedStore as verify's, around the source: every
    byte read from the source (here each file once) goes through its one limiter, on a
    virtual clock (no wall-clock wait, no timing asserted)."""
    made: list[RateLimiter] = []

    def make(rate: float) -> RateLimiter:
        clock = VirtualClock()
        made.append(RateLimiter(rate, clock=clock, sleep=clock.sleep))
        return made[-1]

    monkeypatch.setattr(copy_command, "RateLimiter", make)
    files = _files()
    put_files(None, tmp_path / "src", files)
    result = CliRunner().invoke(app, ["copy", str(tmp_path / "src"), str(tmp_path / "dst"),
                                      "--bwlimit", "1M", "-q",
                                      "--journal", str(tmp_path / "j.db")])
    assert result.exit_code == 0, result.output
    (limiter,) = made
    assert limiter.rate == MiB
    total = sum(len(b) for b in files.values())
    assert limiter.bytes_taken == total
    assert limiter.seconds_waited > 0  # 3.5 MiB at 1 MiB/s: the bucket made it wait
    for rel, data in files.items():
        assert (tmp_path / "dst" / rel).read_bytes() == data
