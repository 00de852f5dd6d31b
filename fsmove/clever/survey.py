"""What an app is and mounts, read once per run: the app, its env, its owner's add-ons,
its domains, and every FS Bucket it mounts with each one's FTP access.

A bucket is the app's when it is **linked** (an fs-bucket add-on among the app's linked
add-ons) **or mounted** (its host is in a ``CC_FS_BUCKET*`` variable, or in
``clevercloud/buckets.json`` when ``--repo`` is given), linked or not. A mounted host is
mapped to its add-on by ``BUCKET_HOST`` among the owner's fs-bucket add-ons; a host no
add-on of the owner has is an error (exit 2): fsmove cannot create its successor nor
read it.

Calls: the app through the API (``GET /v2/summary`` + the app: the CLI has no command
that finds a personal-space app with its zone); then three `clever` reads at once
(``env``, ``addon list --org OWNER``, ``domain``); then the variables of the owner's
fs-bucket add-ons that are not linked (the linked ones' hosts and passwords come with
``env``), through the API in this process, at once: an owner may have dozens of buckets,
and a `clever addon env` each would cost a Node start each (seconds). Everything else in
a run reuses this: ``Survey.access`` holds every bucket read, carried through the
phases.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from fsmove.errors import UsageError

from . import children
from .api import CleverApi
from .app import AppInfo, Mount, find_app, mounts_of
from .bucket import FS_BUCKET_PROVIDER, Bucket, bucket_from_env
from .clever_tool import AppEnv, CleverCli, Domain
from .sharing import host_key

#: Clever-managed domains: never the user's to set at a DNS provider.
CLEVER_DOMAIN_SUFFIXES = (".cleverapps.io",)


def new_bucket_name(old_name: str, zone: str, taken: set[str]) -> str:
    """``OLD-ZONE``, or ``OLD-ZONE-2``… when the owner has an add-on of that name: the
    name must be unique, it is how a run that died mid-create finds its bucket."""
    base = f"{old_name}-{zone}"
    name, n = base, 2
    while name in taken:
        name, n = f"{base}-{n}", n + 1
    taken.add(name)
    return name


def is_users_domain(hostname: str) -> bool:
    host = hostname.rstrip(".").lower()
    return not any(host.endswith(s) for s in CLEVER_DOMAIN_SUFFIXES)


@dataclass(frozen=True)
class AppBucket:
    """One FS Bucket the app uses."""

    addon_id: str
    real_id: str
    name: str
    plan: str  # the plan's slug, as `addon create --plan` takes it
    region: str
    host: str
    linked: bool
    mounts: tuple[Mount, ...]
    in_buckets_json: tuple[str, ...] = ()  # the folders buckets.json mounts it at


@dataclass(frozen=True)
class BucketsJsonEntry:
    bucket_host: str
    folder: str
    apps: tuple[str, ...]


@dataclass
class Survey:
    app: AppInfo
    env: AppEnv
    catalogue: dict[str, dict[str, Any]]  # the owner's add-ons by id (`addon list`)
    domains: list[Domain]
    buckets: list[AppBucket]
    buckets_json: tuple[BucketsJsonEntry, ...] | None
    warnings: list[str] = field(default_factory=list)
    #: The FTP access of every FS Bucket read (add-on id -> Bucket), passwords included.
    access: dict[str, Bucket] = field(default_factory=dict, repr=False)

    @property
    def user_domains(self) -> list[Domain]:
        return [d for d in self.domains if is_users_domain(d.hostname)]

    def find_addon(self, text: str) -> dict[str, Any]:
        """The owner's add-on whose id, real id or name is ``text`` (usage error when
        none or several)."""
        found = [a for a in self.catalogue.values()
                 if text in (a.get("addonId"), a.get("realId"), a.get("name"))]
        if not found:
            raise UsageError(f"no add-on {text!r} in {self.app.owner_text} (the app's "
                             "owner; `clever addon list` shows them)")
        if len(found) > 1:
            ids = ", ".join(sorted(str(a.get("addonId")) for a in found))
            raise UsageError(f"{len(found)} add-ons are named {text!r} ({ids}); give the id")
        return found[0]


def read_buckets_json(repo: Path) -> tuple[tuple[BucketsJsonEntry, ...] | None, list[str]]:
    path = repo / "clevercloud" / "buckets.json"
    if not repo.is_dir():
        raise UsageError(f"--repo {repo}: no such folder; give the app's repository folder")
    if not path.exists():
        return None, []
    try:
        data = json.loads(path.read_text())
        entries = tuple(
            BucketsJsonEntry(bucket_host=str(e["bucket_host"]), folder=str(e.get("folder", "")),
                             apps=tuple(str(a) for a in e.get("apps") or ()))
            for e in data
        )
    except (ValueError, TypeError, KeyError, OSError) as exc:
        raise UsageError(f"{path} cannot be read ({exc.__class__.__name__}: {exc}); it "
                         "overrides CC_FS_BUCKET*: fix it, or remove it, then rerun") from None
    return entries, [f"{path} overrides the CC_FS_BUCKET* variables: after the switch, "
                     "change its bucket_host entries to the new hosts in the repository "
                     "and push (fsmove prints them)"]


def survey(cli: CleverCli, api: CleverApi, app: str, *, repo: Path | None = None) -> Survey:
    _ = cli.executable  # no `clever` at all: exit 5 now, before any request
    info = find_app(api, app)
    env, listed, domains = children.parallel([
        lambda: cli.app_env(info.id),
        lambda: cli.addon_list(info.owner_id),
        lambda: cli.domains(info.id),
    ])
    catalogue = {str(a.get("addonId")): a for a in listed if a.get("addonId")}
    buckets_json, warnings = (None, []) if repo is None else read_buckets_json(repo)
    mounts = mounts_of(env.own)
    json_hosts = {e.bucket_host: e for e in buckets_json or ()
                  if not e.apps or info.id in e.apps or info.name in e.apps}
    # Hosts and credentials: linked buckets from `env`, the others from `addon env`.
    access: dict[str, Bucket] = {}
    for addon_id, values in env.addons.items():
        linked = bucket_from_env(addon_id, {**values, **env.addon_secrets.get(addon_id, {})})
        if linked is not None:
            access[addon_id] = linked
    wanted_hosts = {m.host for m in mounts} | set(json_hosts)
    known_hosts = {b.host for b in access.values()}
    unlinked = [i for i, a in catalogue.items()
                if a.get("providerId") == FS_BUCKET_PROVIDER and i not in access]
    if wanted_hosts - known_hosts and unlinked:
        envs = children.parallel([lambda i=i: api.addon_env(info.owner_id, i)
                                  for i in unlinked])
        for addon_id, values in zip(unlinked, envs, strict=True):
            found = bucket_from_env(addon_id, values)
            if found is not None:
                access[addon_id] = found
    by_host: dict[str, list[str]] = {}
    for addon_id, bucket in access.items():
        by_host.setdefault(bucket.host, []).append(addon_id)
    for host in sorted(wanted_hosts):
        owners = by_host.get(host, [])
        where = [m.variable for m in mounts if m.host == host] or ["clevercloud/buckets.json"]
        if not owners:
            alike = sorted(h for h in by_host if host_key(h) == host_key(host))
            if alike:
                raise UsageError(
                    f"{', '.join(where)} mounts {host}, spelt otherwise than the bucket "
                    f"host {alike[0]}: write it as {alike[0]} (`clever env set`), then "
                    "rerun")
            raise UsageError(
                f"{', '.join(where)} mounts {host}, which is no FS Bucket of "
                f"{info.owner_text}: fsmove cannot copy it (is it another owner's "
                "bucket? move it from there)")
        if len(owners) > 1:
            raise UsageError(f"{host} is the BUCKET_HOST of {len(owners)} add-ons "
                             f"({', '.join(sorted(owners))}); cannot tell which one "
                             f"{', '.join(where)} mounts")
    linked_ids = set(env.addons)
    used = [i for i, b in access.items()
            if (i in linked_ids and catalogue.get(i, {}).get("providerId")
                in (FS_BUCKET_PROVIDER, None)) or b.host in wanted_hosts]
    buckets: list[AppBucket] = []
    for addon_id in sorted(used, key=lambda i: str(catalogue.get(i, {}).get("name") or i)):
        entry, bucket = catalogue.get(addon_id, {}), access[addon_id]
        json_entries = [e for h, e in json_hosts.items() if h == bucket.host]
        buckets.append(AppBucket(
            addon_id=addon_id, real_id=str(entry.get("realId") or ""),
            name=str(entry.get("name") or addon_id), plan=str(entry.get("planSlug") or ""),
            region=str(entry.get("region") or "?"), host=bucket.host,
            linked=addon_id in linked_ids,
            mounts=tuple(m for m in mounts if m.host == bucket.host),
            in_buckets_json=tuple(e.folder for e in json_entries)))
    for b in buckets:
        if not b.plan:
            raise UsageError(f"`clever addon list` gives no plan for {b.name} ({b.addon_id}); "
                             "fsmove keeps each bucket's plan and cannot guess it")
    return Survey(app=info, env=env, catalogue=catalogue, domains=domains, buckets=buckets,
                  buckets_json=buckets_json, warnings=warnings, access=access)
