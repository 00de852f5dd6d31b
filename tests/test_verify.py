"""The verifier against real stores: local folders, vsftpd (FTP) and OpenSSH (SFTP).

The acceptance case: from identical trees, corrupt one byte of a destination file,
truncate another, delete a third, add an extra one and make one source file unreadable;
verify must report exactly those five with the right categories and exit 4, in JSON and
in HTML. Reads are counted by ``CountingStore``, a wrapper that delegates every call to
the real store and counts ``read`` calls per path (not a mock: the bytes come from the
real backend).
"""

from __future__ import annotations

import asyncio
import concurrent.futures.thread  # noqa: F401  (imported early: see effective_uid)
import contextlib
import dataclasses
import json
import os
import stat
import tempfile
import time
from collections import Counter
from collections.abc import AsyncIterator, Callable, Iterator
from pathlib import Path
from typing import Any

import pytest

from fsmove.exitcodes import verification_exit_code
from fsmove.transfers.backend import (
    AuthError,
    Entry,
    EntryKind,
    NotFoundError,
    PermanentError,
    Session,
    Store,
    TransientError,
)
from fsmove.transfers.decorators import SessionDecorator, StoreDecorator
from fsmove.transfers.endpoint import parse_endpoint
from fsmove.transfers.local import LocalStore
from fsmove.transfers.policy import Limits
from fsmove.transfers.pool import SessionPool
from fsmove.transfers.tree import Filters, TempNames, TreeRules, looks_like_temp
from fsmove.verify.digest import ALGORITHM, BLOCK_SIZE, digest_bytes
from fsmove.verify.html_report import render_html, write_html
from fsmove.verify.report import SCHEMA, terminal_summary, to_json, write_json
from fsmove.verify.verifier import (
    BytesHashed,
    Category,
    How,
    ListingFinished,
    PathChecked,
    ProgressEvent,
    Tier,
    Verification,
    in_sample,
    verify_trees,
)
from tests.conformance_stores import store_for
from tests.servers import RunningServer, make_tree

NOBODY = 65534

# ---------------------------------------------------------------------------------------
# A counting wrapper and a flaky wrapper around a real store (decorators, not mocks).
# ---------------------------------------------------------------------------------------


class CountingSession(SessionDecorator):
    def __init__(self, inner: Session, owner: CountingStore) -> None:
        super().__init__(inner)
        self._owner = owner

    def read(
        self, path: str, *, offset: int = 0, length: int | None = None,
        expect: Entry | None = None,
    ) -> AsyncIterator[bytes]:
        self._owner.reads[path] += 1
        if path in self._owner.fail_once:
            self._owner.fail_once.discard(path)
            return self._fail(path)
        return super().read(path, offset=offset, length=length, expect=expect)

    async def _fail(self, path: str) -> AsyncIterator[bytes]:
        raise TransientError(f"{path}: connection dropped (injected)", path=path)
        yield b""  # pragma: no cover - makes this an async generator


class CountingStore(StoreDecorator):
    """Delegates to a real store; counts ``read`` calls per path; can make the first
    read of chosen paths fail with a TransientError (a dropped connection)."""

    def __init__(self, inner: Store, *, fail_once: set[str] | None = None) -> None:
        super().__init__(inner)
        self.reads: Counter[str] = Counter()
        self.fail_once = set(fail_once or ())

    def wrap(self, session: Session) -> CountingSession:
        return CountingSession(session, self)


# ---------------------------------------------------------------------------------------
# Trees.
# ---------------------------------------------------------------------------------------

TRICKY = "weird/a <b> & \"q\" 'é' ü &amp; <script>.txt"

BASE_FILES: dict[str, bytes] = {
    "docs/corrupt.bin": bytes(range(256)) * 40,
    "docs/truncated.txt": b"line\n" * 300,
    "deleted.dat": b"will be deleted from the destination",
    "secret/locked.txt": b"nobody may read this",
    "same/one.txt": b"one",
    "same/two.txt": b"two" * 1000,
    "same/empty.txt": b"",
    # crosses a digest block boundary, so the block combination is exercised
    "same/big.bin": os.urandom(BLOCK_SIZE + 12345),
    TRICKY: b"identical, with a name full of markup",
}

FIVE = {
    "docs/corrupt.bin": Category.DIFFERS,
    "docs/truncated.txt": Category.DIFFERS,
    "deleted.dat": Category.ONLY_SRC,
    "extra.txt": Category.ONLY_DST,
    "secret/locked.txt": Category.UNREADABLE,
}


def write_tree(root: Path, files: dict[str, bytes], *, owner: tuple[int, int] | None) -> None:
    for rel, content in files.items():
        path = root / rel
        missing = [p for p in reversed(path.parents) if not p.exists()]
        for d in missing:
            d.mkdir(mode=0o755)
            if owner:
                os.chown(d, *owner)
        path.write_bytes(content)
        path.chmod(0o644)
        if owner:
            os.chown(path, *owner)


def damage(src: Path, dst: Path, *, owner: tuple[int, int] | None) -> None:
    """The five problems of the acceptance test (the unreadable one is made apart)."""
    with open(dst / "docs/corrupt.bin", "r+b") as fh:  # one byte, same size
        fh.seek(1000)
        byte = fh.read(1)
        fh.seek(1000)
        fh.write(bytes([byte[0] ^ 0xFF]))
    os.truncate(dst / "docs/truncated.txt", 1000)
    (dst / "deleted.dat").unlink()
    write_tree(dst, {"extra.txt": b"only here"}, owner=owner)
    (src / "secret/locked.txt").chmod(0)


def local_pool(root: Path, *, wrap: bool = False) -> SessionPool:
    store: Store = LocalStore(parse_endpoint(str(root)))
    if wrap:
        store = CountingStore(store)
    return SessionPool(store, max_sessions=4)


@contextlib.contextmanager
def world_readable_dir() -> Iterator[Path]:
    """A temp folder every user can traverse (pytest's tmp_path is root-only)."""
    with tempfile.TemporaryDirectory(dir="/tmp", prefix="fsmove-verify-") as d:
        os.chmod(d, 0o755)
        yield Path(d)


@contextlib.contextmanager
def effective_uid(uid: int) -> Iterator[None]:
    """Run as ``uid`` (effective only), so mode-000 files really fail to open. Tests run
    as root, and root reads anything; the store's worker threads follow (setxid).
    The interpreter lives under /root, which ``uid`` cannot read: every module the run
    needs must be imported before (asyncio's thread pool is, at the top of this file)."""
    os.seteuid(uid)
    try:
        yield
    finally:
        os.seteuid(0)


def run(coro: Any) -> Any:
    return asyncio.run(coro)


async def verify_local(src: Path, dst: Path, **kw: Any) -> Verification:
    s, d = local_pool(src), local_pool(dst)
    try:
        return await verify_trees(src=s, dst=d, **kw)
    finally:
        await s.aclose()
        await d.aclose()


def categories(v: Verification) -> dict[str, Category]:
    return {r.path: r.category for r in v.problems}


def check_five(v: Verification, tmp: Path) -> None:
    """Exactly the five problems, exit 4, and the same in JSON and HTML."""
    assert categories(v) == FIVE, terminal_summary(v)
    assert verification_exit_code(v.outcome) == 4
    t = v.totals
    assert (t.differs, t.only_src, t.only_dst, t.unreadable) == (2, 1, 1, 1)
    by_path = {r.path: r for r in v.results}
    corrupt = by_path["docs/corrupt.bin"]
    assert corrupt.src_size == corrupt.dst_size == 256 * 40
    assert corrupt.src_digest == digest_bytes(BASE_FILES["docs/corrupt.bin"])
    assert corrupt.dst_digest is not None and corrupt.dst_digest != corrupt.src_digest
    assert (corrupt.how_src, corrupt.how_dst) == (How.READ, How.READ)
    truncated = by_path["docs/truncated.txt"]
    assert (truncated.src_size, truncated.dst_size) == (1500, 1000)
    assert "size differs" in truncated.reason
    locked = by_path["secret/locked.txt"]
    assert locked.reason.startswith("source: ") and "\n" not in locked.reason
    assert by_path["deleted.dat"].dst_size is None and by_path["extra.txt"].src_size is None

    report = tmp / "report.json"
    write_json(v, report)
    data = json.loads(report.read_text(encoding="utf-8"))
    assert data["schema"] == SCHEMA == "fsmove.verify/1"
    assert data["algorithm"] == ALGORITHM
    assert data["exit_code"] == 4 and data["verdict"] == "mismatch"
    assert {p["path"]: p["category"] for p in data["paths"]} == {
        k: c.value for k, c in FIVE.items()
    }
    assert data["totals"]["differs"] == 2 and data["totals"]["unreadable"] == 1

    page = tmp / "report.html"
    write_html(v, page)
    text = page.read_text(encoding="utf-8")
    for path in FIVE:
        assert json.dumps(path)[1:-1] in text  # in the embedded rows
    assert "http://" not in text and "https://" not in text  # no external asset
    assert 'data-verdict="mismatch"' in text


# ---------------------------------------------------------------------------------------
# Local stores.
# ---------------------------------------------------------------------------------------


def test_temp_names_are_the_jobs_own() -> None:
    job, other = TempNames(TempNames.new_key()), TempNames(TempNames.new_key())
    temp = job.for_path("photos/a.jpg")
    assert temp.startswith("photos/.fsmove.") and temp.endswith(".part")
    assert job.for_path("photos/a.jpg") == temp  # the same on every run of the job
    assert job.is_ours(temp) and looks_like_temp(temp.rsplit("/", 1)[1])
    assert not other.is_ours(temp) and other.for_path("photos/a.jpg") != temp
    assert not job.is_ours(temp.replace("photos/", "music/"))  # bound to its folder
    for user_file in (".fsmove.notes.part", ".fsmove.0123456789abcdef.part",
                      ".fsmove.0123456789abcdef.0123456789abcdef.part", "fsmove.x.part"):
        assert not job.is_ours(user_file) and not job.is_ours(f"photos/{user_file}")


def test_five_problems_local(tmp_path: Path) -> None:
    with world_readable_dir() as base:
        src, dst = base / "src", base / "dst"
        for root in (src, dst):
            root.mkdir(mode=0o755)
            write_tree(root, BASE_FILES, owner=None)
        damage(src, dst, owner=None)
        with effective_uid(NOBODY):
            v = run(verify_local(src, dst, tier=Tier.FULL))
    check_five(v, tmp_path)
    assert v.totals.content_compared == 6  # corrupt + 5 identical same/ and weird/ files
    assert v.totals.files_read_src == 6 and v.totals.files_read_dst == 7  # locked: dst only


def make_identical(tmp_path: Path, files: dict[str, bytes]) -> tuple[Path, Path]:
    src, dst = tmp_path / "src", tmp_path / "dst"
    for root in (src, dst):
        root.mkdir()
        write_tree(root, files, owner=None)
    return src, dst


def test_identical_trees_match_and_exit_0(tmp_path: Path) -> None:
    src, dst = make_identical(tmp_path, BASE_FILES)
    (src / "empty-dir").mkdir()
    (dst / "empty-dir").mkdir()
    v = run(verify_local(src, dst, tier=Tier.FULL))
    assert v.matched and verification_exit_code(v.outcome) == 0 and v.results == ()
    assert v.totals.identical == v.totals.files + v.totals.dirs
    assert v.totals.files == len(BASE_FILES) and v.totals.dirs == 5
    assert v.totals.bytes_read_src == sum(map(len, BASE_FILES.values()))
    assert "Everything matched." in terminal_summary(v)


def test_quick_tier_compares_sizes_only(tmp_path: Path) -> None:
    src, dst = make_identical(tmp_path, BASE_FILES)
    damage(src, dst, owner=None)
    (src / "secret/locked.txt").chmod(0o644)
    v = run(verify_local(src, dst, tier=Tier.QUICK))
    # the corrupt byte keeps the size: the quick tier cannot see it
    assert categories(v) == {
        "docs/truncated.txt": Category.DIFFERS,
        "deleted.dat": Category.ONLY_SRC,
        "extra.txt": Category.ONLY_DST,
    }
    assert v.totals.files_read_src == v.totals.files_read_dst == 0
    assert v.totals.size_only == len(BASE_FILES) - 2
    assert verification_exit_code(v.outcome) == 4
    assert all(r.how_src in (How.LISTING, None) for r in v.results)


def test_sample_tier_is_seeded_and_recorded(tmp_path: Path) -> None:
    files = {f"f{i:03d}.txt": f"content {i}".encode() for i in range(200)}
    src, dst = make_identical(tmp_path, files)
    v1 = run(verify_local(src, dst, tier=Tier.SAMPLE, sample_pct=25, seed=1234))
    v2 = run(verify_local(src, dst, tier=Tier.SAMPLE, sample_pct=25, seed=1234))
    expected = sum(in_sample(p, seed=1234, pct=25) for p in files)
    assert 20 < expected < 80
    assert v1.totals.content_compared == v2.totals.content_compared == expected
    assert v1.totals.size_only == 200 - expected
    assert v1.seed == 1234 and to_json(v1)["seed"] == 1234 and to_json(v1)["sample_pct"] == 25
    # a corrupt file is caught exactly when it is in the sample
    inside = next(p for p in sorted(files) if in_sample(p, seed=1234, pct=25))
    outside = next(p for p in sorted(files) if not in_sample(p, seed=1234, pct=25))
    for name in (inside, outside):
        data = bytearray((dst / name).read_bytes())
        data[0] ^= 1
        (dst / name).write_bytes(bytes(data))
    v3 = run(verify_local(src, dst, tier=Tier.SAMPLE, sample_pct=25, seed=1234))
    assert categories(v3) == {inside: Category.DIFFERS}
    # no seed given: one is drawn and recorded
    v4 = run(verify_local(src, dst, tier=Tier.SAMPLE, sample_pct=10))
    assert isinstance(v4.seed, int)
    assert "seed" in terminal_summary(v4)


def test_arguments_are_checked(tmp_path: Path) -> None:
    src, dst = make_identical(tmp_path, {"a": b"a"})
    with pytest.raises(ValueError, match="percentage"):
        run(verify_local(src, dst, tier=Tier.SAMPLE))
    with pytest.raises(ValueError, match="sample tier only"):
        run(verify_local(src, dst, tier=Tier.FULL, seed=3))


def test_directories_temp_files_symlinks_and_exclusions(tmp_path: Path) -> None:
    src, dst = make_identical(tmp_path, {"a/keep.txt": b"k", "logs/x.log": b"x"})
    (src / "only-src-dir/sub").mkdir(parents=True)
    (dst / "only-dst-dir").mkdir()
    (src / "clash").mkdir()
    (dst / "clash").write_bytes(b"a file where the source has a folder")
    temps = TempNames(TempNames.new_key())
    (dst / temps.for_path("a/keep.txt")).write_bytes(b"half a copy")  # the job's: ignored
    (dst / "a/.fsmove.keep.txt.part").write_bytes(b"a user's file")  # compared
    (src / ".fsmove.new.bin.part").write_bytes(b"a user's file too")
    (src / "link").symlink_to("a/keep.txt")
    (dst / "logs/y.log").write_bytes(b"new log")
    rules = TreeRules(filters=Filters(exclude=("logs",)), temps=temps)
    v = run(verify_local(src, dst, tier=Tier.FULL, rules=rules))
    assert categories(v) == {
        "only-src-dir": Category.ONLY_SRC,
        "only-src-dir/sub": Category.ONLY_SRC,
        "only-dst-dir": Category.ONLY_DST,
        "clash": Category.DIFFERS,
        "a/.fsmove.keep.txt.part": Category.ONLY_DST,
        ".fsmove.new.bin.part": Category.ONLY_SRC,
    }
    clash = next(r for r in v.results if r.path == "clash")
    assert clash.reason == "a dir in the source, a file in the destination"
    assert [(s.side.value, s.path) for s in v.skipped] == [("source", "link")]
    assert to_json(v)["skipped"] == [
        {"side": "source", "path": "link", "reason": "symlink: not compared"}
    ]


def test_journal_digest_stands_in_for_the_source(tmp_path: Path) -> None:
    files = {"a.txt": b"alpha", "b.txt": b"bravo", "c.txt": b"charlie"}
    src, dst = make_identical(tmp_path, files)
    (dst / "c.txt").write_bytes(b"CHARLIE")
    journal = {"a.txt": digest_bytes(b"alpha"), "c.txt": digest_bytes(b"charlie")}
    asked: list[Entry] = []

    def known(entry: Entry) -> str | None:
        asked.append(entry)
        return journal.get(entry.path)

    async def go() -> tuple[Verification, CountingStore, CountingStore]:
        s_store = CountingStore(LocalStore(parse_endpoint(str(src))))
        d_store = CountingStore(LocalStore(parse_endpoint(str(dst))))
        s, d = SessionPool(s_store, max_sessions=2), SessionPool(d_store, max_sessions=2)
        v = await verify_trees(src=s, dst=d, tier=Tier.FULL, known_source_digest=known)
        return v, s_store, d_store

    v, s_store, d_store = run(go())
    assert s_store.reads == Counter({"b.txt": 1})  # a and c came from the journal
    assert d_store.reads == Counter({"a.txt": 1, "b.txt": 1, "c.txt": 1})
    assert {e.path for e in asked} == set(files)
    assert all(e.kind is EntryKind.FILE and e.mtime is not None for e in asked)
    assert categories(v) == {"c.txt": Category.DIFFERS}
    c = v.results[0]
    assert (c.how_src, c.how_dst) == (How.JOURNAL, How.READ)
    assert v.totals.src_from_journal == 2
    assert "2 digests from the copy journal" in terminal_summary(v)


def test_each_file_read_once_per_side_2000_files(tmp_path: Path) -> None:
    files = {f"d{i % 20:02d}/f{i:04d}.txt": f"small file {i}\n".encode() * 3 for i in range(2000)}
    src, dst = make_identical(tmp_path, files)
    events: Counter[str] = Counter()

    def on_progress(event: ProgressEvent) -> None:
        events[type(event).__name__] += 1
        if isinstance(event, ListingFinished):
            assert event.entries == 2020

    async def go() -> tuple[Verification, CountingStore, CountingStore]:
        s_store = CountingStore(LocalStore(parse_endpoint(str(src))))
        d_store = CountingStore(LocalStore(parse_endpoint(str(dst))))
        s, d = SessionPool(s_store, max_sessions=4), SessionPool(d_store, max_sessions=4)
        v = await verify_trees(src=s, dst=d, tier=Tier.FULL,
                               limits=Limits(files_verified_at_once=8),
                               on_progress=on_progress)
        return v, s_store, d_store

    v, s_store, d_store = run(go())
    assert v.matched and v.totals.content_compared == 2000
    for store in (s_store, d_store):
        assert set(store.reads) == set(files)
        assert set(store.reads.values()) == {1}
    assert events[PathChecked.__name__] == 2020
    assert events[ListingFinished.__name__] == 2
    assert events[BytesHashed.__name__] == 4000


def test_a_dropped_connection_is_retried(tmp_path: Path) -> None:
    src, dst = make_identical(tmp_path, {"a.txt": b"alpha", "b.txt": b"bravo"})

    async def go() -> tuple[Verification, CountingStore]:
        d_store = CountingStore(LocalStore(parse_endpoint(str(dst))), fail_once={"a.txt"})
        s, d = local_pool(src), SessionPool(d_store, max_sessions=2)
        return await verify_trees(src=s, dst=d, tier=Tier.FULL), d_store

    v, d_store = run(go())
    assert v.matched
    assert d_store.reads == Counter({"a.txt": 2, "b.txt": 1})


def test_exit_code_mismatch_wins_over_unreadable(tmp_path: Path) -> None:
    with world_readable_dir() as base:
        src, dst = base / "src", base / "dst"
        for root in (src, dst):
            root.mkdir(mode=0o755)
            write_tree(root, {"a.txt": b"alpha", "b.txt": b"bravo"}, owner=None)
        (src / "a.txt").chmod(0)
        with effective_uid(NOBODY):
            only_unreadable = run(verify_local(src, dst, tier=Tier.FULL))
        (dst / "c.txt").write_bytes(b"extra")
        os.chmod(dst / "c.txt", 0o644)
        with effective_uid(NOBODY):
            both = run(verify_local(src, dst, tier=Tier.FULL))
    assert verification_exit_code(only_unreadable.outcome) == 3
    assert to_json(only_unreadable)["verdict"] == "unreadable"
    assert "could not be read" in terminal_summary(only_unreadable)
    assert verification_exit_code(both.outcome) == 4


def test_unlistable_directory_makes_its_subtree_unreadable(tmp_path: Path) -> None:
    with world_readable_dir() as base:
        src, dst = base / "src", base / "dst"
        files = {"pub/a.txt": b"a", "private/x.txt": b"x", "private/deep/y.txt": b"y"}
        for root in (src, dst):
            root.mkdir(mode=0o755)
            write_tree(root, files, owner=None)
        (src / "private").chmod(0)
        with effective_uid(NOBODY):
            v = run(verify_local(src, dst, tier=Tier.FULL))
        (src / "private").chmod(0o755)
    assert categories(v) == {
        "private": Category.UNREADABLE,
        "private/x.txt": Category.UNREADABLE,
        "private/deep": Category.UNREADABLE,
        "private/deep/y.txt": Category.UNREADABLE,
    }
    assert verification_exit_code(v.outcome) == 3
    reasons = {r.path: r.reason for r in v.results}
    assert reasons["private"].startswith("source: could not list directory")
    assert reasons["private/deep/y.txt"].startswith("source: could not list private")


def test_terminal_summary_escapes_control_characters(tmp_path: Path) -> None:
    src, dst = make_identical(tmp_path, {})
    (dst / "evil\x1b[31mred.txt").write_bytes(b"x")
    v = run(verify_local(src, dst, tier=Tier.QUICK))
    text = terminal_summary(v)
    assert "\x1b" not in text and "evil\\x1b[31mred.txt" in text
    assert text.splitlines()[0].startswith("MISMATCH")


def test_summary_lists_only_the_first_problems(tmp_path: Path) -> None:
    src, dst = make_identical(tmp_path, {f"f{i}": b"x" for i in range(30)})
    for i in range(30):
        (dst / f"f{i}").unlink()
    v = run(verify_local(src, dst, tier=Tier.QUICK))
    text = terminal_summary(v, max_problems=5)
    assert text.count("\n+ f") == 5 and "... and 25 more" in text


def test_report_escapes_hostile_paths(tmp_path: Path) -> None:
    src, dst = make_identical(tmp_path, {})
    write_tree(src, {TRICKY: b"x", "</script><script>alert(1)</script>": b"y"}, owner=None)
    v = run(verify_local(src, dst, tier=Tier.QUICK))
    page = render_html(v)
    assert "<script>alert(1)" not in page
    assert page.count("</script>") == 2  # the data block and the code block, nothing more
    assert "&lt;/script&gt;&lt;script&gt;alert(1)&lt;/script&gt;" in page  # noscript rows
    data = json.loads(json.dumps(to_json(v), ensure_ascii=False))
    assert {p["path"] for p in data["paths"]} >= {TRICKY}
    assert stat.S_ISDIR(os.stat(src / "weird").st_mode)


# ---------------------------------------------------------------------------------------
# Real servers: vsftpd (FTP) and OpenSSH (SFTP), both running as a non-root account, so
# a mode-000 source file really cannot be read.
# ---------------------------------------------------------------------------------------

SERVERS = ("vsftpd_server", "sshd_server")


def server_pair(
    request: pytest.FixtureRequest,
    fresh_subdir: Callable[[RunningServer], RunningServer],
    fixture: str,
    files: dict[str, bytes],
) -> tuple[RunningServer, RunningServer]:
    server: RunningServer = request.getfixturevalue(fixture)
    src, dst = fresh_subdir(server), fresh_subdir(server)
    for side in (src, dst):
        make_tree(side, files)
    return src, dst


async def verify_servers(
    src: RunningServer, dst: RunningServer, *, src_sessions: int = 3, **kw: Any
) -> tuple[Verification, CountingStore, CountingStore]:
    s_store, d_store = CountingStore(store_for(src)), CountingStore(store_for(dst))
    s = SessionPool(s_store, max_sessions=src_sessions)
    d = SessionPool(d_store, max_sessions=3)
    try:
        v = await verify_trees(src=s, dst=d, **kw)
    finally:
        await s.aclose()
        await d.aclose()
    return v, s_store, d_store


@pytest.mark.interop
@pytest.mark.parametrize("fixture", SERVERS)
def test_five_problems_over_server(
    fixture: str,
    request: pytest.FixtureRequest,
    fresh_subdir: Callable[[RunningServer], RunningServer],
    tmp_path: Path,
) -> None:
    src, dst = server_pair(request, fresh_subdir, fixture, BASE_FILES)
    damage(src.root, dst.root, owner=dst.owner)
    # one source session: listing and reading share it (FTP carries one op at a time)
    v, s_store, d_store = run(
        verify_servers(src, dst, tier=Tier.FULL, limits=Limits(files_verified_at_once=4),
                       src_sessions=1)
    )
    check_five(v, tmp_path)
    assert src.scheme in v.src_display and src.password not in v.src_display
    assert src.password not in (tmp_path / "report.html").read_text(encoding="utf-8")
    assert src.password not in (tmp_path / "report.json").read_text(encoding="utf-8")
    # the same-size files were read once on each side; the locked one failed for good
    same_size = {p for p in BASE_FILES if p not in ("docs/truncated.txt", "deleted.dat")}
    assert set(d_store.reads) == same_size and set(d_store.reads.values()) == {1}
    assert set(s_store.reads) == same_size and set(s_store.reads.values()) == {1}


@pytest.mark.interop
def test_2000_files_read_once_per_side_over_sftp(
    request: pytest.FixtureRequest,
    fresh_subdir: Callable[[RunningServer], RunningServer],
) -> None:
    """SFTP pipelines many reads on one session: the case where a read could be lost or
    doubled. (Local stores: ``test_each_file_read_once_per_side_2000_files``.)"""
    files = {f"d{i % 10}/f{i:04d}.txt": f"small {i}\n".encode() for i in range(2000)}
    src, dst = server_pair(request, fresh_subdir, "sshd_server", files)
    v, s_store, d_store = run(verify_servers(
        src, dst, tier=Tier.FULL, limits=Limits(files_verified_at_once=8)))
    assert v.matched and v.totals.content_compared == 2000, terminal_summary(v)
    for store in (s_store, d_store):
        assert set(store.reads) == set(files) and set(store.reads.values()) == {1}


@pytest.mark.interop
def test_refused_login_fails_the_run(
    vsftpd_server: RunningServer, fresh_subdir: Callable[[RunningServer], RunningServer]
) -> None:
    src = fresh_subdir(vsftpd_server)
    wrong = dataclasses.replace(src, password=src.password + "-wrong")
    with pytest.raises(AuthError) as caught:
        run(verify_servers(src, wrong, tier=Tier.QUICK))
    assert wrong.password not in str(caught.value)


def test_a_missing_root_fails_the_run(tmp_path: Path) -> None:
    src, _ = make_identical(tmp_path, {"a.txt": b"a"})
    with pytest.raises(NotFoundError, match=r"destination folder .* does not exist"):
        run(verify_local(src, tmp_path / "nowhere", tier=Tier.QUICK))
    with pytest.raises(PermanentError, match=r"source .*a\.txt is a file, not a folder: .*"
                       r"--include '/a\.txt'"):
        run(verify_local(src / "a.txt", src, tier=Tier.QUICK))


def test_a_full_check_that_had_nothing_to_read_says_why(tmp_path: Path) -> None:
    """Before session 32 it said "tier: full content" and "compared listings and
    sizes, read no content", as if it had been a quick check."""
    from typer.testing import CliRunner

    from fsmove.cli import app

    (tmp_path / "src").mkdir()
    (tmp_path / "dst").mkdir()
    (tmp_path / "src" / "a.txt").write_bytes(b"a")
    (tmp_path / "dst" / "a.txt").write_bytes(b"ab")
    result = CliRunner().invoke(app, ["verify", str(tmp_path / "src"), str(tmp_path / "dst")])
    assert result.exit_code == 4, result.output
    assert "no file was on both sides at the same size" in result.output
    assert "listings and sizes" not in result.output


def test_another_jobs_journal_vouches_for_nothing(tmp_path: Path) -> None:
    """``copy A B --journal J`` then ``verify A2 B --journal J``, A2's file at A's size
    and time with other bytes: before session 34 J's digest stood in for A2's file,
    "Everything matched". Now J is not used (a warning), both sides are read."""
    import subprocess
    import sys

    a, a2, b, journal = (tmp_path / n for n in ("a", "a2", "b", "j.db"))
    a.mkdir()
    a2.mkdir()
    (a / "f.txt").write_bytes(b"version one")
    (a2 / "f.txt").write_bytes(b"version two")
    for f in (a / "f.txt", a2 / "f.txt"):  # changed long before the copy: not "racy"
        os.utime(f, (1_600_000_000, 1_600_000_000))
    env = {**os.environ, "XDG_STATE_HOME": str(tmp_path / "state")}

    def cli(*args: str) -> subprocess.CompletedProcess[str]:
        return subprocess.run([sys.executable, "-m", "fsmove.cli", *args, "--journal",
                               str(journal)], capture_output=True, text=True, env=env,
                              timeout=120, check=False)

    copied = cli("copy", str(a), str(b), "-q")
    assert copied.returncode == 0, copied.stderr
    same_pair = cli("verify", str(a), str(b))
    assert same_pair.returncode == 0 and "digests from the copy journal" in same_pair.stdout
    other = cli("verify", str(a2), str(b))
    assert other.returncode == 4, other.stdout + other.stderr
    assert "another job's" in other.stderr and "not used" in other.stderr
    assert "digests from the copy journal" not in other.stdout


def test_a_file_rewritten_in_the_second_of_its_copy_is_read_again(tmp_path: Path) -> None:
    """A server keeps whole seconds: a file rewritten at the same size within the
    second of its copy keeps its size and time. Before session 34 verify took the
    journal's digest for it: "Everything matched" over different bytes. A file changed
    within ``RACY_WINDOW`` of its copy is read on both sides. (Simulated on a local
    disk: the old time put back to the nanosecond.)"""
    import subprocess
    import sys

    src, dst, journal = tmp_path / "src", tmp_path / "dst", tmp_path / "j.db"
    src.mkdir()
    (src / "fresh.txt").write_bytes(b"first version")
    (src / "old.txt").write_bytes(b"changed long ago")
    os.utime(src / "old.txt", (1_600_000_000, 1_600_000_000))
    # A server whose times are hours ahead (a wrong time zone): not "racy" (a window,
    # not "after": every file was read again before, the journal never used).
    (src / "ahead.txt").write_bytes(b"from a server in the future")
    ahead = int(time.time()) + 7200
    os.utime(src / "ahead.txt", (ahead, ahead))
    env = {**os.environ, "XDG_STATE_HOME": str(tmp_path / "state")}

    def cli(*args: str) -> subprocess.CompletedProcess[str]:
        return subprocess.run([sys.executable, "-m", "fsmove.cli", *args, "--journal",
                               str(journal)], capture_output=True, text=True, env=env,
                              timeout=120, check=False)

    assert cli("copy", str(src), str(dst), "-q").returncode == 0
    times = os.stat(src / "fresh.txt").st_mtime_ns
    (src / "fresh.txt").write_bytes(b"other version")  # same size
    os.utime(src / "fresh.txt", ns=(times, times))
    checked = cli("verify", str(src), str(dst))
    assert checked.returncode == 4, checked.stdout + checked.stderr
    assert "fresh.txt" in checked.stdout
    assert "2 digests from the copy journal" in checked.stdout  # old.txt's, ahead.txt's
