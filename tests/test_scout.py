"""The scout (``transfers/scout.py``): the source listed while the destination is still
surveyed, each folder's listing handed to the march instead of listed again. Real local
stores; the wrappers only gate or count listings (``transfers/decorators.py``); no test
waits on time (a gate that is never opened ends the test at ``GATE_LIMIT`` as a
failure)."""

from __future__ import annotations

import asyncio
import contextlib
from collections import Counter
from collections.abc import AsyncIterator
from pathlib import Path

from fsmove.transfers.backend import Capabilities
from fsmove.transfers.copy import CopyEngine, CopyOptions
from fsmove.transfers.decorators import StoreDecorator
from fsmove.transfers.endpoint import parse_endpoint
from fsmove.transfers.local import LocalStore
from fsmove.transfers.march import march
from fsmove.transfers.plan import FileRules
from fsmove.transfers.policy import NO_RETRIES
from fsmove.transfers.pool import SessionPool
from fsmove.transfers.scout import SourceScout
from fsmove.transfers.survey import open_sides
from fsmove.transfers.tree import (
    PROBE_PREFIX,
    TreeRules,
    _probe_token_check,
    is_own_probe_file,
    is_probe_leftover,
    probe_scratch_name,
)
from tests.copy_harness import put_files, tree_digests
from tests.test_march import GATE_LIMIT, MTIME, ListingHook

#: 3 x 3 x 2 folders below the root, two files in each folder at every level.
TREE = {
    f"{path}/f{k}.txt": f"{path}/{k}".encode()
    for path in [f"a{i}" for i in range(3)]
    + [f"a{i}/b{j}" for i in range(3) for j in range(3)]
    + [f"a{i}/b{j}/c{m}" for i in range(3) for j in range(3) for m in range(2)]
    for k in range(2)
}
FOLDERS = {""} | {p.rsplit("/", 1)[0] for p in TREE} | {p.split("/", 1)[0] for p in TREE} | {
    "/".join(p.split("/")[:2]) for p in TREE if p.count("/") >= 2}


def _no_gate(path: str) -> AsyncIterator[None]:
    async def nothing() -> AsyncIterator[None]:
        return
        yield

    return nothing()


class SlowSurvey(StoreDecorator):
    """A local destination whose capabilities (an FTP store's write probe) come only
    once ``ready`` is set."""

    def __init__(self, root: Path, ready: asyncio.Event) -> None:
        super().__init__(LocalStore(parse_endpoint(str(root))))
        self.ready = ready
        self.waited = False

    async def capabilities(self) -> Capabilities:
        self.waited = await _gate(self.ready)
        return await self.inner.capabilities()


async def _gate(event: asyncio.Event) -> bool:
    """Wait for ``event`` (``GATE_LIMIT`` at most: only code under test that is wrong
    leaves it unset); whether it was set."""
    with contextlib.suppress(TimeoutError):
        await asyncio.wait_for(event.wait(), GATE_LIMIT)
    return event.is_set()


def test_the_source_is_listed_during_the_survey_and_once(tmp_path: Path) -> None:
    """The destination's survey waits until every source folder was listed: the scout
    listed all of them meanwhile (the march could not have: it starts after the
    survey), the march took each listing instead of listing it again, and the copy is
    whole."""
    src, dst = tmp_path / "src", tmp_path / "dst"
    put_files(None, src, TREE, mtime=MTIME)
    dst.mkdir()
    assert len(FOLDERS) == 1 + 3 + 9 + 18

    async def go() -> None:
        ready = asyncio.Event()
        hook = ListingHook(src, _no_gate)
        original = hook.listed

        class Listed(list[str]):
            def append(self, path: str) -> None:
                super().append(path)
                if set(self) >= FOLDERS:
                    ready.set()

        hook.listed = Listed(original)
        slow = SlowSurvey(dst, ready)
        pools = [SessionPool(hook, max_sessions=4), SessionPool(slow, max_sessions=4)]
        try:
            summary = await CopyEngine(src=pools[0], dst=pools[1], journal=None,
                                       options=CopyOptions()).run()
        finally:
            await asyncio.gather(*(p.aclose() for p in pools))
        assert slow.waited, "the survey was never released: the scout did not list"
        assert summary.status == "ok" and summary.files_copied == len(TREE)
        assert Counter(hook.listed) == Counter(dict.fromkeys(FOLDERS, 1))

    asyncio.run(go())
    assert tree_digests(dst) == tree_digests(src)


def test_a_quick_survey_leaves_the_rest_to_the_march_each_folder_once(
    tmp_path: Path,
) -> None:
    """A survey that ends at once (local to local): the scout is stopped early, the
    march lists what it did not, and no folder is listed twice."""
    src, dst = tmp_path / "src", tmp_path / "dst"
    put_files(None, src, TREE, mtime=MTIME)

    async def go() -> None:
        hook = ListingHook(src, _no_gate)
        pools = [SessionPool(hook, max_sessions=4),
                 SessionPool(LocalStore(parse_endpoint(str(dst))), max_sessions=4)]
        try:
            summary = await CopyEngine(src=pools[0], dst=pools[1], journal=None,
                                       options=CopyOptions()).run()
        finally:
            await asyncio.gather(*(p.aclose() for p in pools))
        assert summary.status == "ok" and summary.files_copied == len(TREE)
        assert Counter(hook.listed) == Counter(dict.fromkeys(FOLDERS, 1))

    asyncio.run(go())
    assert tree_digests(dst) == tree_digests(src)


def test_the_scout_holds_a_bounded_number_of_entries(tmp_path: Path) -> None:
    """Nobody takes its listings: the scout stops once it holds ``max_entries``; a
    folder it did not list is not handed out (the march lists it)."""
    src = tmp_path / "src"
    put_files(None, src, TREE, mtime=MTIME)

    async def go() -> None:
        pool = SessionPool(LocalStore(parse_endpoint(str(src))), max_sessions=2)
        try:
            scout = SourceScout(pool, skip=TreeRules().skips, retry=NO_RETRIES,
                                at_once=1, max_entries=10)
            await asyncio.wait_for(scout.run(), GATE_LIMIT)
            assert 1 < scout.listed < len(FOLDERS)
            taken = [p for p in sorted(FOLDERS) if scout.take(p) is not None]
            assert len(taken) == scout.listed
        finally:
            await pool.aclose()

    asyncio.run(go())


def test_a_listing_the_scout_abandoned_is_made_by_the_march(tmp_path: Path) -> None:
    """The scout is cancelled while it lists a folder: the march, handed that cancelled
    listing, lists the folder itself; every folder is decided."""
    src, dst = tmp_path / "src", tmp_path / "dst"
    put_files(None, src, TREE, mtime=MTIME)
    dst.mkdir()

    async def go() -> None:
        entered = asyncio.Event()
        release = asyncio.Event()
        held: list[str] = []

        async def on_list(path: str) -> AsyncIterator[None]:
            if path == "a0" and not held:
                held.append(path)
                entered.set()
                try:
                    await asyncio.wait_for(release.wait(), GATE_LIMIT)
                except TimeoutError:
                    pass
            return
            yield

        src_pool = SessionPool(ListingHook(src, on_list), max_sessions=4)
        dst_pool = SessionPool(LocalStore(parse_endpoint(str(dst))), max_sessions=4)
        try:
            scout = SourceScout(src_pool, skip=TreeRules().skips, retry=NO_RETRIES,
                                at_once=2)
            scouting = asyncio.ensure_future(scout.run())
            await asyncio.wait_for(entered.wait(), GATE_LIMIT)
            scouting.cancel()
            await asyncio.gather(scouting, return_exceptions=True)
            release.set()
            sides = await open_sides(src_pool, dst_pool, dry_run=True)
            rules = FileRules(sides=sides, src=src_pool, dst=dst_pool, journal=None,
                              checksum=False, preserve_mtime=True, compares_at_once=2)
            plans = [p async for p in march(
                src_pool, dst_pool, sides=sides, src_rules=TreeRules(), dst_rules=TreeRules(),
                rules=rules, listings_at_once=2, retry=NO_RETRIES,
                on_issue=lambda _issue: None, listed=scout.take)]
        finally:
            await asyncio.gather(src_pool.aclose(), dst_pool.aclose())
        assert {p.path for p in plans} == FOLDERS
        assert sum(len(p.to_copy) for p in plans) == len(TREE)

    asyncio.run(go())


class SlowDestination(ListingHook):
    """A local destination whose capabilities (an FTP store's write probe) come only
    once its root was listed: a survey that lists the root only after them never ends
    (``GATE_LIMIT``, then ``waited`` stays False)."""

    def __init__(self, root: Path) -> None:
        super().__init__(root, _no_gate)
        self.root_listed = asyncio.Event()
        self.waited = False

        class Listed(list[str]):
            def append(inner, path: str) -> None:
                super().append(path)
                if path == "":
                    self.root_listed.set()

        self.listed = Listed()

    async def capabilities(self) -> Capabilities:
        self.waited = await _gate(self.root_listed)
        return await self.inner.capabilities()


def _copy_into(dst_store: object, src: Path) -> object:
    async def go() -> object:
        pools = [SessionPool(LocalStore(parse_endpoint(str(src))), max_sessions=4),
                 SessionPool(dst_store, max_sessions=4)]  # type: ignore[arg-type]
        try:
            return await CopyEngine(src=pools[0], dst=pools[1], journal=None,
                                    options=CopyOptions(delete=True)).run()
        finally:
            await asyncio.gather(*(p.aclose() for p in pools))

    return asyncio.run(go())


def test_the_destination_root_is_listed_during_the_survey_and_once(tmp_path: Path) -> None:
    """The destination's capabilities wait for its root's listing: the survey listed
    the root meanwhile, the march took that listing (the root listed once), and its
    decisions came from it (a stale file deleted, an equal one skipped)."""
    src, dst = tmp_path / "src", tmp_path / "dst"
    put_files(None, src, TREE, mtime=MTIME)
    put_files(None, dst, {"a0/f0.txt": TREE["a0/f0.txt"], "stale.txt": b"old"}, mtime=MTIME)
    slow = SlowDestination(dst)
    summary = _copy_into(slow, src)
    assert slow.waited, "the survey waited for the probe before listing the root"
    assert summary.status == "ok"  # type: ignore[attr-defined]
    assert summary.files_copied == len(TREE) - 1  # type: ignore[attr-defined]
    assert summary.files_deleted == 1  # type: ignore[attr-defined]
    assert Counter(slow.listed)[""] == 1
    assert tree_digests(dst) == tree_digests(src)


def test_a_destination_root_the_run_made_is_not_listed(tmp_path: Path) -> None:
    """A first run into a root that does not exist: the copy makes it and never lists
    it (it is empty), and the copy is whole."""
    src, dst = tmp_path / "src", tmp_path / "new" / "dst"
    put_files(None, src, TREE, mtime=MTIME)
    hook = ListingHook(dst, _no_gate)
    summary = _copy_into(hook, src)
    assert summary.status == "ok"  # type: ignore[attr-defined]
    assert "" not in hook.listed
    assert tree_digests(dst) == tree_digests(src)


def test_the_root_listed_during_the_probe_leaves_the_probe_s_own_files(
    tmp_path: Path,
) -> None:
    """Scratch files of this process's probe (in use while the root is listed) are
    neither removed nor compared; a killed run's probe leftover is removed."""
    src, dst = tmp_path / "src", tmp_path / "dst"
    put_files(None, src, {"a.txt": b"a"}, mtime=MTIME)
    own = probe_scratch_name()
    token = "0123456789ab"
    leftover = f"{PROBE_PREFIX}{token}-{_probe_token_check(token)}"
    assert is_probe_leftover(leftover) and not is_own_probe_file(leftover)
    assert is_own_probe_file(own) and is_own_probe_file(own + ".b")
    put_files(None, dst, {own: b"01234567", leftover: b"01234567"}, mtime=MTIME)
    summary = _copy_into(LocalStore(parse_endpoint(str(dst))), src)
    assert summary.status == "ok"  # type: ignore[attr-defined]
    assert summary.files_deleted == 0  # type: ignore[attr-defined]
    assert sorted(p.name for p in dst.iterdir()) == sorted([own, "a.txt"])
