"""What a PHP application is made of, read from the API (GET only): what its re-creation
must reproduce.

Every read is an in-process signed GET (fsmove/clever/api.py, a few milliseconds each,
run at once) rather than a `clever` child (~1-2 s each); the changes are made through
the `clever` commands that exist for them (fsmove/clever/php.py).

Decisions:

- **Scaling** is the app's ``instance`` (min/max instances, min/max flavors) and its
  ``separateBuild``/``buildFlavor``; **options** are the ones `clever config set` knows:
  zero-downtime (the API's ``homogeneous``, inverted), sticky-sessions, cancel-on-push,
  force-https, task (the instance lifetime). The name and description are not copied:
  the new app is named ``<old name>-<zone>`` (one name per app keeps every
  ``clever --app NAME`` unambiguous while both exist, and lets a rerun find the app it
  created when the answer to the creation was lost).
- **FTP-deployed**: the app's ``deployment.type`` is ``FTP``. Its **own FTP bucket** (the
  code) is the FS Bucket add-on linked to it that no ``CC_FS_BUCKET*`` variable mounts
  (a data bucket is mounted in a folder; the code bucket is the app's root; the hosts
  come from the linked add-ons' BUCKET_HOST); when several are, the one whose name says
  "ftp" or names the app. An app whose type is not FTP but
  that has exactly one such bucket named "…ftp…" is taken as FTP-deployed too (said in
  the output), since its code lives there.
- **Domains** moved: all but the app's own ``app-<id>.cleverapps.io``, which belongs to
  it. DNS records are printed only for the user's own domains (never ``*.cleverapps.io``).
"""

from __future__ import annotations

from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from typing import Any

from fsmove.errors import UsageError

from .api import CleverApi
from .app import mounts_of

FS_BUCKET = "fs-bucket"
CLEVERAPPS = ".cleverapps.io"
#: `clever config set` ids fsmove matches, in the order it sets them.
OPTION_IDS = ("force-https", "sticky-sessions", "zero-downtime", "cancel-on-push", "task")


@dataclass(frozen=True)
class Scaling:
    min_instances: int
    max_instances: int
    min_flavor: str
    max_flavor: str
    separate_build: bool
    build_flavor: str | None

    def all_args(self) -> list[str]:
        """Every `clever scale` option that sets this scaling."""
        return ["--min-instances", str(self.min_instances),
                "--max-instances", str(self.max_instances),
                "--min-flavor", self.min_flavor, "--max-flavor", self.max_flavor,
                "--build-flavor", self.build_flavor if self.separate_build and
                self.build_flavor else "disabled"]

    def scale_args(self, current: Scaling) -> list[str]:
        """`clever scale` options that make ``current`` this; [] when it already is.
        All four instance settings go together (the CLI clamps min/max against each
        other), the build flavor only when it differs."""
        args: list[str] = []
        if (self.min_instances, self.max_instances, self.min_flavor, self.max_flavor) != (
                current.min_instances, current.max_instances, current.min_flavor,
                current.max_flavor):
            args += ["--min-instances", str(self.min_instances),
                     "--max-instances", str(self.max_instances),
                     "--min-flavor", self.min_flavor, "--max-flavor", self.max_flavor]
        wanted = self.build_flavor if self.separate_build else None
        have = current.build_flavor if current.separate_build else None
        if wanted != have:
            args += ["--build-flavor", wanted or "disabled"]
        return args


@dataclass(frozen=True)
class AppView:
    """One application as the API describes it (either the old or the new one)."""

    id: str
    name: str
    owner: str
    zone: str
    deploy: str  # "FTP" | "GIT" | ...
    instance_type: str
    instance_version: str
    variant_id: str
    variant_slug: str
    scaling: Scaling
    options: dict[str, str]  # config id -> "true" | "false"
    git_url: str

    @property
    def is_php(self) -> bool:
        return "php" in (self.instance_type.lower(), self.variant_slug.lower())


@dataclass(frozen=True)
class LinkedAddon:
    id: str
    name: str
    provider: str
    region: str = ""


@dataclass(frozen=True)
class OldApp:
    view: AppView
    env: list[tuple[str, str]]  # its own variables, in the API's order
    addons: list[LinkedAddon]
    dependencies: list[tuple[str, str]]  # (app id, name)
    domains: list[str]  # every domain (fqdn, path prefix included)
    ftp: bool
    own_bucket: LinkedAddon | None
    ftp_reason: str
    #: CC_FS_BUCKET* mounts: variable -> (host, the linked add-on's region or "")
    mounts: dict[str, tuple[str, str]]
    #: The own FTP bucket's BUCKET_HOST ("" when unknown).
    own_bucket_host: str = ""

    @property
    def addons_to_link(self) -> list[LinkedAddon]:
        """Every linked add-on but the app's own FTP bucket (the new app has its own)."""
        own = self.own_bucket.id if self.own_bucket else None
        return [a for a in self.addons if a.id != own]

    @property
    def domains_to_move(self) -> list[str]:
        own = default_domain(self.view.id)
        return [d for d in self.domains if d.rstrip("/").lower() != own]


def default_domain(app_id: str) -> str:
    """The ``app-<uuid>.cleverapps.io`` domain the platform gives every app."""
    return f"app-{app_id.removeprefix('app_')}{CLEVERAPPS}".lower()


def _flavor(value: Any) -> str | None:
    if isinstance(value, dict):
        return str(value.get("name")) if value.get("name") else None
    return str(value) if value else None


def app_view(data: dict[str, Any], owner: str) -> AppView:
    instance = data.get("instance") if isinstance(data.get("instance"), dict) else {}
    variant = instance.get("variant") if isinstance(instance.get("variant"), dict) else {}
    deployment = data.get("deployment") if isinstance(data.get("deployment"), dict) else {}
    homogeneous = bool(data.get("homogeneous"))
    lifetime = str(instance.get("lifetime") or data.get("instanceLifetime") or "REGULAR")
    options = {
        "force-https": str(str(data.get("forceHttps")).upper() == "ENABLED").lower(),
        "sticky-sessions": str(bool(data.get("stickySessions"))).lower(),
        "zero-downtime": str(not homogeneous).lower(),
        "cancel-on-push": str(bool(data.get("cancelOnPush"))).lower(),
        "task": str(lifetime == "TASK").lower(),
    }
    return AppView(
        id=str(data.get("id")), name=str(data.get("name")), owner=owner,
        zone=str(data.get("zone") or "?"), deploy=str(deployment.get("type") or "").upper(),
        instance_type=str(instance.get("type") or ""),
        instance_version=str(instance.get("version") or ""),
        variant_id=str(variant.get("id") or ""), variant_slug=str(variant.get("slug") or ""),
        scaling=Scaling(
            min_instances=int(instance.get("minInstances") or 1),
            max_instances=int(instance.get("maxInstances") or 1),
            min_flavor=_flavor(instance.get("minFlavor")) or "XS",
            max_flavor=_flavor(instance.get("maxFlavor")) or "XS",
            separate_build=bool(data.get("separateBuild")),
            build_flavor=_flavor(data.get("buildFlavor")),
        ),
        options=options,
        git_url=str(deployment.get("url") or deployment.get("httpUrl") or ""),
    )


def _list(data: Any) -> list[dict[str, Any]]:
    return [d for d in data if isinstance(d, dict)] if isinstance(data, list) else []


def read_app(api: CleverApi, owner: str, app_id: str) -> AppView:
    return app_view(api.application(owner, app_id), owner)


def linked_addons(api: CleverApi, owner: str, app_id: str) -> list[LinkedAddon]:
    data = api.get(api.application_path(owner, app_id) + "/addons")
    return [LinkedAddon(id=str(d.get("id")), name=str(d.get("name") or d.get("id")),
                        provider=str((d.get("provider") or {}).get("id") or ""),
                        region=str(d.get("region") or ""))
            for d in _list(data)]


def dependencies(api: CleverApi, owner: str, app_id: str) -> list[tuple[str, str]]:
    data = api.get(api.application_path(owner, app_id) + "/dependencies")
    return [(str(d.get("id")), str(d.get("name") or d.get("id"))) for d in _list(data)]


def domains(api: CleverApi, owner: str, app_id: str) -> list[str]:
    data = api.get(api.application_path(owner, app_id) + "/vhosts")
    return [str(d["fqdn"]) for d in _list(data) if d.get("fqdn")]


def deployments(api: CleverApi, owner: str, app_id: str) -> list[dict[str, Any]]:
    """Newest first, as the API lists them."""
    return _list(api.get(api.application_path(owner, app_id) + "/deployments"))


def bucket_hosts(api: CleverApi, owner: str, app_id: str) -> dict[str, str]:
    """BUCKET_HOST of every linked add-on that has one (add-on id -> host); nothing else
    of the add-ons' variables (passwords) is kept."""
    data = api.get(api.application_path(owner, app_id) + "/addons/env")
    hosts: dict[str, str] = {}
    for entry in _list(data):
        for pair in _list(entry.get("env")):
            if pair.get("name") == "BUCKET_HOST" and pair.get("value"):
                hosts[str(entry.get("addon_id"))] = str(pair["value"])
    return hosts


def survey(api: CleverApi, owner: str, app_id: str) -> OldApp:
    """The old application, everything its re-creation needs (seven GETs, at once)."""
    path = api.application_path(owner, app_id)
    with ThreadPoolExecutor(max_workers=7) as pool:
        f_app = pool.submit(read_app, api, owner, app_id)
        f_env = pool.submit(api.get, path + "/env")
        f_addons = pool.submit(linked_addons, api, owner, app_id)
        f_hosts = pool.submit(bucket_hosts, api, owner, app_id)
        f_deps = pool.submit(dependencies, api, owner, app_id)
        f_domains = pool.submit(domains, api, owner, app_id)
        view, env_data = f_app.result(), f_env.result()
        addons, deps, doms = f_addons.result(), f_deps.result(), f_domains.result()
        hosts = f_hosts.result()
    env = [(str(p["name"]), str(p.get("value", ""))) for p in _list(env_data) if "name" in p]
    mounted = {m.host for m in mounts_of(dict(env))}
    unmounted = [a for a in addons if a.provider == FS_BUCKET and hosts.get(a.id) not in mounted]
    ftp, own, reason = _code_bucket(view, unmounted)
    region_of_host = {hosts[a.id]: a.region for a in addons if a.id in hosts}
    mounts = {m.variable: (m.host, region_of_host.get(m.host, "")) for m in mounts_of(dict(env))}
    return OldApp(view=view, env=env, addons=addons, dependencies=deps, domains=doms,
                  ftp=ftp, own_bucket=own, ftp_reason=reason, mounts=mounts,
                  own_bucket_host=hosts.get(own.id, "") if own else "")


def _code_bucket(view: AppView, candidates: list[LinkedAddon],
                 ) -> tuple[bool, LinkedAddon | None, str]:
    """(FTP-deployed?, its own FTP bucket, why) among the linked FS Buckets that no
    CC_FS_BUCKET* mounts: see the module docstring."""
    if not candidates:
        if view.deploy == "FTP":
            raise UsageError(f"{view.name} is deployed by FTP but no FS Bucket add-on that "
                             "could hold its code is linked to it; check it in the Console")
        return False, None, "deployed by git"
    hinted = [a for a in candidates
              if "ftp" in a.name.lower() or view.name.lower() in a.name.lower()]
    if view.deploy == "FTP":
        if len(candidates) == 1:
            return True, candidates[0], "deployed by FTP"
        if len(hinted) == 1:
            return True, hinted[0], "deployed by FTP"
        names = ", ".join(f"{a.name} ({a.id})" for a in candidates)
        raise UsageError(f"{view.name} is deployed by FTP and has several FS Buckets linked "
                         f"({names}); fsmove cannot tell which holds the code")
    ftp_named = [a for a in hinted if "ftp" in a.name.lower()]
    if len(ftp_named) == 1:
        return True, ftp_named[0], (f"deployment type {view.deploy or 'unknown'}, but its "
                                    f"FS Bucket {ftp_named[0].name} holds FTP code")
    return False, None, "deployed by git"
