"""The catch-up after a switch: what the old app did to its bucket after the last copy
into the new bucket — files it wrote AND files it deleted — carried over, never over what
the new app did meanwhile. One decision for ``fsmove migrate``'s catchup phase (the old
instances run until the redeploy replaced them) and a PHP app's re-creation (the old app
serves until its domains moved).

The reference is a snapshot (``reference()``): the old tree listed just before the last
copy, the new tree just after it; after each catch-up, both trees as it left them. Later,
per path:

- the old bucket wrote it (new, or its size or mtime changed since) and the new bucket
  did not change it: **copied**;
- the old bucket had it at the reference, the new bucket still holds it unchanged since,
  and the old bucket no longer has it: **deleted** from the new bucket — except at or below a
  path the old tree holds in a form fsmove does not look into (a symlink, a special
  file), exactly the ``--delete`` rule of transfers/plan.py: its absence there proves
  nothing, so it is kept and said;
- both sides changed it (the old app wrote or deleted it; the new app wrote or deleted
  it): a **conflict**, the new app's version kept, listed once (exit 4);
- neither listing changed but the old file's time is within a minute of the moment the
  old tree was listed for the last copy's snapshot (``racy_candidates``): both buckets
  are read, and a file whose bytes differ is **copied** (by content: size and time
  cannot tell such a rewrite).

The copy is fsmove's own (engine, journal, ``--delete`` with include filters naming
exactly those paths, so the engine's own blind rule applies again; the blind paths
excluded on both sides), with the user's copy options; the folders the deletions emptied
that the old tree no longer has are removed too (the engine's ``--delete`` removes files
only); then the paths that moved are verified.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable, Collection
from dataclasses import dataclass, field, replace
from typing import Any

from fsmove import event_loop
from fsmove.clever.trees import Listing, Tree, changed, fnmatch_exact, read_trees
from fsmove.endpoint_access import ConnectOptions, open_store
from fsmove.exitcodes import ExitCode
from fsmove.transfers.backend import parent_of
from fsmove.transfers.copy import CopyOptions
from fsmove.transfers.endpoint import Endpoint
from fsmove.transfers.plan import is_at_or_below
from fsmove.transfers.pool import SessionPool
from fsmove.transfers.tree import Filters, is_racy

#: Deleted paths listed one by one; beyond, a count.
LISTED_DELETIONS = 50


@dataclass(frozen=True)
class CatchUpPlan:
    to_copy: tuple[str, ...] = ()
    to_delete: tuple[str, ...] = ()
    #: (path, why): the new app's version kept.
    conflicts: tuple[tuple[str, str], ...] = ()
    #: Gone from the old listing but at or below a path fsmove did not look into.
    kept_blind: tuple[tuple[str, str], ...] = ()


#: The listing entry of a file the old tree had at some moment of the copy, state unknown.
SEEN = [-1.0, -1.0]


def reference(old_before: Listing, new_after: Listing, *, taken: float) -> dict[str, Any]:
    """The snapshot taken around the last copy: the old tree listed before it (from
    ``taken`` on, this machine's clock), the new one after it. A file the new tree has
    that the old listing lacks was written to the old bucket while the copy ran (and
    copied): it is recorded as seen in the old tree, state unknown, so that the catch-up
    copies it again if it changed and deletes it if the old app deletes it."""
    old = dict(old_before)
    for path in new_after:
        old.setdefault(path, list(SEEN))
    return {"old": old, "new": new_after, "taken": taken}


def racy_candidates(before_old: Listing, before_new: Listing, taken: float | None,
                    old_now: Listing, new_now: Listing, decided: Collection[str]
                    ) -> list[str]:
    """The files whose listings cannot tell whether the old app rewrote them: unchanged
    in both buckets since the snapshot, but with an old time within ``RACY_WINDOW`` of
    the moment the old tree was listed (``taken``). A rewrite at the same size in the
    second of that listing leaves size and time as listed; only the bytes tell
    (``catch_up`` reads both sides of these). The new bucket's listing is trusted: no
    app writes there until the switch's redeploy (or the PHP app's deployment), minutes
    after it was listed, so a file of its listing's time is the last copy's.

    Only the snapshot of that last copy carries ``taken``: the snapshot a catch-up
    leaves has the new app live beside it (its own same-second rewrites would look
    like the old app's and be overwritten; and the buckets differ where a conflict
    kept the new app's version), so a rerun after a catch-up trusts the listings
    alone. A snapshot without ``taken`` (an earlier fsmove's) reads none."""
    if taken is None:
        return []
    return sorted(
        p for p, meta in old_now.items()
        if p not in decided and before_old.get(p) == meta and meta[1] >= 0
        and p in new_now and before_new.get(p) == new_now[p]
        and is_racy(meta[1], taken))


def decide(before_old: Listing, before_new: Listing, old_now: Tree,
           new_now: Listing) -> CatchUpPlan:
    """What to copy, delete and report (module docstring)."""
    written_new = changed(new_now, before_new)
    removed_new = set(before_new) - set(new_now)
    to_copy: list[str] = []
    conflicts: list[tuple[str, str]] = []
    for p in sorted(changed(old_now.files, before_old)):
        if p in removed_new:
            conflicts.append((p, "the old app wrote it, the new one deleted it"))
        elif p in written_new:
            if old_now.files[p] != new_now[p]:
                conflicts.append((p, "the old app and the new one both wrote it"))
        else:
            to_copy.append(p)
    to_delete: list[str] = []
    kept: list[tuple[str, str]] = []
    for p in sorted(set(before_old) - set(old_now.files)):
        if is_at_or_below(p, set(old_now.blind)):
            root = next(b for b in sorted(old_now.blind, key=len) if is_at_or_below(p, {b}))
            kept.append((p, root))
        elif p not in new_now:
            continue  # gone from both
        elif new_now[p] != before_new.get(p):
            conflicts.append((p, "the old app deleted it, the new one wrote it"))
        else:
            to_delete.append(p)
    return CatchUpPlan(to_copy=tuple(to_copy), to_delete=tuple(to_delete),
                       conflicts=tuple(sorted(conflicts)), kept_blind=tuple(kept))


@dataclass(frozen=True)
class CopySettings:
    """The user's copy options, carried to the catch-up's copy and verification."""

    copy: CopyOptions = field(default_factory=CopyOptions)
    connect: ConnectOptions = field(default_factory=ConnectOptions)
    src_connections: int | None = None
    dst_connections: int | None = None
    quiet: bool = False


@dataclass
class CatchUpResult:
    code: ExitCode
    #: The reference for a rerun: the trees as this catch-up left them.
    snapshot: dict[str, Any]
    #: Conflicts not reported before (keys ``key + path``).
    new_conflicts: list[str]


def catch_up(*, label: str, key: str, src: Endpoint, dst: Endpoint, before: dict[str, Any],
             since: str, settings: CopySettings, reported: Collection[str],
             say: Callable[[str], None]) -> CatchUpResult:
    """Carry over what the old bucket ``src`` had done since ``before`` into ``dst``
    (``since`` words when the snapshot was taken, e.g. "after the final delta")."""
    old_now, new_tree = read_trees([src, dst], settings.connect)
    new_now = new_tree.files
    before_old, before_new = before.get("old") or {}, before.get("new") or {}
    plan = decide(before_old, before_new, old_now, new_now)
    racy = racy_candidates(
        before_old, before_new, before.get("taken"), old_now.files, new_now,
        {*plan.to_copy, *(p for p, _ in plan.conflicts),
         *(p.removeprefix(key) for p in reported if p.startswith(key))})
    rewritten: list[str] = []
    if racy:
        rewritten = event_loop.run(_differing(src, dst, racy, settings.connect))
        if rewritten:
            say(f"catchup: {label}: {len(rewritten)} file(s) rewritten by the old app in "
                "the second it was listed (same size and time, other bytes)")
            plan = replace(plan, to_copy=tuple(sorted({*plan.to_copy, *rewritten})))
    fresh_conflicts = []
    for path, why in plan.conflicts:
        say(f"catchup: CONFLICT {key}/{path}: {why} {since}; the new app's version is kept")
        if key + path not in reported:
            fresh_conflicts.append(key + path)
    for path, root in plan.kept_blind:
        say(f"catchup: {label}: /{path} kept in the new bucket although the old one no "
            f"longer lists it: the old bucket holds /{root} as a link or special file "
            "fsmove does not look into, so its absence proves nothing (check it by hand)")
    code = ExitCode.OK
    if not plan.to_copy and not plan.to_delete:
        say(f"catchup: {label}: nothing new in the old bucket")
    else:
        if plan.to_copy:
            say(f"catchup: {label}: {len(plan.to_copy)} file(s) the old app wrote {since}")
        if plan.to_delete:
            say(f"catchup: {label}: {len(plan.to_delete)} file(s) the old app deleted {since}, "
                "deleted from the new bucket:")
            for path in plan.to_delete[:LISTED_DELETIONS]:
                say(f"  deleted /{path}")
            if len(plan.to_delete) > LISTED_DELETIONS:
                say(f"  … and {len(plan.to_delete) - LISTED_DELETIONS} more")
        code = _copy_and_verify(src, dst, plan, old_now, settings,
                                by_content=bool(rewritten))
        if code is ExitCode.OK:
            new_now = read_trees([dst], settings.connect)[0].files
    # The reference moves on: a rerun compares with the trees as this catch-up left them
    # (a file it copied is not "written by the new app", whatever mtime the new bucket
    # gave it; a file it deleted is not "deleted by the new app").
    snapshot = {"old": old_now.files, "new": new_now} if code is ExitCode.OK else before
    return CatchUpResult(code=code, snapshot=snapshot, new_conflicts=fresh_conflicts)


#: Racy files read at once on each side.
RACY_READS = 4


async def _differing(src: Endpoint, dst: Endpoint, paths: list[str],
                     connect: ConnectOptions) -> list[str]:
    """The ``paths`` whose bytes differ between the two buckets (a file that cannot be
    read on either side counts as differing: the copy then says why)."""
    from fsmove.transfers.backend import BackendError
    from fsmove.transfers.digest_read import read_file_digest

    pools = [SessionPool(open_store(e, connect, writable=False), max_sessions=RACY_READS)
             for e in (src, dst)]
    limit = asyncio.Semaphore(RACY_READS)

    async def differs(path: str) -> bool:
        async with limit:
            try:
                a, b = await asyncio.gather(*(read_file_digest(p, path) for p in pools))
            except BackendError:
                return True
            return a.digest != b.digest

    try:
        found = await asyncio.gather(*(differs(p) for p in paths))
    finally:
        for pool in pools:
            await pool.aclose()
    return [p for p, d in zip(paths, found, strict=True) if d]


def _copy_and_verify(src: Endpoint, dst: Endpoint, plan: CatchUpPlan, old_now: Tree,
                     settings: CopySettings, *, by_content: bool = False) -> ExitCode:
    """fsmove's copy limited to exactly the paths decided (``--delete`` when some are to
    go; the old tree's blind paths left out on both sides), the folders those deletions
    emptied that the old bucket no longer has removed, then a full verification of those
    paths. ``by_content``: some were found rewritten by their bytes alone (size and time
    as before), so the copy compares bytes (``--checksum``, on the paths this catch-up
    decided: the include filters hold those alone, so it reads no other file): its
    own size-and-time rule, with a journal record it trusts, skipped them "identical",
    and every rerun ended in the same mismatch (session 36's second pass)."""
    from fsmove.commands.copy import CopyRequest, run_copy
    from fsmove.commands.verify import VerifyRequest, run_verify
    from fsmove.verify.results import Tier

    filters = Filters(include=tuple(fnmatch_exact(p) for p in (*plan.to_copy,
                                                                 *plan.to_delete)),
                      exclude=tuple(fnmatch_exact(p) for p in sorted(old_now.blind)))
    # may_empty: the include filters hold exactly the paths decided, so deletions are
    # those alone; an old bucket the app emptied is such a set (the empty-source guard
    # stopped every rerun with "SRC and DST swapped?", session 34's 4th pass).
    options = replace(settings.copy, filters=filters, delete=bool(plan.to_delete),
                      dry_run=False, may_empty=True,
                      checksum=settings.copy.checksum or by_content)
    code = run_copy(CopyRequest(
        src=src, dst=dst, options=options, connect=settings.connect,
        src_connections=settings.src_connections, dst_connections=settings.dst_connections,
        quiet=settings.quiet))
    if code is not ExitCode.OK:
        return code
    emptied = emptied_folders(plan.to_delete, old_now)
    if emptied:
        event_loop.run(_remove_folders(dst, emptied, settings.connect))
    return run_verify(VerifyRequest(
        src=src, dst=dst, tier=Tier.FULL, connect=settings.connect, filters=filters,
        use_journal=False, src_connections=settings.src_connections,
        dst_connections=settings.dst_connections, quiet=settings.quiet,
        bwlimit=settings.copy.bwlimit))


def emptied_folders(deleted: Collection[str], old_now: Tree) -> list[str]:
    """The folders of deleted files that the old tree no longer has (nor holds as a blind
    path), deepest first: the old app removed them with their files. (The catch-up deletes
    file by file, not through a copy with ``--delete``, which would remove such folders
    itself; a folder left behind would be a difference at cut-over.)"""
    found: set[str] = set()
    for path in deleted:
        folder = parent_of(path)
        while folder and folder not in old_now.dirs \
                and not is_at_or_below(folder, set(old_now.blind)):
            found.add(folder)
            folder = parent_of(folder)
    return sorted(found, key=lambda f: (-f.count("/"), f))


async def _remove_folders(dst: Endpoint, folders: list[str], connect: ConnectOptions) -> None:
    """Remove each folder, deepest first; one that is not empty (the new app wrote in it)
    or cannot be removed stays, and the verification then names it."""
    from fsmove.transfers.copy.deletion import remove_folders

    pool = SessionPool(open_store(dst, connect, writable=True), max_sessions=1)
    try:
        await remove_folders(pool, folders)  # each folder above it seen again first
    finally:
        await pool.aclose()
