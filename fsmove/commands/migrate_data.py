"""`fsmove migrate`'s data phases, the app running meanwhile: **copy**, **verify** (the
delta once at once on a difference, then verified again), **delta** (``--delete``; the
old trees listed before it, the new ones after: the catch-up's reference) and, after the
switch, **catchup** (what the old instances wrote or deleted, never over what the new app
changed: fsmove/clever/catchup.py). Each runs fsmove's own copy
and verify on the buckets read once in this run. (Their dry runs: migrate.py.)"""

from __future__ import annotations

import time
from dataclasses import replace
from pathlib import Path
from typing import Any

from fsmove.clever import migrate_state
from fsmove.clever.catchup import CopySettings, catch_up, reference
from fsmove.clever.migrate_state import BucketPair
from fsmove.clever.trees import list_trees, read_trees
from fsmove.commands.copy import CopyRequest, run_copy
from fsmove.commands.migration_core import MigrationCore, say, say_progress
from fsmove.commands.verify import VerifyRequest, run_verify
from fsmove.exitcodes import ExitCode
from fsmove.transfers.tree import Filters


class DataPhases(MigrationCore):
    def _copy(self, pair: BucketPair, *, delete: bool, checksum: bool) -> ExitCode:
        req = self.req
        src, dst = self._endpoints(pair)
        code = run_copy(CopyRequest(
            src=src, dst=dst,
            # A bucket fsmove made is its copy of the old one, nobody else's: an old
            # bucket the app emptied empties it too (the copy refuses that otherwise:
            # every rerun stopped, "SRC and DST swapped?"). One the user gave is not.
            options=replace(req.copy, checksum=checksum, delete=delete,
                            may_empty=not pair.reused),
            connect=req.connect, src_connections=req.src_connections,
            dst_connections=req.dst_connections, quiet=req.quiet))
        # (With --delete the copy also removes the folders the running app removed with
        # their files: the verification and the cut-over want the trees equal.)
        return code

    def _copy_each(self, phase: str, *, delete: bool) -> ExitCode:
        for pair in self.state.pairs:
            say_progress(f"{phase}: {self._label(pair)}")
            code = self._copy(pair, delete=delete, checksum=False)
            if code is not ExitCode.OK:
                return code
        return ExitCode.OK

    def copy_pairs(self) -> ExitCode:
        return self._copy_each("copy", delete=False)

    def _verify_pair(self, pair: BucketPair, *, filters: Filters | None = None,
                     report: bool = True) -> ExitCode:
        from fsmove.verify.results import Tier

        req = self.req
        src, dst = self._endpoints(pair)
        reports: tuple[Path, ...] = ()
        if report and req.reports:
            many = len(self.state.pairs) > 1
            # Two old buckets may share a name (ids never do): then the id names it too,
            # or the second report replaced the first (session 34's adversarial pass).
            names = [other.old_name for other in self.state.pairs]
            label = (pair.old_name if names.count(pair.old_name) == 1
                     else f"{pair.old_name}-{pair.old_id}")
            reports = tuple(p.with_name(f"{p.stem}-{label}{p.suffix}") if many else p
                            for p in req.reports)
        return run_verify(VerifyRequest(
            src=src, dst=dst, tier=Tier.FULL, connect=req.connect, reports=reports,
            src_connections=req.src_connections, dst_connections=req.dst_connections,
            quiet=req.quiet, filters=filters or Filters(), use_journal=filters is None,
            bwlimit=req.copy.bwlimit))

    def verify(self) -> ExitCode:
        if self.req.dry_run:
            for pair in self.state.pairs:
                src, dst = self._urls(pair)
                say(f"verify (dry run): would run: fsmove verify {src} {dst}")
            return ExitCode.OK
        for pair in self.state.pairs:
            code = self._verify_pair(pair)
            if code is ExitCode.MISMATCH:
                # Files the running app changed or removed since the copy: the delta
                # brings them in line, then one more verification. No loop.
                say_progress(f"verify: {self._label(pair)} differs; the app keeps writing to "
                          "the old bucket: running the delta (--delete, comparing contents), "
                          "then verifying again")
                code = self._copy(pair, delete=True, checksum=True)
                if code is ExitCode.OK:
                    code = self._verify_pair(pair)
            if code is not ExitCode.OK:
                self.state.verdict = "mismatch" if code is ExitCode.MISMATCH else "unreadable"
                say_progress(f"verify: {self._label(pair)} still differs after the delta (exit "
                          f"{int(code)}); the app was not touched. See the report, then rerun")
                return code
        self.state.verdict = "match"
        self.outcome["verify"] = "match: the new buckets hold exactly the old ones' files"
        return ExitCode.OK

    def delta_pairs(self) -> ExitCode:
        # The old trees are listed BEFORE the delta copies them and the new ones right
        # after: a file the old app writes or deletes while the delta runs then differs
        # from the snapshot, and the catch-up carries it over (listed after the copy, it
        # would look unchanged and be lost).
        taken = time.time()
        olds = read_trees([self._endpoints(p)[0] for p in self.state.pairs], self.req.connect)
        code = self._copy_each("delta", delete=True)
        if code is not ExitCode.OK:
            return code
        news = list_trees([self._endpoints(p)[1] for p in self.state.pairs], self.req.connect)
        snapshot: dict[str, Any] = {
            pair.old_id: reference(old.files, new, taken=taken)
            for pair, old, new in zip(self.state.pairs, olds, news, strict=True)}
        migrate_state.save_snapshot(self.snap_path, snapshot)
        return ExitCode.OK

    def catchup(self) -> ExitCode:
        if self.req.dry_run:
            say("catchup (dry run): would copy what the old instances wrote to the old "
                 "buckets after the final delta, and delete from the new buckets what they "
                 "deleted (never over a file the new app changed)")
            return ExitCode.OK
        req = self.req
        settings = CopySettings(copy=req.copy, connect=req.connect, quiet=req.quiet,
                                src_connections=req.src_connections,
                                dst_connections=req.dst_connections)
        snapshot = migrate_state.load_snapshot(self.snap_path)
        conflicts: list[str] = []
        for pair in self.state.pairs:
            src, dst = self._endpoints(pair)
            before = snapshot.get(pair.old_id)
            if before is None:
                # Removed by hand (the advice for an unreadable one said the delta would
                # run again: after the switch it does not, session 34's note).
                say(f"catchup: {pair.old_name}: no snapshot of the trees at the final "
                    f"delta ({self.snap_path}): fsmove cannot tell which app changed a "
                    "file, so every file that differs between the two buckets is listed "
                    "as a conflict (the new bucket's kept), files only in the old bucket "
                    "are copied, and nothing is deleted")
                before = {"old": {}, "new": {}}
            done = catch_up(
                label=self._label(pair), key=f"{pair.old_name}:", src=src, dst=dst,
                before=before,
                since="after the final delta", settings=settings,
                reported=self.state.conflicts_reported, say=say)
            conflicts += done.new_conflicts
            self.state.conflicts_reported += done.new_conflicts
            if done.code is not ExitCode.OK:
                self.save()
                return done.code
            snapshot[pair.old_id] = done.snapshot
            migrate_state.save_snapshot(self.snap_path, snapshot)
        self.save()
        if conflicts:
            say_progress(f"catchup: {len(conflicts)} conflict(s) listed above (exit 4): compare "
                      "each and keep the right version by hand; a rerun goes on (a conflict "
                      "is reported once)")
            return ExitCode.MISMATCH
        return ExitCode.OK
