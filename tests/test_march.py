"""The march (``transfers/march.py``): both trees walked together, folder by folder, each
folder's files copied while other folders are still being listed, with bounded memory;
and the files' queue (``transfers/copy/schedule.py``). Real local stores; the wrappers
only gate or count listings (``transfers/decorators.py``)."""

from __future__ import annotations

import asyncio
import contextlib
import os
import time
from collections.abc import AsyncIterator, Awaitable, Callable
from pathlib import Path

import pytest

from fsmove.transfers import plan as plan_module
from fsmove.transfers.backend import (
    Entry,
    EntryKind,
    PermissionDeniedError,
    Session,
    TransientError,
)
from fsmove.transfers.copy import CopyEngine, CopyOptions
from fsmove.transfers.copy.schedule import TransferQueue
from fsmove.transfers.copy.transfer import FileTransfer
from fsmove.transfers.decorators import SessionDecorator, StoreDecorator
from fsmove.transfers.endpoint import parse_endpoint
from fsmove.transfers.events import Event, FileDone, FileStarted, Planned
from fsmove.transfers.local import LocalStore
from fsmove.transfers.march import march
from fsmove.transfers.plan import FileRules, FolderPlan, GrowingPlan, PlanTally
from fsmove.transfers.policy import NO_RETRIES
from fsmove.transfers.pool import SessionPool
from fsmove.transfers.survey import open_sides
from fsmove.transfers.tree import TreeRules
from fsmove.transfers.walk import FolderListing, walk
from tests.copy_harness import put_files, tree_digests

MTIME = 1_700_000_000
#: A bound for a listing held back by a test: only reached when the code under test is
#: wrong (it never paces a passing run).
GATE_LIMIT = 60.0


class _ListingSession(SessionDecorator):
    def __init__(self, inner: Session, hook: ListingHook) -> None:
        super().__init__(inner)
        self._hook = hook

    async def list(self, path: str) -> AsyncIterator[Entry]:  # type: ignore[override]
        async for _ in self._hook.on_list(path):
            pass
        async for e in self.inner.list(path):
            yield e
        self._hook.listed.append(path)


class ListingHook(StoreDecorator):
    """A local store whose every listing first runs ``on_list(path)``; ``listed``
    names the listings that ended."""

    def __init__(self, root: Path, on_list: Callable[[str], AsyncIterator[None]]) -> None:
        super().__init__(LocalStore(parse_endpoint(str(root))))
        self.on_list = on_list
        self.listed: list[str] = []

    def wrap(self, session: Session) -> Session:
        return _ListingSession(session, self)


def _pool(store: object) -> SessionPool:
    return SessionPool(store, max_sessions=4)  # type: ignore[arg-type]


def _local(root: Path) -> SessionPool:
    return _pool(LocalStore(parse_endpoint(str(root))))


async def _dry_march(src_pool: SessionPool, dst_pool: SessionPool) -> AsyncIterator[FolderPlan]:
    """The march of a dry run over two pools, two listings at once, no filters."""
    sides = await open_sides(src_pool, dst_pool, dry_run=True)
    rules = FileRules(sides=sides, src=src_pool, dst=dst_pool, journal=None,
                      checksum=False, preserve_mtime=True, compares_at_once=2)
    return march(src_pool, dst_pool, sides=sides, src_rules=TreeRules(),
                 dst_rules=TreeRules(), rules=rules, listings_at_once=2,
                 retry=NO_RETRIES, on_issue=lambda _issue: None)


def test_files_are_copied_while_the_walk_still_lists(tmp_path: Path) -> None:
    """The listing of one folder waits until a file of another folder was copied: the
    copy must not wait for the whole walk (before the march: both trees were listed
    whole first, so this listing waited for a copy that could not start)."""
    src, dst = tmp_path / "src", tmp_path / "dst"
    put_files(None, src, {"a/one.txt": b"one", "a/two.txt": b"two", "zz/late.txt": b"late"},
              mtime=MTIME)
    copied = asyncio.Event()
    seen_before_late_listing: list[bool] = []

    async def on_list(path: str) -> AsyncIterator[None]:
        if path == "zz":
            try:
                await asyncio.wait_for(copied.wait(), GATE_LIMIT)
            except TimeoutError:
                pass
            seen_before_late_listing.append(copied.is_set())
        return
        yield

    events: list[Event] = []

    def subscriber(event: Event) -> None:
        events.append(event)
        if isinstance(event, FileDone):
            copied.set()

    async def go() -> None:
        pools = [_pool(ListingHook(src, on_list)), _local(dst)]
        try:
            summary = await CopyEngine(src=pools[0], dst=pools[1], journal=None,
                                       options=CopyOptions(), subscribers=[subscriber]).run()
        finally:
            await asyncio.gather(*(p.aclose() for p in pools))
        assert summary.status == "ok" and summary.files_copied == 3

    asyncio.run(go())
    assert seen_before_late_listing == [True]
    assert tree_digests(dst) == tree_digests(src)
    # The growing plan: running totals first (before any file starts), the whole plan
    # exactly once, last.
    plans = [e for e in events if isinstance(e, Planned)]
    first_start = next(i for i, e in enumerate(events) if isinstance(e, FileStarted))
    assert events.index(plans[0]) < first_start
    assert [p.complete for p in plans].count(True) == 1 and plans[-1].complete
    assert (plans[-1].files_total, plans[-1].files_to_copy, plans[-1].dirs_to_create) == (3, 3, 2)


def test_the_march_stops_listing_while_its_folders_are_not_taken(tmp_path: Path) -> None:
    """Bounded memory: a consumer that takes the root folder and then nothing more
    leaves the march with at most ``2 x listings_at_once`` folders decided and waiting;
    the other 200 folders are never listed meanwhile."""
    src, dst = tmp_path / "src", tmp_path / "dst"
    put_files(None, src, {f"d{i:03d}/f.txt": b"x" for i in range(200)}, mtime=MTIME)
    dst.mkdir()
    calls: list[str] = []

    async def on_list(path: str) -> AsyncIterator[None]:
        calls.append(path)
        return
        yield

    hook = ListingHook(src, on_list)
    done = hook.listed

    async def go() -> None:
        src_pool, dst_pool = _pool(hook), _local(dst)
        try:
            walk = await _dry_march(src_pool, dst_pool)
            root = await anext(walk)
            assert root.path == "" and root.files == 0
            # Root, two folders waiting in the march's queue, two more decided by its
            # two workers (each then waits for room): five listings in all.
            for _ in range(int(GATE_LIMIT * 100)):
                if len(done) >= 5:
                    break
                await asyncio.sleep(0.01)  # polling a state (listings run in threads)
            for _ in range(100):
                await asyncio.sleep(0)  # let any worker that is not held go on
            assert len(done) == 5 and len(calls) == 5, calls
            rest = [f async for f in walk]
            assert len(rest) == 200 and len(calls) == 201
            await walk.aclose()
        finally:
            await asyncio.gather(src_pool.aclose(), dst_pool.aclose())

    asyncio.run(go())


def test_a_consumer_that_leaves_early_does_not_hang_the_march(tmp_path: Path) -> None:
    """The consumer stops while the march's queue is full and its workers wait on it (a
    copy whose destination refused a folder): closing the march must end at once. It
    once hung ``fsmove copy`` for good: the cancelled producer waited to put the cancel
    on the full queue nobody read any more."""
    src, dst = tmp_path / "src", tmp_path / "dst"
    put_files(None, src, {f"d{i:03d}/f.txt": b"x" for i in range(20)}, mtime=MTIME)
    dst.mkdir()

    async def on_list(path: str) -> AsyncIterator[None]:
        return
        yield

    hook = ListingHook(src, on_list)

    async def go() -> None:
        src_pool, dst_pool = _pool(hook), _local(dst)
        try:
            walk = await _dry_march(src_pool, dst_pool)
            await anext(walk)
            for _ in range(int(GATE_LIMIT * 100)):  # the queue full, both workers held
                if len(hook.listed) >= 5:
                    break
                await asyncio.sleep(0.01)  # polling a state (listings run in threads)
            for _ in range(100):
                await asyncio.sleep(0)
            assert len(hook.listed) == 5
            # A regression fails here (or at the suite's timeout), it never passes.
            await asyncio.wait_for(walk.aclose(), GATE_LIMIT)
        finally:
            await asyncio.gather(src_pool.aclose(), dst_pool.aclose())

    asyncio.run(go())


def test_a_consumer_that_leaves_early_does_not_hang_the_walk(tmp_path: Path) -> None:
    """The same for the plain walk (verify, the migration's catch-up): a folder of more
    entries than its queue holds, the consumer takes one and leaves."""
    src = tmp_path / "src"
    put_files(None, src, {f"f{i:05d}": b"" for i in range(4200)}, mtime=MTIME)

    async def on_list(path: str) -> AsyncIterator[None]:
        return
        yield

    hook = ListingHook(src, on_list)

    async def go() -> None:
        pool = _pool(hook)
        try:
            entries = walk(pool)
            await anext(entries)
            for _ in range(int(GATE_LIMIT * 100)):
                if hook.listed:
                    break
                await asyncio.sleep(0.01)  # polling a state (listings run in threads)
            for _ in range(100):
                await asyncio.sleep(0)  # the producer fills the queue and waits on it
            await asyncio.wait_for(entries.aclose(), GATE_LIMIT)
        finally:
            await pool.aclose()

    asyncio.run(go())


def test_delete_decisions_per_folder_keep_the_blind_rule(tmp_path: Path) -> None:
    """``--delete`` decided folder by folder: files only in the destination go, in
    folders the source lacks too; nothing at or below a source folder that could not be
    listed or a source symlink; the march never walks the destination below them."""
    src, dst = tmp_path / "src", tmp_path / "dst"
    put_files(None, src, {"keep/a.txt": b"a", "locked/secret.txt": b"s", "real/r.txt": b"r"},
              mtime=MTIME)
    os.symlink(src / "real", src / "link")
    put_files(None, dst, {"keep/a.txt": b"a", "keep/old.txt": b"old",
                          "locked/x.txt": b"kept", "locked/deeper/y.txt": b"kept",
                          "gone/deep/z.txt": b"deleted", "link/kept.txt": b"kept",
                          "real/r.txt": b"r"}, mtime=MTIME)
    dst_listed: list[str] = []

    async def refuse_locked(path: str) -> AsyncIterator[None]:
        if path == "locked":
            raise PermissionDeniedError("permission denied", path=path)
        return
        yield

    async def count(path: str) -> AsyncIterator[None]:
        dst_listed.append(path)
        return
        yield

    async def go() -> object:
        pools = [_pool(ListingHook(src, refuse_locked)), _pool(ListingHook(dst, count))]
        try:
            return await CopyEngine(src=pools[0], dst=pools[1], journal=None,
                                    options=CopyOptions(dry_run=True, delete=True)).plan()
        finally:
            await asyncio.gather(*(p.aclose() for p in pools))

    plan = asyncio.run(go())
    assert sorted(e.path for e in plan.to_delete) == ["gone/deep/z.txt", "keep/old.txt"]
    assert plan.to_copy == [] and sorted(e.path for e in plan.skipped) == ["keep/a.txt",
                                                                            "real/r.txt"]
    # "locked" is listed on both sides at once, its destination side then ignored.
    assert sorted(dst_listed) == ["", "gone", "gone/deep", "keep", "locked", "real"]


def test_a_listing_cut_by_the_network_is_tried_again(tmp_path: Path) -> None:
    """Listings run while files are copied, through the same dropped connections: a
    folder whose listing fails on a connection is listed again on a fresh session (it
    was reported unreadable, and the run partial, before)."""
    src, dst = tmp_path / "src", tmp_path / "dst"
    files = {"a/one.txt": b"one", "a/b/two.txt": b"two", "three.txt": b"three"}
    put_files(None, src, files, mtime=MTIME)
    cut: list[str] = []

    async def cut_once(path: str) -> AsyncIterator[None]:
        if path in ("a", "a/b") and path not in cut:
            cut.append(path)
            raise TransientError("connection reset by peer", path=path)
        return
        yield

    async def go() -> object:
        pools = [_pool(ListingHook(src, cut_once)), _pool(ListingHook(dst, cut_once))]
        try:
            return await CopyEngine(src=pools[0], dst=pools[1], journal=None,
                                    options=CopyOptions(retry_delay=0.0)).run()
        finally:
            await asyncio.gather(*(p.aclose() for p in pools))

    summary = asyncio.run(go())
    assert (summary.status, summary.files_copied, summary.failed) == ("ok", 3, [])  # type: ignore[attr-defined]
    assert sorted(cut) == ["a", "a/b"]
    assert tree_digests(dst) == tree_digests(src)


def _transfer(path: str, size: int) -> FileTransfer:
    return FileTransfer(Entry(path=path, kind=EntryKind.FILE, size=size, mtime=MTIME),
                        target=path, partial_at_destination=False)


def test_the_queue_holds_a_bounded_number_of_files_big_ones_first() -> None:
    async def go() -> None:
        q = TransferQueue(big_threshold=100, big_limit=1, max_waiting=3)
        for t in (_transfer("s1", 1), _transfer("b1", 100), _transfer("b2", 500)):
            assert await q.put(t)
        blocked = asyncio.ensure_future(q.put(_transfer("s2", 2)))
        for _ in range(20):
            await asyncio.sleep(0)
        assert not blocked.done()  # full: the march waits for room
        first = await q.take()
        assert first is not None and (first[0].path, first[1]) == ("b2", True)
        for _ in range(20):
            await asyncio.sleep(0)
        assert not blocked.done()  # room again only once half of it is free
        # One big file at a time while small ones wait; the big one once they are gone.
        second = await q.take()
        assert await blocked
        third = await q.take()
        assert [(x[0].path, x[1]) for x in (second, third) if x] == [("s1", False),
                                                                       ("s2", False)]
        q.finished(big=True)
        fourth = await q.take()
        assert fourth is not None and fourth[0].path == "b1"
        waiting = asyncio.ensure_future(q.take())
        for _ in range(20):
            await asyncio.sleep(0)
        assert not waiting.done()  # empty, not closed: a worker waits for the march
        q.close()
        assert await waiting is None

    asyncio.run(go())


def test_missing_destination_folders_are_made_while_the_source_lists_them(
    tmp_path: Path,
) -> None:
    """The source listing of ``a`` waits until the destination's ``a`` exists: the copy
    made it as soon as the root's decision showed it missing (``make_ahead``), not
    once a file below it started (which needs that very listing: the gate would then
    be released only by ``GATE_LIMIT``). Everything is copied, empty folder included."""
    src, dst = tmp_path / "src", tmp_path / "dst"
    put_files(None, src, {"a/b/one.txt": b"one", "a/two.txt": b"two", "top.txt": b"top"},
              mtime=MTIME)
    (src / "a" / "empty").mkdir()
    dst.mkdir()
    released: list[bool] = []

    async def on_list(path: str) -> AsyncIterator[None]:
        if path == "a":
            async def made() -> None:
                # The folder is made by the code under test (no event to wait on).
                while True:
                    if (dst / "a").is_dir():
                        return
                    await asyncio.sleep(0.01)

            try:
                await asyncio.wait_for(made(), GATE_LIMIT)
                released.append(True)
            except TimeoutError:
                released.append(False)
        return
        yield

    async def go() -> None:
        pools = [_pool(ListingHook(src, on_list)), _local(dst)]
        try:
            summary = await CopyEngine(src=pools[0], dst=pools[1], journal=None,
                                       options=CopyOptions()).run()
        finally:
            await asyncio.gather(*(p.aclose() for p in pools))
        assert summary.status == "ok" and summary.files_copied == 3

    asyncio.run(go())
    assert released == [True], "the destination folder waited for its first file"
    assert tree_digests(dst) == tree_digests(src)
    assert (dst / "a" / "empty").is_dir()


class _MidListing(SessionDecorator):
    """A session whose listing of ``hook.folder`` runs ``hook.midway()`` once
    ``hook.after`` entries have come out (it may raise: a connection cut midway)."""

    def __init__(self, inner: Session, hook: MidListingHook) -> None:
        super().__init__(inner)
        self._hook = hook

    async def list(self, path: str) -> AsyncIterator[Entry]:  # type: ignore[override]
        hook = self._hook
        hook.listings.append(path)
        count = 0
        async for e in self.inner.list(path):
            yield e
            count += 1
            if path == hook.folder and count == hook.after:
                await hook.midway()


class MidListingHook(StoreDecorator):
    def __init__(self, root: Path, *, folder: str, after: int,
                 midway: Callable[[], Awaitable[None]]) -> None:
        super().__init__(LocalStore(parse_endpoint(str(root))))
        self.folder = folder
        self.after = after
        self.midway = midway
        self.listings: list[str] = []

    def wrap(self, session: Session) -> Session:
        return _MidListing(session, self)


BIG = {f"big/f{i:04d}.txt": f"{i}".encode() for i in range(900)} | {"big/sub/deep.txt": b"d"}


def _copy_big(src_store: object, dst: Path, events: list[Event] | None = None,
              subscriber: Callable[[Event], None] | None = None) -> object:
    def record(event: Event) -> None:
        if events is not None:
            events.append(event)
        if subscriber is not None:
            subscriber(event)

    async def go() -> object:
        pools = [_pool(src_store), _local(dst)]
        try:
            return await CopyEngine(src=pools[0], dst=pools[1], journal=None,
                                    options=CopyOptions(retry_delay=0.0),
                                    subscribers=[record]).run()
        finally:
            await asyncio.gather(*(p.aclose() for p in pools))

    return asyncio.run(go())


class _UntilCopied:
    """A listing's ``midway`` held until a file below ``prefix`` was copied (``subscriber``
    hears the copy's events); ``resumed_after_a_copy`` says whether one was, each time."""

    def __init__(self, prefix: str) -> None:
        self.prefix = prefix
        self.copied = asyncio.Event()
        self.resumed_after_a_copy: list[bool] = []

    async def midway(self) -> None:
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(self.copied.wait(), GATE_LIMIT)
        self.resumed_after_a_copy.append(self.copied.is_set())

    def subscriber(self, event: Event) -> None:
        if isinstance(event, FileDone) and event.path.startswith(self.prefix):
            self.copied.set()


def test_a_big_folder_the_destination_lacks_is_copied_while_it_is_still_listed(
    tmp_path: Path,
) -> None:
    """First byte whatever the folder's size: the listing of a 900-file folder the
    destination lacks stops halfway until one of its files was copied, so a march that
    decided the folder only once listed whole would wait for ``GATE_LIMIT``. Each file
    is planned and copied once, the subfolder too, and the plan's totals are whole."""
    src, dst = tmp_path / "src", tmp_path / "dst"
    put_files(None, src, BIG, mtime=MTIME)
    gate = _UntilCopied("big/")
    events: list[Event] = []
    summary = _copy_big(MidListingHook(src, folder="big", after=450, midway=gate.midway),
                        dst, events, gate.subscriber)
    assert gate.resumed_after_a_copy == [True]
    assert (summary.status, summary.files_copied) == ("ok", len(BIG))  # type: ignore[attr-defined]
    started = [e.path for e in events if isinstance(e, FileStarted)]
    assert sorted(started) == sorted(BIG)  # each once
    plan = [e for e in events if isinstance(e, Planned)][-1]
    assert plan.complete and (plan.files_total, plan.files_to_copy) == (len(BIG), len(BIG))
    assert plan.dirs_to_create == 2  # big and big/sub, each counted once
    assert tree_digests(dst) == tree_digests(src)


def test_a_big_folder_s_listing_cut_midway_plans_no_file_twice(tmp_path: Path) -> None:
    """The listing of a folder the destination lacks is cut after 450 entries, whose
    files are decided (and copying) already; the listing tried again on a fresh session
    adds only what the cut one had not brought."""
    src, dst = tmp_path / "src", tmp_path / "dst"
    put_files(None, src, BIG, mtime=MTIME)
    cuts: list[int] = []

    async def midway() -> None:
        if not cuts:
            cuts.append(1)
            raise TransientError("connection reset by peer", path="big")

    events: list[Event] = []
    hook = MidListingHook(src, folder="big", after=450, midway=midway)
    summary = _copy_big(hook, dst, events)
    assert cuts == [1] and hook.listings.count("big") == 2
    assert (summary.status, summary.files_copied) == ("ok", len(BIG))  # type: ignore[attr-defined]
    started = [e.path for e in events if isinstance(e, FileStarted)]
    assert sorted(started) == sorted(BIG)
    plan = [e for e in events if isinstance(e, Planned)][-1]
    assert (plan.files_total, plan.files_to_copy, plan.dirs_to_create) == (
        len(BIG), len(BIG), 2)
    assert tree_digests(dst) == tree_digests(src)


def test_a_scout_listing_abandoned_midway_goes_on_without_repeating(tmp_path: Path) -> None:
    """The march reads a listing made ahead (the scout's) in parts; the scout is
    cancelled after 300 of 900 entries: the march lists the folder itself and hands on
    only the entries it had not, each file decided once."""
    src, dst = tmp_path / "src", tmp_path / "dst"
    put_files(None, src, BIG, mtime=MTIME)
    dst.mkdir()
    ahead = FolderListing()

    async def go() -> list[FolderPlan]:
        src_pool, dst_pool = _local(src), _local(dst)
        try:
            async with src_pool.session() as session:
                listed = sorted([e async for e in session.list("big")], key=lambda e: e.path)
            for e in listed[:300]:
                ahead.add(e)
            sides = await open_sides(src_pool, dst_pool, dry_run=True)
            rules = FileRules(sides=sides, src=src_pool, dst=dst_pool, journal=None,
                              checksum=False, preserve_mtime=True, compares_at_once=2)
            plans: list[FolderPlan] = []
            async for plan in march(
                    src_pool, dst_pool, sides=sides, src_rules=TreeRules(),
                    dst_rules=TreeRules(), rules=rules, listings_at_once=2,
                    retry=NO_RETRIES, on_issue=lambda _issue: None,
                    listed=lambda path: ahead if path == "big" else None):
                plans.append(plan)
                if plan.path == "big" and not ahead.done():
                    ahead.cancel()  # after its first part was decided
            return plans
        finally:
            await asyncio.gather(src_pool.aclose(), dst_pool.aclose())

    plans = asyncio.run(go())
    big = [p for p in plans if p.path == "big"]
    assert len(big) >= 2 and len(big[0].to_copy) == 300 and big[0].missing
    assert not any(p.missing for p in big[1:])
    decided = [e.path for p in plans for e in p.to_copy]
    assert sorted(decided) == sorted(BIG)
    assert {p.path for p in plans} == {"", "big", "big/sub"}


def test_a_folder_of_many_folders_has_them_copied_while_it_is_still_listed(
    tmp_path: Path,
) -> None:
    """A root of 600 folders (one file each) the destination lacks: its listing stops
    after 300 entries until a file below it was copied, so a march that walked the
    subfolders only once their parent was listed whole would wait for ``GATE_LIMIT``."""
    src, dst = tmp_path / "src", tmp_path / "dst"
    tree = {f"d{i:03d}/f.txt": f"{i}".encode() for i in range(600)}
    put_files(None, src, tree, mtime=MTIME)
    gate = _UntilCopied("")
    events: list[Event] = []
    summary = _copy_big(MidListingHook(src, folder="", after=300, midway=gate.midway),
                        dst, events, gate.subscriber)
    assert gate.resumed_after_a_copy == [True]
    assert (summary.status, summary.files_copied) == ("ok", len(tree))  # type: ignore[attr-defined]
    assert sorted(e.path for e in events if isinstance(e, FileStarted)) == sorted(tree)
    plan = [e for e in events if isinstance(e, Planned)][-1]
    assert (plan.files_total, plan.dirs_to_create) == (len(tree), len(tree))
    assert tree_digests(dst) == tree_digests(src)


def test_a_running_total_never_follows_the_stop_of_a_growing_plan(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """The loop too busy to run the totals' timer on time: the next change shows them at
    once, and the timer still due must not show them again after ``stop`` (a copy's
    ``--json`` had a running total after the whole plan, under load)."""
    monkeypatch.setattr(plan_module, "PLAN_EVENTS_EVERY", 0.01)
    shown: list[Event] = []

    async def go() -> None:
        tally = PlanTally()
        growing = GrowingPlan(tally, emit=shown.append)
        growing.changed()  # shown at once
        growing.changed()  # within the interval: a timer
        time.sleep(0.02)  # noqa: ASYNC251 -- the loop blocked past the timer (the point)
        growing.changed()  # past it: shown at once
        growing.stop()
        await asyncio.sleep(0.05)  # a timer left due would run now

    asyncio.run(go())
    assert len(shown) == 2
