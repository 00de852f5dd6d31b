"""The plan API (``CopyEngine.plan`` → ``transfers/plan.py``'s ``CopyPlan``), against
real local stores: what ``fsmove migrate --dry-run`` shows, without writing a thing."""

from __future__ import annotations

import asyncio
import os
from pathlib import Path

from fsmove.commands.migrate import _plan_copy
from fsmove.endpoint_access import ConnectOptions
from fsmove.transfers.copy import CopyEngine, CopyOptions
from fsmove.transfers.endpoint import parse_endpoint
from fsmove.transfers.events import Event, Planned
from fsmove.transfers.local import LocalStore
from fsmove.transfers.plan import CopyPlan
from fsmove.transfers.pool import SessionPool
from tests.copy_harness import put_files

MTIME = 1_700_000_000


def _put(root: Path, files: dict[str, bytes]) -> None:
    put_files(None, root, files, mtime=MTIME)


async def _engine_do(src: Path, dst: Path, options: CopyOptions,
                     events: list[Event]) -> tuple[CopyPlan, object]:
    """The plan of one engine, then a dry run of another (same trees)."""
    pools = [SessionPool(LocalStore(parse_endpoint(str(p))), max_sessions=4)
             for p in (src, dst, src, dst)]
    try:
        plan = await CopyEngine(src=pools[0], dst=pools[1], journal=None,
                                options=options).plan()
        summary = await CopyEngine(src=pools[2], dst=pools[3], journal=None, options=options,
                                   subscribers=[events.append]).run()
    finally:
        await asyncio.gather(*(p.aclose() for p in pools))
    return plan, summary


def test_plan_counts_what_a_copy_would_do_and_writes_nothing(tmp_path: Path) -> None:
    src, dst = tmp_path / "src", tmp_path / "dst"
    _put(src, {"same.txt": b"same", "new/a.bin": b"a" * 1000, "changed.txt": b"v2",
               "linked/real.txt": b"x"})
    os.symlink(src / "linked", src / "link")  # a symlink: never copied, never deleted below
    _put(dst, {"same.txt": b"same", "changed.txt": b"v1-longer", "gone.txt": b"old",
               "link/kept.txt": b"below a source symlink"})
    before = sorted(p.relative_to(dst) for p in dst.rglob("*"))
    events: list[Event] = []
    plan, _summary = asyncio.run(_engine_do(src, dst, CopyOptions(dry_run=True, delete=True),
                                            events))
    assert sorted(e.path for e in plan.to_copy) == ["changed.txt", "linked/real.txt",
                                                      "new/a.bin"]
    assert [e.path for e in plan.skipped] == ["same.txt"]
    assert [e.path for e in plan.to_delete] == ["gone.txt"]
    assert plan.files_total == 4 and plan.files_to_copy == 3 and plan.files_to_delete == 1
    assert plan.bytes_to_copy == 2 + 1 + 1000
    assert plan.missing_dirs == {"new", "linked"}
    # The dry run's own Planned event is the plan's, and the plan wrote nothing.
    assert [e for e in events if isinstance(e, Planned)] == [plan.event()]
    assert sorted(p.relative_to(dst) for p in dst.rglob("*")) == before


def test_plan_of_a_missing_destination_does_not_create_it(tmp_path: Path) -> None:
    src, dst = tmp_path / "src", tmp_path / "absent"
    _put(src, {"f.txt": b"hello", "d/g.txt": b"world!"})
    plan, _summary = asyncio.run(_engine_do(src, dst, CopyOptions(dry_run=True), []))
    assert plan.files_to_copy == 2 and plan.bytes_total == 11
    assert plan.event().dirs_to_create == 1
    assert not dst.exists()


def test_migrate_dry_run_reads_the_plan_from_the_engine(tmp_path: Path) -> None:
    """``fsmove migrate --dry-run``'s "would copy N of M files" comes from
    ``CopyEngine.plan()`` (both sides opened read-only), not from a list of events."""
    src, dst = tmp_path / "old", tmp_path / "new"
    _put(src, {"a.txt": b"aaaa", "b/c.txt": b"cc", "same.txt": b"same"})
    _put(dst, {"same.txt": b"same", "only-new.txt": b"x"})
    plan = asyncio.run(_plan_copy(
        parse_endpoint(str(src)), parse_endpoint(str(dst)), connect=ConnectOptions(),
        options=CopyOptions(dry_run=True, delete=True)))
    assert isinstance(plan, CopyPlan)
    assert (plan.files_to_copy, plan.files_total, plan.bytes_to_copy) == (2, 3, 6)
    assert plan.files_to_delete == 1
    assert not (dst / "b").exists()


def test_a_file_gone_before_its_deletion_is_not_a_failure(tmp_path: Path) -> None:
    """``--delete`` of a file that vanished since the listing (pure-ftpd's upload file
    renamed into place, another client): what was wanted, not "could not delete"; a
    file still there after a refusal stays a failure."""
    from fsmove.transfers.backend import Entry, EntryKind
    from fsmove.transfers.copy.deletion import delete_files

    root = tmp_path / "dst"
    root.mkdir()
    (root / "kept.txt").write_text("still here")
    (root / "in-the-way").mkdir()  # a folder where a file was listed: refused, still there

    async def go() -> list[tuple[str, bool]]:
        pool = SessionPool(LocalStore(parse_endpoint(str(root))), max_sessions=2)
        try:
            entries = [Entry(path=p, kind=EntryKind.FILE, size=1, mtime=None)
                       for p in ("gone.txt", "kept.txt", "in-the-way")]
            return [(e.path, err is None)
                    async for e, err in delete_files(pool, entries, journal=None)]
        finally:
            await pool.aclose()

    outcome = asyncio.run(go())
    assert outcome == [("gone.txt", True), ("kept.txt", True), ("in-the-way", False)]
    assert not (root / "kept.txt").exists() and (root / "in-the-way").is_dir()


def test_a_file_restarted_many_times_is_one_file_in_the_summary() -> None:
    """A log appended to while it was copied, restarted 5 times: "restarted: 5 files"
    listing one path 5 times before session 33."""
    from fsmove.transfers.copy.stats import RunStats

    stats = RunStats()
    stats.restarted += [("app.log", "changed while copied")] * 5 + [("b.bin", "gone")]
    summary = stats.summary(status="ok", seconds=1.0, dry_run=False, to_delete=0)
    assert summary.files_restarted == 2
    assert summary.restarted == [("app.log", "changed while copied (5 times)"),
                                 ("b.bin", "gone")]


def test_an_empty_source_empties_only_a_destination_that_may_be_emptied(
        tmp_path: Path) -> None:
    """``--delete`` from a source holding no file is refused (SRC and DST swapped?),
    but a bucket ``migrate`` made is its copy alone (``may_empty``): an old bucket the
    app emptied between the copy and the delta stopped every rerun (session 34)."""
    import pytest

    from fsmove.transfers.copy.engine import EmptySourceError

    src, dst = tmp_path / "src", tmp_path / "dst"
    src.mkdir()
    _put(dst, {"cache/1": b"1", "cache/2": b"22"})

    async def copy(may_empty: bool) -> object:
        pools = [SessionPool(LocalStore(parse_endpoint(str(p))), max_sessions=2)
                 for p in (src, dst)]
        try:
            return await CopyEngine(src=pools[0], dst=pools[1], journal=None,
                                    options=CopyOptions(delete=True,
                                                        may_empty=may_empty)).run()
        finally:
            await asyncio.gather(*(p.aclose() for p in pools))

    with pytest.raises(EmptySourceError):
        asyncio.run(copy(False))
    assert sorted(p.name for p in (dst / "cache").iterdir()) == ["1", "2"]
    asyncio.run(copy(True))
    assert [p for p in dst.rglob("*") if p.is_file()] == []
