"""`fsmove migrate`'s first phases: **preflight** (the bucket pairs fixed, each bucket
reached over FTP) and **create** (a new bucket per old one, journaled the moment it
exists, adopted by name after a kill: never a second one)."""

from __future__ import annotations

import asyncio
import fnmatch
from typing import Any

from fsmove import event_loop
from fsmove.clever.bucket import Bucket, bucket_from_env
from fsmove.clever.dns_advice import print_ttl_advice
from fsmove.clever.migrate_state import PHASES, BucketPair
from fsmove.clever.sharing import MovedBucket, describe, other_uses
from fsmove.clever.survey import new_bucket_name
from fsmove.commands.migration_core import MigrationCore, say
from fsmove.endpoint_access import ConnectOptions, open_store
from fsmove.errors import ConfigError, FsmoveError, UsageError
from fsmove.exitcodes import ExitCode
from fsmove.transfers.backend import AuthError, BackendError
from fsmove.transfers.not_the_tree import server_files


def parse_bucket_options(items: tuple[str, ...]) -> dict[str, str]:
    pairs: dict[str, str] = {}
    for item in items:
        old, sep, new = item.partition("=")
        if not sep or not old.strip() or not new.strip():
            raise UsageError(f"--bucket {item!r}: write it as OLD=NEW (add-on ids or names)")
        pairs[old.strip()] = new.strip()
    return pairs


async def _reach(bucket: Bucket, *, name: str, connect: ConnectOptions) -> None:
    """Log in to the bucket over FTP and stat its root; writes nothing."""
    endpoint = bucket.endpoint("/")
    store = open_store(endpoint, connect, writable=False)
    try:
        session = await store.connect()
        try:
            await session.stat("")
        finally:
            await session.close()
    except AuthError as exc:
        raise ConfigError(
            f"preflight: bucket {name} refused its FTP login at {endpoint.display} ({exc}); "
            "check the add-on in the Console, then rerun") from None
    except (BackendError, OSError) as exc:
        raise FsmoveError(
            f"preflight: cannot reach bucket {name} over FTP at {endpoint.display} ({exc}); "
            "check the network, then rerun") from None
    finally:
        await store.aclose()


async def _files_at_root(bucket: Bucket, connect: ConnectOptions) -> list[str]:
    """The names at the bucket's root (the server's own files left out)."""
    endpoint = bucket.endpoint("/")
    ignore = server_files(endpoint)
    store = open_store(endpoint, connect, writable=False)
    try:
        session = await store.connect()
        try:
            names = [e.path.rsplit("/", 1)[-1] async for e in session.list("")]
        finally:
            await session.close()
    except (BackendError, OSError) as exc:
        raise FsmoveError(f"preflight: cannot list {endpoint.display} ({exc}); check the "
                          "network, then rerun") from None
    finally:
        await store.aclose()
    return [n for n in names
            if not any(fnmatch.fnmatchcase(n, p) or fnmatch.fnmatchcase("/" + n, p)
                       for p in ignore)]


async def _reach_all(buckets: list[tuple[str, Bucket]], connect: ConnectOptions) -> None:
    results = await asyncio.gather(*(_reach(b, name=n, connect=connect) for n, b in buckets),
                                   return_exceptions=True)
    for result in results:
        if isinstance(result, BaseException):
            raise result


class BucketPhases(MigrationCore):
    def _fix_pairs(self) -> None:
        sv, req = self.survey, self.req
        wanted = parse_bucket_options(req.buckets)
        reuse: dict[str, dict[str, Any]] = {}
        for old_text, new_text in wanted.items():
            old, new = sv.find_addon(old_text), sv.find_addon(new_text)
            if new.get("providerId") != "fs-bucket":
                raise UsageError(f"--bucket {old_text}={new_text}: {new_text} is not an FS "
                                 "Bucket")
            if str(new.get("region")) != req.zone:
                raise UsageError(f"--bucket {old_text}={new_text}: {new_text} is in "
                                 f"{new.get('region')}, not {req.zone} (a bucket is mounted "
                                 "only by apps in its own zone)")
            if str(new["addonId"]) in {b.addon_id for b in sv.buckets}:
                raise UsageError(f"--bucket {old_text}={new_text}: {new_text} is a bucket "
                                 f"{sv.app.name} uses already; give a bucket of its own")
            if str(old["addonId"]) in reuse:
                raise UsageError(f"--bucket: {old_text} is given twice (as "
                                 f"{reuse[str(old['addonId'])].get('name')} and {new_text}); "
                                 "give one new bucket per old one")
            if any(str(n["addonId"]) == str(new["addonId"]) for n in reuse.values()):
                raise UsageError(f"--bucket: {new_text} is given for two buckets; each old "
                                 "bucket needs a bucket of its own (the second copy would "
                                 "delete the first one's files)")
            reuse[str(old["addonId"])] = new
        ours = {b.addon_id for b in sv.buckets}
        for old_id in reuse:
            if old_id not in ours:
                raise UsageError(f"--bucket: {old_id} is not a bucket {sv.app.name} mounts "
                                 f"({', '.join(b.name for b in sv.buckets) or 'none'})")
        taken = {str(a.get("name")) for a in sv.catalogue.values()}
        pairs: list[BucketPair] = []
        for b in sv.buckets:
            if b.region == req.zone:
                # Already where the app goes (a cut-over made first, or a bucket made
                # there by hand): it stays, mounted as it is. Before session 34 this was
                # exit 2, while `fsmove cutover` advised migrate as the next step.
                say(f"bucket {b.name} is in {req.zone} already: it stays as it is")
                continue
            new = reuse.get(b.addon_id)
            if new is not None:
                new_bucket = self._bucket(str(new["addonId"]))
                pairs.append(BucketPair(
                    old_id=b.addon_id, old_name=b.name, plan=b.plan, old_host=b.host,
                    linked=b.linked, new_name=str(new.get("name")), new_id=str(new["addonId"]),
                    new_host=new_bucket.host, reused=True))
                if str(new.get("planSlug")) != b.plan:
                    say(f"warning: --bucket {new.get('name')} has plan {new.get('planSlug')}, "
                         f"{b.name} has {b.plan}")
            else:
                pairs.append(BucketPair(
                    old_id=b.addon_id, old_name=b.name, plan=b.plan, old_host=b.host,
                    linked=b.linked, new_name=new_bucket_name(b.name, req.zone, taken)))
        self.state.pairs = pairs

    def _refuse_another_zones_unfinished_migration(self) -> None:
        """A migration of this app to another zone that stopped half-way (its switch
        begun: the app's zone and mounts already changed, the old instances still
        writing to the old buckets) would be the new one's starting point: its copies
        would read the half-moved buckets and miss what the old app wrote since (session
        34's adversarial pass). Finish that one, or give it up by removing its journal."""
        from fsmove.clever import migrate_state
        from fsmove.clever.plan import ZONES

        for zone in ZONES:
            if zone == self.req.zone:
                continue
            path = migrate_state.state_path(self.state.app_id, zone)
            other = migrate_state.load(path)
            if other is not None and other.steps is not None \
                    and not all(other.is_done(p) for p in PHASES):
                raise UsageError(
                    f"a migration of {self.state.app_name} to {zone} stopped in or after its "
                    f"switch (journal "
                    f"{path}): finish it first (fsmove migrate --app {self.req.app} --to "
                    f"{zone}), or give it up by removing that journal")

    def _refuse_shared_buckets(self, *, first_run: bool) -> None:
        """Another app of the owner that links or mounts a bucket this migration moves
        keeps the old one (fsmove moves one app): from the switch on, the two apps no
        longer see each other's files. Refused, naming those apps, unless
        ``--split-shared`` (given once, it holds for the reruns: journaled); on a first
        run before any change and with no journal kept (fsmove/clever/sharing.py).
        Checked on every run until the switch begins: once only, an interrupted first
        run, a failed read or a bucket mounted between two runs skipped it (session
        35's pass on its own change). A ``--bucket`` NEW another app uses is refused
        whatever the flag: the delta would delete what that app writes there."""
        sv, st = self.survey, self.state
        if st.steps is not None:
            return  # the switch has begun: the app is being moved as it was checked
        if self.req.split_shared and not st.split_shared:
            st.split_shared = True
            if not first_run:
                self.save()
        moved = [MovedBucket(addon_id=p.old_id, name=p.old_name, host=p.old_host)
                 for p in st.pairs]
        given = [MovedBucket(addon_id=str(p.new_id), name=p.new_name, host=str(p.new_host))
                 for p in st.pairs if p.reused and p.new_id and p.new_host]
        uses, unread = other_uses(self.api, st.owner_id, st.app_id, moved + given)
        if unread and not st.split_shared:
            # Not a warning and on: the same run went on to the switch, and another app
            # kept the old bucket (session 36's adversarial pass; the warning promised a
            # check at the next run, which after the switch never comes).
            if first_run:
                st.pairs = []
            shown = "; ".join(unread[:3]) + (f"; and {len(unread) - 3} more read(s)"
                                               if len(unread) > 3 else "")
            raise UsageError(
                f"{shown}: fsmove cannot tell whether another app uses the buckets it "
                "moves, so this run changed nothing; rerun once they can be read, or pass "
                "--split-shared to move the app alone whatever other apps use (README: "
                "\"Apps sharing a bucket\")")
        for line in unread:
            say(f"warning: {line}: fsmove cannot tell whether another app shares a bucket "
                "(--split-shared: the app is moved alone)")
        given_ids = {b.addon_id for b in given}
        taken = [u for u in uses if u.bucket_id in given_ids]
        uses = [u for u in uses if u.bucket_id not in given_ids]
        if taken:
            if first_run:
                st.pairs = []
            raise UsageError(
                f"--bucket: {describe(taken)} use it already: the migration makes it an "
                "exact copy of the old bucket and would delete what they write there; "
                "give a bucket of its own")
        if not uses:
            return
        text = describe(uses)
        if st.split_shared:
            if st.shared_with != text:
                st.shared_with = text
                if not first_run:
                    self.save()
            say(f"preflight: --split-shared: these apps keep the old buckets: {text}")
            return
        if first_run:
            st.pairs = []
        raise UsageError(
            f"buckets of {sv.app.name} are used by other apps ({text}): moved alone, "
            f"{sv.app.name} would write to the new buckets and they to the old ones; "
            "pass --split-shared if that is wanted (README: \"Apps sharing a bucket\")")

    def _refuse_full_given_buckets(self) -> None:
        """A bucket given with ``--bucket OLD=NEW`` must be empty the first time: the
        migration makes it an exact copy of OLD, whose delta deletes what OLD lacks (a
        file already there was deleted without a word: session 34's adversarial pass).
        The journal is dropped with the refusal, so the corrected command starts anew."""
        for pair in self.state.pairs:
            if not pair.reused:
                continue
            names = event_loop.run(_files_at_root(self.access[str(pair.new_id)],
                                                  self.req.connect))
            if names:
                shown = ", ".join(sorted(names)[:3]) + (", ..." if len(names) > 3 else "")
                self.state.pairs = []
                raise UsageError(
                    f"--bucket {pair.old_name}={pair.new_name}: {pair.new_name} already holds "
                    f"files ({shown}); the migration makes it an exact copy of "
                    f"{pair.old_name} and would delete them: give an empty bucket")

    def _buckets_given_late(self) -> None:
        """``--bucket OLD=NEW`` on a rerun (the first run could not create the bucket:
        its plan not offered in the zone, say): taken for a pair that has no new bucket
        yet, refused for one that has another. Before session 34 it was ignored, and the
        rerun tried the failing creation again."""
        sv, req, st = self.survey, self.req, self.state
        for old_text, new_text in parse_bucket_options(req.buckets).items():
            old, new = sv.find_addon(old_text), sv.find_addon(new_text)
            new_id = str(new["addonId"])
            pair = next((p for p in st.pairs if p.old_id == str(old["addonId"])), None)
            if pair is None:
                raise UsageError(f"--bucket {old_text}={new_text}: {old_text} is not a "
                                 "bucket this migration moves")
            if pair.new_id == new_id:
                continue
            if pair.new_id:
                raise UsageError(
                    f"--bucket {old_text}={new_text}: this migration has {pair.new_name} "
                    f"({pair.new_id}) for {pair.old_name} already; drop --bucket, or remove "
                    f"the journal {self.path} to start over")
            if new.get("providerId") != "fs-bucket" or str(new.get("region")) != req.zone:
                raise UsageError(f"--bucket {old_text}={new_text}: {new_text} is not an FS "
                                 f"Bucket in {req.zone}")
            if any(p.new_id == new_id for p in st.pairs) or new_id in {
                    b.addon_id for b in sv.buckets}:
                raise UsageError(f"--bucket: {new_text} is in use already (the app's, or "
                                 "another bucket's new one)")
            if event_loop.run(_files_at_root(self._bucket(new_id), req.connect)):
                raise UsageError(f"--bucket {old_text}={new_text}: {new_text} already holds "
                                 "files; give an empty bucket")
            pair.new_id, pair.new_name, pair.reused = new_id, str(new.get("name")), True
            pair.new_host, pair.creating = self._bucket(new_id).host, False
            self.save()

    def _pairs_for_new_mounts(self) -> None:  # and for buckets no longer used
        """A resumed run: buckets the app mounts or links now that the journal has no
        pair for (added between two runs) are moved too while the switch has not begun
        (the data phases run again for every pair: each skips what is done); after, one
        line. Before, they were left behind in the old zone and the run said done."""
        sv, req, st = self.survey, self.req, self.state
        if all(st.is_done(p) for p in PHASES):
            return  # done: what the app mounts since is the user's business
        used = {b.addon_id for b in sv.buckets}
        dropped = [p for p in st.pairs if p.old_id not in used]
        if dropped and st.steps is None:
            # Unlinked and unmounted since the last run: the user's choice, not undone
            # (it was moved and linked again; deleted, a 404 stopped every rerun).
            st.pairs = [p for p in st.pairs if p.old_id in used]
            self.save()
            for p in dropped:
                kept = f" (its new bucket {p.new_name} {p.new_id} is kept: delete it in " \
                    "the Console if unwanted)" if p.new_id else ""
                say(f"preflight: {p.old_name} is no longer used by the app: left out{kept}")
        known = {p.old_id for p in st.pairs} | {p.new_id for p in st.pairs if p.new_id}
        extra = [b for b in sv.buckets if b.addon_id not in known and b.region != req.zone]
        if not extra:
            return
        names = ", ".join(f"{b.name} ({', '.join(m.variable for m in b.mounts) or 'linked'})"
                          for b in extra)
        if st.steps is not None:
            raise FsmoveError(
                f"{sv.app.name} now also uses {names}, added after this migration's switch "
                "began: fsmove does not move it in this migration; remove that mount or "
                "link, rerun to finish, then move that bucket with fsmove cutover")
        taken = {str(a.get("name")) for a in sv.catalogue.values()} | {
            p.new_name for p in st.pairs}
        for b in extra:
            st.pairs.append(BucketPair(
                old_id=b.addon_id, old_name=b.name, plan=b.plan, old_host=b.host,
                linked=b.linked, new_name=new_bucket_name(b.name, req.zone, taken)))
        st.undo("create", "copy", "verify", "delta")
        self.save()
        say(f"preflight: {names}: used by the app since this migration started: moved too")

    def preflight(self) -> ExitCode:
        sv, req = self.survey, self.req
        if self.state.steps is None:  # every run until this one's switch has begun
            self._refuse_another_zones_unfinished_migration()
        if not self.resumed:
            if req.zone == sv.app.zone and all(b.region == req.zone for b in sv.buckets):
                raise UsageError(f"{sv.app.name} is already in {req.zone}, and so are its "
                                 "buckets: nothing to move")
        self.access.update(sv.access)
        fixed_now = not self.state.pairs
        if fixed_now:
            self._fix_pairs()
        else:
            self._pairs_for_new_mounts()
            self._buckets_given_late()
        # Once the catch-up is done the old buckets are needed no more (the README says
        # to delete them then): a rerun reads and reaches the new ones alone (before
        # session 34 it stopped on the deleted old bucket, 404, exit 1).
        olds = [] if self.state.is_done("catchup") else [p.old_id for p in self.state.pairs]
        ids = olds + [p.new_id for p in self.state.pairs if p.new_id]
        self._fill_access(ids)
        for pair in self.state.pairs:
            if pair.new_id and pair.new_host != self.access[pair.new_id].host:
                # A journal of an earlier version could hold the id alone (_adopt).
                pair.new_host = self.access[pair.new_id].host
                self.save()
        self._refuse_shared_buckets(first_run=fixed_now)
        event_loop.run(_reach_all([(self._name_of(i), self.access[i]) for i in ids],
                               req.connect))
        if fixed_now and not req.dry_run:
            self._refuse_full_given_buckets()
        say(f"{sv.app.name} ({sv.app.id}) in {sv.app.owner_text}, zone "
             f"{self.state.from_zone} -> {req.zone}, {sv.app.instance_type}")
        for pair in self.state.pairs:
            mounts = ", ".join(m.variable for m in self._mounts_of(pair)) or "no variable"
            how = "linked" if pair.linked else "not linked"
            target = (f"{pair.new_name} ({pair.new_id}, given)" if pair.reused
                      else pair.new_id or f"new {pair.new_name} (plan {pair.plan})")
            say(f"  bucket {pair.old_name} ({pair.old_id}, plan {pair.plan}, {how}; mounted "
                 f"by {mounts}) -> {target}")
        for warning in sv.warnings:
            say(f"  ! {warning}")
        if not self.state.is_done("switch"):
            print_ttl_advice(sv.user_domains, checker=self.checker, say=say)
        self.outcome["preflight"] = f"{len(self.state.pairs)} bucket(s)"
        return ExitCode.OK

    def create(self) -> ExitCode:
        sv, req = self.survey, self.req
        for pair in self.state.pairs:
            if pair.new_id:
                continue
            if pair.creating:
                same = [a for a in sv.catalogue.values()
                        if a.get("name") == pair.new_name and a.get("region") == req.zone
                        and a.get("providerId") == "fs-bucket"]
                if len(same) > 1:
                    raise FsmoveError(
                        f"{len(same)} add-ons named {pair.new_name} exist in {req.zone}: keep "
                        "one, delete the others in the Console, then rerun")
                if same:
                    self._adopt(pair, str(same[0]["addonId"]))
                    say(f"create: {pair.new_name} ({pair.new_id}) exists already (made by "
                         "the run that stopped): kept")
                    continue
            pair.creating = True
            self.save()
            made = self.cli.addon_create_fs_bucket(pair.new_name, zone=req.zone,
                                                   plan=pair.plan, owner=sv.app.owner_id)
            if made is None:  # dry run
                continue
            env = {str(p.get("name")): str(p.get("value", "")) for p in made.get("env") or []
                   if isinstance(p, dict)}
            bucket = bucket_from_env(str(made["id"]), env)
            if bucket is not None:
                self.access[str(made["id"])] = bucket
            self._adopt(pair, str(made["id"]))
            say(f"create: {pair.new_name} ({pair.new_id}) in {req.zone}, plan {pair.plan}")
        if not req.dry_run:
            ids = [p.new_id for p in self.state.pairs if p.new_id]
            self._fill_access(ids)
            event_loop.run(_reach_all([(self._name_of(i), self.access[i]) for i in ids],
                                   req.connect))
        return ExitCode.OK

    def _adopt(self, pair: BucketPair, addon_id: str) -> None:
        """Journal the new bucket with its host, never its id alone: a run whose read of
        the host failed left ``new_id`` without ``new_host``, and the rerun set
        ``CC_FS_BUCKET=/up:None`` and said done (session 34's adversarial pass). When the
        read fails, ``creating`` stays set: the rerun finds the bucket by its name."""
        try:
            host = self._bucket(addon_id).host
        except UsageError:
            # No BUCKET_HOST yet: a bucket just made, whose variables come a moment later
            # ("not an FS Bucket", exit 2, before).
            raise FsmoveError(
                f"create: {pair.new_name} ({addon_id}) exists, but its FTP access cannot be "
                "read yet; rerun in a minute (it is kept, never created twice)") from None
        pair.new_id, pair.new_host, pair.creating = addon_id, host, False
        self.save()
