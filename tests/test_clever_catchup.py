"""The catch-up's decision (fsmove/clever/catchup.py), shared by `fsmove migrate` and a PHP
app's re-creation: pure listings in, what to copy, delete and report out. (The whole
catch-up runs against the real `clever` CLI, the emulator and FTP servers in
test_clever_migrate.py and test_clever_php.py.)"""

from __future__ import annotations

from pathlib import Path

import pytest

from fsmove.clever.catchup import (
    SEEN,
    CatchUpPlan,
    decide,
    emptied_folders,
    racy_candidates,
    reference,
)
from fsmove.clever.trees import Listing, Tree


def _tree(files: Listing, *, blind: tuple[str, ...] = (), dirs: tuple[str, ...] = ()) -> Tree:
    return Tree(files=files, blind=frozenset(blind), dirs=frozenset(dirs))


A, B, C = [1.0, 100.0], [2.0, 200.0], [3.0, 300.0]


def test_what_the_old_app_did_alone_is_carried_over() -> None:
    before = reference({"keep": A, "gone": A, "edited": A},
                       {"keep": B, "gone": B, "edited": B}, taken=0.0)
    plan = decide(before["old"], before["new"],
                  _tree({"keep": A, "edited": C, "fresh": C}),
                  {"keep": B, "gone": B, "edited": B})
    assert plan == CatchUpPlan(to_copy=("edited", "fresh"), to_delete=("gone",))


def test_never_over_what_the_new_app_did() -> None:
    before = reference({"a": A, "b": A, "c": A}, {"a": B, "b": B, "c": B}, taken=0.0)
    # a: both wrote; b: the old deleted, the new wrote; c: the old wrote, the new deleted;
    # mine: only the new app wrote it (never touched).
    plan = decide(before["old"], before["new"], _tree({"a": C, "c": C}),
                  {"a": [9.0, 9.0], "b": [9.0, 9.0], "mine": C})
    assert plan.to_copy == () and plan.to_delete == ()
    assert [p for p, _why in plan.conflicts] == ["a", "b", "c"]


def test_never_deleted_at_or_below_what_the_old_tree_holds_as_a_link() -> None:
    before = reference({"media/x.jpg": A, "f": A}, {"media/x.jpg": B, "f": B}, taken=0.0)
    plan = decide(before["old"], before["new"], _tree({}, blind=("media", "f")),
                  {"media/x.jpg": B, "f": B})
    assert plan.to_delete == ()
    assert plan.kept_blind == (("f", "f"), ("media/x.jpg", "media"))


def test_a_file_written_while_the_last_copy_ran_is_known_to_the_old_side() -> None:
    # Listed in the old tree before the copy: absent; copied, so in the new tree after.
    before = reference({}, {"late.txt": B}, taken=0.0)
    assert before["old"] == {"late.txt": SEEN}
    deleted_since = decide(before["old"], before["new"], _tree({}), {"late.txt": B})
    assert deleted_since.to_delete == ("late.txt",)
    still_there = decide(before["old"], before["new"], _tree({"late.txt": A}),
                         {"late.txt": B})
    assert still_there.to_copy == ("late.txt",)  # compared again by the copy


def test_after_a_catch_up_the_new_apps_own_files_are_never_deleted() -> None:
    # The reference moved on: the new tree as the catch-up left it holds the new app's
    # own file, which the old tree never had.
    plan = decide({"old.txt": A}, {"old.txt": B, "mine.txt": C}, _tree({"old.txt": A}),
                  {"old.txt": B, "mine.txt": C})
    assert plan == CatchUpPlan()


def test_folders_emptied_by_the_deletions() -> None:
    old = _tree({}, dirs=("a", "keep"), blind=("linked",))
    assert emptied_folders(["a/b/c/f", "keep/g", "linked/d/h", "top"], old) == ["a/b/c",
                                                                                 "a/b"]


def test_without_a_reference_nothing_is_deleted_and_differences_are_conflicts() -> None:
    """The snapshot removed after the switch (its advice said to delete an unreadable
    one): no reference, so no side can be told apart. Nothing is deleted, nothing the
    new bucket holds is overwritten; what only the old bucket holds is copied."""
    plan = decide({}, {}, _tree({"same": A, "differs": C, "old-only": A}),
                  {"same": A, "differs": B, "new-only": B})
    assert plan.to_delete == () and plan.to_copy == ("old-only",)
    assert [p for p, _why in plan.conflicts] == ["differs"]


def test_files_listed_in_the_second_they_were_written_are_read_again() -> None:
    """A rewrite at the same size within the second the old tree was listed leaves the
    listing as it was: before session 36 the catch-up never saw it (the old app's last
    write lost). The files whose old time is within ``RACY_WINDOW`` of the listing, and
    that neither the listings nor the decision already deal with, are read on both
    sides (``catch_up``); the others are trusted as before."""
    taken = 1_700_000_000.0
    fresh, old, moved = [5.0, taken], [5.0, taken - 3600], [5.0, taken + 2]
    before = reference({"fresh": fresh, "old": old, "edited": fresh, "gone": fresh,
                        "timeless": [5.0, -1.0], "new-changed": fresh},
                       {"fresh": B, "old": B, "edited": B, "gone": B, "timeless": B,
                        "new-changed": B}, taken=taken)
    old_now = {"fresh": fresh, "old": old, "edited": moved, "timeless": [5.0, -1.0],
               "new-changed": fresh}
    new_now = {"fresh": B, "old": B, "edited": B, "gone": B, "timeless": B,
               "new-changed": C}
    plan = decide(before["old"], before["new"], _tree(old_now), new_now)
    assert plan.to_copy == ("edited",)
    found = racy_candidates(before["old"], before["new"], before["taken"], old_now,
                            new_now, plan.to_copy)
    # fresh: read; old: an hour before the listing (trusted); edited: decided already;
    # gone: not in the old tree; timeless: no time to judge by (its size and the
    # listing only); new-changed: the new app wrote it (a conflict or nothing, never
    # overwritten by the old one's bytes).
    assert found == ["fresh"]
    assert racy_candidates(before["old"], before["new"], None, old_now, new_now, ()) == []


def test_a_rewrite_found_by_its_bytes_is_copied_whatever_the_journal_says(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """The catch-up finds a file rewritten with its size and time kept (its listing is
    the snapshot's, its bytes are not the new bucket's) where the copy's own journal
    rule sees nothing racy (a server clock ahead: the file's time is past the copy's
    read by more than the window). Before the fix the catch-up said "1 file(s) the old
    app wrote", its copy skipped it "identical", and every rerun ended in the same
    mismatch (session 36's second pass). The copy now compares those bytes. Local
    folders stand for the buckets."""
    import os
    import time

    from fsmove.clever.catchup import CopySettings, catch_up
    from fsmove.clever.trees import read_trees
    from fsmove.commands.copy import CopyRequest, run_copy
    from fsmove.endpoint_access import ConnectOptions
    from fsmove.transfers.copy import CopyOptions
    from fsmove.transfers.endpoint import parse_endpoint

    monkeypatch.setenv("XDG_STATE_HOME", str(tmp_path / "state"))
    old, new = tmp_path / "old", tmp_path / "new"
    old.mkdir()
    now = time.time()
    (old / "f.txt").write_bytes(b"A" * 100)
    os.utime(old / "f.txt", (now + 100, now + 100))  # a server clock 100 s ahead
    (old / "g.txt").write_bytes(b"G" * 100)
    src, dst = parse_endpoint(str(old)), parse_endpoint(str(new))
    assert run_copy(CopyRequest(src=src, dst=dst, options=CopyOptions(),
                                connect=ConnectOptions(), quiet=True)) == 0
    o, n = read_trees([src, dst], ConnectOptions())
    before = reference(o.files, n.files, taken=now + 70)  # the final delta's listing
    kept = (old / "f.txt").stat()
    (old / "f.txt").write_bytes(b"B" * 100)
    os.utime(old / "f.txt", ns=(kept.st_atime_ns, kept.st_mtime_ns))
    said: list[str] = []
    done = catch_up(label="old -> new", key="old:", src=src, dst=dst, before=before,
                    since="after the final delta", settings=CopySettings(quiet=True),
                    reported=(), say=said.append)
    assert done.code == 0, said
    assert (new / "f.txt").read_bytes() == b"B" * 100
    assert any("rewritten by the old app in the second it was listed" in s for s in said)
