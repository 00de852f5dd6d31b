"""Step 1 of a PHP re-creation: **create** the new app in the zone (FTP-deployed through
the API, git-deployed with `clever create`), never twice: the journal says the creation
started before it is asked for, and a rerun looks for the app by its name first."""

from __future__ import annotations

import json
import tempfile
import time
from dataclasses import replace
from typing import Any

from fsmove.clever.api import segment
from fsmove.clever.clever_tool import CleverCommand, CleverError
from fsmove.clever.php_run import (
    BUCKET_POLL,
    BUCKET_WAIT,
    PhpRun,
)
from fsmove.clever.php_survey import (
    FS_BUCKET,
    LinkedAddon,
    OldApp,
    linked_addons,
)
from fsmove.errors import UsageError
from fsmove.exitcodes import ExitCode


class CreateStep(PhpRun):
    def _create(self) -> ExitCode:
        st, old = self.st, self.old
        assert old is not None
        if st.new_app is None:
            found = self._created_earlier() if st.create_started else None
            if found is None:
                before = self._owner_buckets() if st.ftp and not self.req.dry_run else ()
                apps = self._owner_apps()
                taken = [str(a.get("id")) for a in apps if a.get("name") == st.new_name]
                if taken and not st.create_started:
                    raise UsageError(
                        f"an application named {st.new_name} exists already in the owner's "
                        f"account ({', '.join(taken)}); fsmove names the new app {st.new_name} "
                        "and would not tell them apart: rename or delete that one, then rerun")
                self._save(replace(st, create_started=True, buckets_before=before,
                                   apps_before=tuple(str(a.get("id")) for a in apps)))
                found = self._create_app(old)
                if found is None:  # dry run
                    return ExitCode.OK
            else:
                self.say(f"  found {st.new_name} ({found}), created by an earlier run")
            self._save(replace(self.st, new_app=found))
        if self.st.ftp and self.st.new_bucket is None:
            self._save(replace(self.st, new_bucket=self._own_bucket_of_new_app()))
        return ExitCode.OK

    def _owner_apps(self) -> list[dict[str, Any]]:
        st = self.st
        try:
            data = self.api.get(f"/v2/organisations/{segment(st.owner)}/applications")
        except CleverError:
            if not st.owner.startswith("user_"):
                raise
            data = self.api.get("/v2/self/applications")  # the personal space
        return [a for a in data if isinstance(a, dict)] if isinstance(data, list) else []

    def _created_earlier(self) -> str | None:
        """The app an earlier run created when its id was not journaled (killed, or the
        answer to the creation lost): the one named ``new_name`` in ZONE that was not
        there before the creation. By name alone, another app of that name (the user's)
        was adopted and overwritten: its variables replaced, its code mirrored with
        --delete, the domains moved onto it (session 34's adversarial pass)."""
        st = self.st
        before = set(st.apps_before or ())
        named = [a for a in self._owner_apps() if a.get("name") == st.new_name
                 and str(a.get("id")) not in before]
        if not named:
            return None
        if len(named) > 1 or named[0].get("zone") != st.zone:
            raise CleverError(
                f"{len(named)} application(s) named {st.new_name} exist "
                f"({', '.join(str(a.get('id')) for a in named)}), not exactly one in "
                f"{st.zone}: keep the right one, delete or rename the others, then rerun")
        return str(named[0]["id"])

    def _create_app(self, old: OldApp) -> str | None:
        st, v = self.st, old.view
        if st.ftp:
            body = {
                "deploy": "ftp", "name": st.new_name, "description": st.new_name,
                "zone": st.zone, "instanceType": v.instance_type,
                "instanceVersion": v.instance_version, "instanceVariant": v.variant_id,
                "minInstances": v.scaling.min_instances,
                "maxInstances": v.scaling.max_instances,
                "minFlavor": v.scaling.min_flavor, "maxFlavor": v.scaling.max_flavor,
                "instanceLifetime": "REGULAR",
            }
            path = f"/v2/organisations/{segment(st.owner)}/applications"
            if self.req.dry_run:
                self.say(f"would request: POST {path} {json.dumps(body)}")
                return None
            return str(self.api.create_application(st.owner, body)["id"])
        args = ["create", "--type", "php", "--region", st.zone]
        if not st.owner.startswith("user_"):
            args += ["--org", st.owner]
        args += [st.new_name, "-F", "json"]
        with tempfile.TemporaryDirectory(prefix="fsmove-create-") as folder:
            created = self.cli.run(CleverCommand(tuple(args), mutating=True), parse_json=True,
                                   cwd=folder)
        if created is None:  # dry run
            return None
        if not isinstance(created, dict) or not created.get("id"):
            raise CleverError(f"`clever create` printed no application id for {st.new_name}; "
                              "look for it in the Console before rerunning")
        return str(created["id"])

    def _owner_buckets(self) -> tuple[str, ...]:
        """Ids of the owner's FS Bucket add-ons (journaled before the creation; only a
        fallback to tell the new app's own bucket, so an API that cannot list them
        gives none)."""
        try:
            data = self.api.get(f"/v2/organisations/{segment(self.owner)}/addons")
        except CleverError:
            return ()
        return tuple(sorted(
            str(a.get("id")) for a in data if isinstance(a, dict)
            and (a.get("provider") or {}).get("id") == FS_BUCKET)) if isinstance(data,
                                                                             list) else ()

    def _own_bucket_of_new_app(self) -> str:
        """The FS Bucket the platform gave the new FTP app: the only one linked to it
        right after its creation (nothing is linked before this is recorded), else the
        only FS Bucket of the owner that did not exist before the creation."""
        deadline = time.monotonic() + BUCKET_WAIT
        while True:
            buckets = [a for a in linked_addons(self.api, self.owner, self.new_app)
                       if a.provider == FS_BUCKET]
            if not buckets:
                fresh = set(self._owner_buckets()) - set(self.st.buckets_before)
                buckets = [LinkedAddon(id=i, name=i, provider=FS_BUCKET) for i in fresh]
            if len(buckets) == 1:
                self.say(f"  its own FTP bucket: {buckets[0].name} ({buckets[0].id})")
                return buckets[0].id
            if len(buckets) > 1:
                raise CleverError(
                    f"the new app {self.new_app} has {len(buckets)} FS Buckets linked "
                    f"({', '.join(b.id for b in buckets)}); fsmove cannot tell its own FTP "
                    "bucket: check it in the Console")
            if time.monotonic() >= deadline:
                raise CleverError(
                    f"the new FTP app {self.new_app} has no FS Bucket for its code after "
                    f"{BUCKET_WAIT:.0f} s; rerun in a while")
            time.sleep(BUCKET_POLL)
