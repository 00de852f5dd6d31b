"""Step 9 of a PHP re-creation, **catchup**: the old app served its domains until they
moved, and kept writing uploads (and deleting files) in its own FTP bucket after the code
copy. Once every domain is on the new app, that is carried over into the new app's
bucket: files written copied, files deleted deleted (never at or below a path fsmove
could not look into), never over what the new app wrote or deleted meanwhile (a conflict:
listed once, exit 4, the new app's version kept); the paths moved are verified. The
decision is the one of ``fsmove migrate``'s catch-up (fsmove/clever/catchup.py); the
reference is the snapshot the code copy saved (the old tree before it, the new one
after its verification)."""

from __future__ import annotations

from dataclasses import replace

from fsmove.clever import php_state
from fsmove.clever.bucket import read_owned_bucket
from fsmove.clever.catchup import CopySettings, catch_up
from fsmove.clever.php_run import PhpRun
from fsmove.exitcodes import ExitCode


class CatchUpStep(PhpRun):
    def _catch_up(self) -> ExitCode:
        st, req = self.st, self.req
        if not st.ftp:
            return ExitCode.OK  # git-deployed: the code is in the repository, no bucket
        if req.dry_run:
            self.say("would copy what the old app wrote to its bucket after the code copy, "
                     "and delete from the new app's bucket what it deleted (never over a "
                     "file the new app changed)")
            return ExitCode.OK
        before = php_state.load_snapshot(self._snapshot_path())
        if before is None:
            # A journal of an fsmove without this step: the code was copied with no
            # reference kept, so who wrote what since cannot be told.
            self.say(f"  no snapshot of the code copy (an earlier fsmove did it): compare "
                     f"the buckets yourself: fsmove verify clever://{st.old_bucket} "
                     f"clever://{st.new_bucket}")
            return ExitCode.OK
        old_root, new_root = (read_owned_bucket(self.api, self.owner, str(b)).endpoint("/")
                              for b in (st.old_bucket, st.new_bucket))
        settings = CopySettings(copy=req.copy, connect=req.connect, quiet=req.quiet,
                                src_connections=req.src_connections,
                                dst_connections=req.dst_connections)
        done = catch_up(label=f"{self.old.view.name if self.old else st.old_app} -> "
                        f"{st.new_name}", key="", src=old_root, dst=new_root, before=before,
                        since="after the code copy", settings=settings,
                        reported=st.conflicts_reported, say=self.say)
        self._save(replace(self.st, conflicts_reported=(*st.conflicts_reported,
                                                        *done.new_conflicts)))
        if done.code is not ExitCode.OK:
            return done.code
        php_state.save_snapshot(self._snapshot_path(), done.snapshot)
        if done.new_conflicts:
            self.say(f"  {len(done.new_conflicts)} conflict(s) listed above (exit 4): compare "
                     "each and keep the right version by hand; a rerun goes on (a conflict "
                     "is reported once)")
            return ExitCode.MISMATCH
        return ExitCode.OK
