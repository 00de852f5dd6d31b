"""ONE conformance suite for every backend against every real server (rclone's fstests
move): local, vsftpd, pure-ftpd, proftpd (FTP, and FTPS on vsftpd and proftpd), OpenSSH
sftp, and aioftp's own server. Each store DECLARES what it cannot do
(``conformance_stores.CANNOT``): a test of a feature is generated only for the stores
that have it, a test of the limitation for those that lack it, and
``test_declared_limits_are_real`` checks each declaration against the live store. No test
returns early on a capability, none is skipped."""

from __future__ import annotations

import os
from collections.abc import AsyncIterator, Awaitable, Callable, Iterator
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any

import pytest

from fsmove.transfers.backend import (
    BackendError,
    Capabilities,
    Entry,
    EntryKind,
    NotFoundError,
    OffsetWrites,
    Session,
    SessionFeatures,
    Store,
    UnsupportedError,
)
from fsmove.transfers.policy import READ_RETRIES, RetryPolicy
from fsmove.transfers.pool import SessionPool
from fsmove.transfers.survey import probed
from fsmove.transfers.walk import walk
from tests.conformance_stores import (
    CANNOT,
    STORES,
    Feature,
    run,
    store_for,
    stores_with,
    stores_without,
)
from tests.copy_harness import (
    Side,
    put_files,
    run_copy_subprocess,
    side_for,
    temp_leftovers,
    tree_digests,
)
from tests.servers import RunningServer

ODD_NAMES = ("with space.txt", "üñíçødé €.txt", "hash#and%percent.txt", "日本語 ファイル.bin")


@dataclass
class Target:
    """A store rooted at an empty folder, plus a way to put files there directly."""

    name: str
    root: Path
    server: RunningServer | None

    def store(self) -> Store:
        return store_for(self.server, self.root)

    def put(self, files: dict[str, bytes], *, mtime: float | None = None) -> None:
        put_files(self.server, self.root, files, mtime=mtime)


def on(stores: list[str] | tuple[str, ...]) -> pytest.MarkDecorator:
    """Run a test on these stores (the ``target`` fixture, one test per store)."""
    return pytest.mark.parametrize("target", stores, indirect=True)


ON_EVERY_STORE = on(STORES)


@pytest.fixture
def target(
    request: pytest.FixtureRequest,
    fresh_subdir: Callable[[RunningServer], RunningServer],
    local_root: Path,
) -> Iterator[Target]:
    if request.param == "local":
        yield Target("local", local_root, None)
        return
    server = fresh_subdir(request.getfixturevalue(request.param))
    yield Target(request.param, server.root, server)


class PooledSession:
    """The Session protocol over a pool of one session: every operation borrows it, as
    copy and verify do. A session the server dropped (aioftp's server may end one when
    a ranged read is aborted) is replaced by the pool, which alone recovers sessions;
    with one session, every other operation reuses the same connection, so replies
    out of step would still show."""

    def __init__(self, pool: SessionPool) -> None:
        self._pool = pool

    @property
    def usable(self) -> bool:
        return True

    def __getattr__(self, name: str) -> Callable[..., Awaitable[Any]]:
        # stat, write, mkdir, rename, remove, rmdir, set_mtime, place
        async def borrowed(*args: Any, **kwargs: Any) -> Any:
            async with self._pool.session() as s:
                return await getattr(s, name)(*args, **kwargs)

        return borrowed

    async def list(self, path: str) -> AsyncIterator[Entry]:
        async with self._pool.session() as s:
            async for entry in s.list(path):
                yield entry

    async def read(self, path: str, **kwargs: Any) -> AsyncIterator[bytes]:
        async with self._pool.session() as s:
            async for piece in s.read(path, **kwargs):
                yield piece

    async def close(self) -> None:
        return None


_PROBE_RETRIES = RetryPolicy(retries=2, first_delay=0.0, max_delay=0.0)


def with_session(target: Target, fn: Callable[[Session, Store], object]) -> object:
    async def go() -> object:
        store = target.store()
        pool = SessionPool(store, max_sessions=1)
        try:
            # The write probe first, a lost connection retried as a copy's survey does
            # (CI, once: proftpd+TLS reset a probe's data connection, session 35).
            await probed(pool, _PROBE_RETRIES)
            return await fn(PooledSession(pool), store)  # type: ignore[arg-type, misc]
        finally:
            await pool.aclose()  # closes the store too

    return run(go)


async def read_all(s: Session, path: str, **kw: int) -> bytes:
    return b"".join([p async for p in s.read(path, **kw)])


async def agen(*pieces: bytes):  # type: ignore[no-untyped-def]
    for p in pieces:
        yield p


pytestmark = pytest.mark.interop


@ON_EVERY_STORE
def test_stat_and_list(target: Target) -> None:
    target.put({"a.txt": b"hello", "sub/b.bin": b"x" * 1000, "sub/deeper/c": b""}, mtime=1.6e9)

    async def check(s: Session, _store: Store) -> None:
        e = await s.stat("a.txt")
        assert (e.kind, e.size, e.path) == (EntryKind.FILE, 5, "a.txt")
        assert e.mtime is not None and abs(e.mtime - 1.6e9) <= 1
        d = await s.stat("sub")
        assert d.kind is EntryKind.DIR
        root = await s.stat("")
        assert root.kind is EntryKind.DIR
        with pytest.raises(NotFoundError):
            await s.stat("missing.txt")
        with pytest.raises(NotFoundError):
            await s.stat("sub/missing/deeper")
        names = sorted([(x.path, x.kind, x.size) async for x in s.list("sub")])
        assert names == [("sub/b.bin", EntryKind.FILE, 1000), ("sub/deeper", EntryKind.DIR, 0)]
        top = sorted([x.path async for x in s.list("")])
        assert top == ["a.txt", "sub"]
        with pytest.raises(NotFoundError):
            _ = [x async for x in s.list("nope")]

    with_session(target, check)


@ON_EVERY_STORE
def test_read_ranges(target: Target) -> None:
    data = os.urandom(3 * 1024 * 1024 + 17)
    target.put({"r.bin": data, "empty": b""})

    async def check(s: Session, _store: Store) -> None:
        caps = await _store.capabilities()
        assert await read_all(s, "r.bin") == data
        assert await read_all(s, "empty") == b""
        assert caps.ranged_read
        assert await read_all(s, "r.bin", offset=1_000_003) == data[1_000_003:]
        assert caps.bounded_read  # every store declares bounded reads
        got = await read_all(s, "r.bin", offset=777, length=300_001)
        assert got == data[777 : 777 + 300_001]
        # The session must still work after a read stopped early (FTP ABOR).
        assert await read_all(s, "r.bin", offset=5, length=10) == data[5:15]
        assert await read_all(s, "r.bin") == data
        with pytest.raises(NotFoundError):
            await read_all(s, "missing.bin")

    with_session(target, check)


@ON_EVERY_STORE
def test_write_create_truncates(target: Target) -> None:
    async def check(s: Session, _store: Store) -> None:
        n = await s.write("w.bin", agen(b"a" * 100_000, b"b" * 50))
        assert n == 100_050
        assert await read_all(s, "w.bin") == b"a" * 100_000 + b"b" * 50
        await s.write("w.bin", agen(b"short"))
        assert await read_all(s, "w.bin") == b"short"
        await s.write("empty", agen())
        assert (await s.stat("empty")).size == 0

    with_session(target, check)


@on(stores_with(Feature.WRITE_ANYWHERE))
def test_write_at_any_offset(target: Target) -> None:
    async def check(s: Session, _store: Store) -> None:
        await s.write("o.bin", agen(b"0123456789"))
        await s.write("o.bin", agen(b"ab"), offset=4, create=False)
        assert await read_all(s, "o.bin") == b"0123ab6789"
        await s.write("o.bin", agen(b"XY"), offset=10, create=False)
        assert await read_all(s, "o.bin") == b"0123ab6789XY"

    with_session(target, check)


@on(stores_without(Feature.WRITE_ANYWHERE))
def test_write_at_the_end_only_where_declared(target: Target) -> None:
    async def check(s: Session, _store: Store) -> None:
        await s.write("o.bin", agen(b"0123456789"))
        await s.write("o.bin", agen(b"XY"), offset=10, create=False)
        assert await read_all(s, "o.bin") == b"0123456789XY"
        with pytest.raises(UnsupportedError):
            await s.write("o.bin", agen(b"ab"), offset=4, create=False)
        assert await read_all(s, "o.bin") == b"0123456789XY"

    with_session(target, check)


@ON_EVERY_STORE
def test_mkdir_rename_remove(target: Target) -> None:
    async def check(s: Session, _store: Store) -> None:
        await s.mkdir("x/y/z")
        await s.mkdir("x/y/z")  # exists: no error
        await s.mkdir("x/y")
        assert (await s.stat("x/y/z")).kind is EntryKind.DIR
        await s.write("x/y/z/f", agen(b"one"))
        await s.rename("x/y/z/f", "x/g")
        assert await read_all(s, "x/g") == b"one"
        with pytest.raises(NotFoundError):
            await s.stat("x/y/z/f")
        await s.write("x/h", agen(b"two"))
        await s.remove("x/g")
        await s.rename("x/h", "x/g")
        assert await read_all(s, "x/g") == b"two"
        await s.remove("x/g")
        with pytest.raises(NotFoundError):
            await s.stat("x/g")
        with pytest.raises(NotFoundError):
            await s.remove("x/g")
        await s.rmdir("x/y/z")
        with pytest.raises(NotFoundError):
            await s.stat("x/y/z")

    with_session(target, check)


@on(stores_with(Feature.RENAME_REPLACES))
def test_rename_replaces_an_existing_file(target: Target) -> None:
    async def check(s: Session, _store: Store) -> None:
        await s.write("g", agen(b"one"))
        await s.write("h", agen(b"two"))
        await s.rename("h", "g")
        assert await read_all(s, "g") == b"two"
        with pytest.raises(NotFoundError):
            await s.stat("h")

    with_session(target, check)


@on(stores_without(Feature.RENAME_REPLACES))
def test_rename_over_a_file_is_refused_where_declared(target: Target) -> None:
    """The engine removes the target first on these stores; a rename over it is refused
    and changes nothing."""

    async def check(s: Session, _store: Store) -> None:
        await s.write("g", agen(b"one"))
        await s.write("h", agen(b"two"))
        with pytest.raises(BackendError):
            await s.rename("h", "g")
        assert await read_all(s, "g") == b"one"
        assert await read_all(s, "h") == b"two"

    with_session(target, check)


@on(stores_with(Feature.SET_MTIME))
def test_set_mtime(target: Target) -> None:
    async def check(s: Session, store: Store) -> None:
        caps = await store.capabilities()
        await s.write("m.txt", agen(b"m"))
        when = 1_234_567_890.0
        await s.set_mtime("m.txt", when)
        e = await s.stat("m.txt")
        assert e.mtime is not None and abs(e.mtime - when) <= caps.mtime_resolution
        listed = {x.path: x async for x in s.list("")}
        lm = listed["m.txt"].mtime
        assert lm is None or abs(lm - when) <= 60  # LIST may round to the minute

    with_session(target, check)


@on(stores_with(Feature.SET_MTIME))
def test_place_sets_mtime_then_renames(target: Target) -> None:
    """``place`` (pipelined where the server keeps order): the mtime lands on the
    file before the rename; a missing temporary file is NotFoundError and renames
    nothing; the session stays in step for the next operations."""
    with_session(target, lambda s, store: check_place(s, store, when=1_300_000_000.0))


@on(stores_without(Feature.SET_MTIME))
def test_place_renames_without_a_time_where_declared(target: Target) -> None:
    with_session(target, lambda s, store: check_place(s, store, when=None))


async def check_place(s: Session, store: Store, *, when: float | None) -> None:
    caps = await store.capabilities()
    await s.mkdir("d")
    await s.write("d/.t.part", agen(b"placed"))
    await s.place("d/.t.part", "d/final name #1.txt", mtime=when)
    e = await s.stat("d/final name #1.txt")
    assert e.size == 6
    if when is not None:
        assert e.mtime is not None and abs(e.mtime - when) <= caps.mtime_resolution
    with pytest.raises(NotFoundError):
        await s.stat("d/.t.part")
    with pytest.raises(NotFoundError):
        await s.place("d/.absent.part", "d/never", mtime=None)
    with pytest.raises(BackendError):
        await s.place("d/.absent.part", "d/never", mtime=when)
    with pytest.raises(NotFoundError):
        await s.stat("d/never")
    # Replies are still in step: the next operations see their own answers.
    assert await read_all(s, "d/final name #1.txt") == b"placed"
    names = sorted([x.path async for x in s.list("d")])
    assert names == ["d/final name #1.txt"]


@ON_EVERY_STORE
def test_odd_names_round_trip(target: Target) -> None:
    async def check(s: Session, _store: Store) -> None:
        await s.mkdir("dir with space/ünï")
        for i, name in enumerate(ODD_NAMES):
            await s.write(f"dir with space/ünï/{name}", agen(name.encode() * (i + 1)))
        listed = sorted([x.path async for x in s.list("dir with space/ünï")])
        assert listed == sorted(f"dir with space/ünï/{n}" for n in ODD_NAMES)
        for i, name in enumerate(ODD_NAMES):
            p = f"dir with space/ünï/{name}"
            assert await read_all(s, p) == name.encode() * (i + 1)
            assert (await s.stat(p)).size == len(name.encode()) * (i + 1)

    with_session(target, check)
    for name in ODD_NAMES:  # the bytes on disk carry the exact UTF-8 name
        assert (target.root / "dir with space" / "ünï" / name).is_file()


@ON_EVERY_STORE
def test_offsets_beyond_4gib(target: Target) -> None:
    """A sparse 5 GiB file: ranged reads (and writes, where declared) past 4 GiB."""
    writes_anywhere = Feature.WRITE_ANYWHERE not in CANNOT[target.name]
    big = 5 * 1024**3
    marker_at = 4 * 1024**3 + 12_345
    target.put({"sparse.bin": b""})
    path = target.root / "sparse.bin"
    with open(path, "r+b") as fh:
        fh.truncate(big)
        fh.seek(marker_at)
        fh.write(b"MARKER")

    async def check(s: Session, _store: Store) -> None:
        assert (await s.stat("sparse.bin")).size == big
        got = await read_all(s, "sparse.bin", offset=marker_at - 2, length=10)
        assert got == b"\0\0MARKER\0\0"
        if writes_anywhere:
            await s.write("sparse.bin", agen(b"HI"), offset=marker_at + 100, create=False)

    with_session(target, check)
    with open(path, "rb") as fh:
        assert os.path.getsize(path) == big
        fh.seek(marker_at)
        tail = fh.read(102)
    assert tail.startswith(b"MARKER")
    assert tail[100:102] == (b"HI" if writes_anywhere else b"\0\0")


@ON_EVERY_STORE
def test_directory_of_10000_entries(target: Target) -> None:
    folder = target.root / "many"
    target.put({"many/.keep": b""})
    # Each file its own mtime (a day apart, whole seconds): a LIST-only server's exact
    # times come from MDTMs pipelined hundreds at a time, and a reply matched to the
    # wrong file would show here.
    base = 1_500_000_000
    for i in range(10_000):
        path = folder / f"f{i:05d}"
        path.write_bytes(b"")
        os.utime(path, (base + i * 86_400, base + i * 86_400))
    if target.server is not None:
        owner = target.server.owner
        for p in folder.iterdir():
            os.chown(p, *owner)

    async def check(s: Session, _store: Store) -> None:
        entries: list[Entry] = [x async for x in s.list("many")]
        names = {e.path for e in entries}
        assert len(entries) == 10_001 and len(names) == 10_001
        assert "many/f09999" in names
        wrong = [(e.path, e.mtime) for e in entries if e.path != "many/.keep"
                 and e.mtime != base + int(e.path[-5:]) * 86_400]
        assert not wrong, wrong[:5]

    with_session(target, check)


@ON_EVERY_STORE
def test_walk_through_pool(target: Target) -> None:
    files = {f"d{i}/e{j}/f{k}.txt": b"z" * k for i in range(3) for j in range(3) for k in range(3)}
    target.put(files)

    async def go() -> tuple[list[str], list[object]]:
        pool = SessionPool(target.store(), max_sessions=3)
        found: list[str] = []
        issues: list[object] = []
        try:
            # As verify and the catch-up walk: a listing lost to a dropped connection
            # is asked again (CI, loaded: once a folder of pyftpdlib's missing).
            async for e in walk(pool, retry=READ_RETRIES):
                if isinstance(e, Entry) and e.kind is EntryKind.FILE:
                    found.append(e.path)
                elif not isinstance(e, Entry):
                    issues.append(e)  # a folder not listed: said, with why
            return sorted(found), issues
        finally:
            await pool.aclose()

    found, issues = run(go)
    assert issues == [] and found == sorted(files), issues


@ON_EVERY_STORE
def test_copy_into_a_root_that_does_not_exist(target: Target, tmp_path: Path) -> None:
    """The first thing a user does with a fresh bucket folder: `fsmove copy ./tree
    URL/new/deeper` where neither level exists yet. Every backend makes the root
    (mkdir -p), the copy is complete, and stderr holds no stray task traceback."""
    src = tmp_path / "tree"
    files = {"a.txt": b"alpha\n", "sub/b.bin": os.urandom(70_000), "sub/deep/c": b""}
    put_files(None, src, files)
    new_root = target.root / "new" / "deeper"
    if target.server is None:
        dst = Side(kind="local", url=str(new_root), root=new_root)
    else:
        server = replace(target.server, root=new_root,
                         url_path=target.server.path("new/deeper"))
        dst = side_for(target.name, server, new_root, "dst")
    result = run_copy_subprocess(Side(kind="local", url=str(src), root=src), dst,
                                 journal=tmp_path / "job.db")
    assert result.exit_code == 0, result.output[-3000:]
    assert "Traceback" not in result.output and "never retrieved" not in result.output
    assert tree_digests(new_root) == tree_digests(src)
    assert not temp_leftovers(new_root)


@ON_EVERY_STORE
def test_declared_limits_are_real(target: Target) -> None:
    """Each store's declaration (``CANNOT``) says exactly what its capabilities say, in
    both directions, and a declared limitation is refused where it can be asked for: a
    declaration can neither hide a feature from the suite nor claim one it lacks."""
    cannot = CANNOT[target.name]

    async def check(store: Store) -> None:
        caps = await store.capabilities()
        s = await store.connect()  # the session itself: its optional methods
        try:
            await check_session(s, caps)
        finally:
            await s.close()
            await store.aclose()

    async def check_session(s: Session, caps: Capabilities) -> None:
        assert caps.ranged_read and caps.bounded_read  # no store may lack these
        expected = OffsetWrites.APPEND if Feature.WRITE_ANYWHERE in cannot else OffsetWrites.ANY
        assert caps.offset_writes is expected
        assert caps.rename_replaces is (Feature.RENAME_REPLACES not in cannot)
        assert caps.set_mtime is (Feature.SET_MTIME not in cannot)
        assert SessionFeatures.of(s).idle_check is (Feature.IDLE_CHECK not in cannot)
        await s.write("m.txt", agen(b"m"))
        if Feature.SET_MTIME in cannot:
            with pytest.raises(UnsupportedError):
                await s.set_mtime("m.txt", 1_234_567_890.0)
        if Feature.IDLE_CHECK not in cannot:
            assert await s.still_alive()  # type: ignore[attr-defined]

    run(lambda: check(target.store()))
