"""`fsmove plan --app APP --to ZONE`: what moving APP to ZONE involves. Read-only.

Everything comes from read-only `clever` commands (``applications list``, ``service
--only-addons``, ``env``, ``domain``, ``addon list --org``); nothing is created, linked
or set. Add-ons are classified by provider id (falling back to the type name):

- moved by Clever Cloud's Migration Tool: PostgreSQL, MySQL, MongoDB, Redis;
- need Clever Cloud support: Jenkins, Elasticsearch, Cellar, Pulsar;
- FS Buckets: fsmove copies them (with the ``clever addon create fs-bucket`` command
  making the new one);
- anything else: to check by hand.

``clevercloud/buckets.json`` in the app's repository overrides the ``CC_FS_BUCKET*``
variables when present; only ``--repo PATH`` lets fsmove look, so without it the plan
says to check.

With ``--nameserver IP[:PORT]`` (the domains' own server: it shows TTLs as configured,
where a caching resolver shows what is left) the plan adds what each domain points at
now, its TTL and the TTL advice (fsmove/clever/dns.py). Without it, no DNS is asked.
"""

from __future__ import annotations

import json
from concurrent.futures import ThreadPoolExecutor
from dataclasses import asdict, dataclass, field
from enum import StrEnum
from pathlib import Path
from typing import Any

from fsmove.errors import UsageError

from .app import AppInfo, Mount, find_app, mounts_of
from .bucket import FS_BUCKET_PROVIDER
from .cli import AppEnv, CleverCli
from .dns import DnsChecker, DnsError

#: Zones where FS Buckets exist (FACTS.md).
ZONES = ("par", "ldn", "mtl", "rbx", "scw", "sgp", "syd", "wsw")
#: The TTL the zone-migration guide asks for before a DNS switch.
CUTOVER_TTL = 60


class AddonKind(StrEnum):
    MIGRATION_TOOL = "migration-tool"
    SUPPORT = "support"
    FS_BUCKET = "fs-bucket"
    OTHER = "other"


KIND_TEXT = {
    AddonKind.MIGRATION_TOOL: "moved by Clever Cloud's Migration Tool",
    AddonKind.SUPPORT: "needs Clever Cloud support to move",
    AddonKind.FS_BUCKET: "copied by fsmove",
    AddonKind.OTHER: "check by hand",
}
_WORDS = {
    AddonKind.MIGRATION_TOOL: ("postgres", "mysql", "mongo", "redis"),
    AddonKind.SUPPORT: ("jenkins", "elastic", "es-addon", "cellar", "pulsar"),
}


def classify(provider_id: str, type_name: str) -> AddonKind:
    if provider_id == FS_BUCKET_PROVIDER:
        return AddonKind.FS_BUCKET
    text = f"{provider_id} {type_name}".lower()
    for kind, words in _WORDS.items():
        if any(word in text for word in words):
            return kind
    if "fs bucket" in text or "fsbucket" in text:
        return AddonKind.FS_BUCKET
    return AddonKind.OTHER


@dataclass(frozen=True)
class PlannedAddon:
    id: str
    real_id: str
    name: str
    type: str
    region: str
    kind: AddonKind
    #: FS Buckets: BUCKET_HOST, the mounts naming it, the command making its successor.
    bucket_host: str | None = None
    mounted_by: tuple[str, ...] = ()
    create_command: str | None = None


@dataclass(frozen=True)
class BucketsJsonEntry:
    bucket_host: str
    folder: str
    apps: tuple[str, ...]


@dataclass(frozen=True)
class DomainDns:
    """What a domain's name server answers now (only with ``--nameserver``)."""

    name: str
    rtype: str  # "CNAME" or "A" (then AAAA values may follow), "" when no answer
    values: tuple[str, ...]
    ttl: int | None
    advice: str


@dataclass(frozen=True)
class Plan:
    app: AppInfo
    to_zone: str
    addons: tuple[PlannedAddon, ...]
    mounts: tuple[Mount, ...]
    domains: tuple[str, ...]
    buckets_json: tuple[BucketsJsonEntry, ...] | None  # None: not looked at or absent
    warnings: tuple[str, ...]
    steps: tuple[str, ...] = field(default=())
    dns: tuple[DomainDns, ...] = field(default=())

    def as_json(self) -> dict[str, Any]:
        data = asdict(self)
        data["app"]["is_php"] = self.app.is_php
        return data


def _read_buckets_json(repo: Path) -> tuple[tuple[BucketsJsonEntry, ...] | None, list[str]]:
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
        return None, [f"{path} exists but cannot be read ({exc.__class__.__name__}): "
                      "it overrides CC_FS_BUCKET*; fix or remove it before the cut-over"]
    return entries, [f"{path} overrides the CC_FS_BUCKET* variables: after the copy, "
                     "change its bucket_host entries in the repository and push"]


def _steps(plan_app: AppInfo, to_zone: str, addons: list[PlannedAddon],
           domains: tuple[str, ...]) -> list[str]:
    steps: list[str] = []
    if domains:
        steps.append(f"lower the DNS TTL of {', '.join(domains)} to {CUTOVER_TTL} s and wait "
                     "the old TTL (`fsmove dns DOMAIN --nameserver NS` shows it)")
    if plan_app.is_php:
        steps.append(f"re-create the PHP app in {to_zone} (PHP apps cannot change zone), "
                     "copy its env (`clever env -F json`, then `clever env import --json`), "
                     "re-link its services, match scaling, push the code")
    for addon in addons:
        if addon.kind is AddonKind.MIGRATION_TOOL:
            steps.append(f"move {addon.name} ({addon.type}) with the Migration Tool in the "
                         "Console")
        elif addon.kind is AddonKind.SUPPORT:
            steps.append(f"ask Clever Cloud support to move {addon.name} ({addon.type})")
    for addon in addons:
        if addon.kind is not AddonKind.FS_BUCKET:
            continue
        new = f"NEW_{addon.name.upper().replace('-', '_')}_ID"
        steps += [
            f"create the new bucket: {addon.create_command}  (note its id: {new})",
            f"copy while the app runs: fsmove copy clever://{addon.id} clever://{new}",
            f"verify: fsmove verify clever://{addon.id} clever://{new} --report migration.html",
            f"last delta pass: fsmove copy clever://{addon.id} clever://{new} --delete",
            f"cut over: fsmove cutover --app {'NEW_APP_ID' if plan_app.is_php else plan_app.id}"
            f" --from {addon.id} --to {new}",
        ]
    if domains:
        steps.append(f"DNS: point {', '.join(domains)} at "
                     f"CNAME domain.{to_zone}.clever-cloud.com., then restore the TTL")
    return steps


def build_plan(cli: CleverCli, *, app: str, to_zone: str, repo: Path | None = None,
               nameservers: tuple[str, ...] = ()) -> Plan:
    if to_zone not in ZONES:
        raise UsageError(f"--to {to_zone!r}: not a zone with FS Buckets; use one of "
                         + ", ".join(ZONES))
    checker = DnsChecker(list(nameservers)) if nameservers else None
    with ThreadPoolExecutor(max_workers=4) as pool:
        f_app = pool.submit(find_app, cli, app)
        f_linked = pool.submit(cli.linked_addons, app)
        f_env = pool.submit(cli.app_env, app)
        f_domains = pool.submit(cli.domains, app)
        info = f_app.result()
        linked, env, domains = f_linked.result(), f_env.result(), f_domains.result()
    catalogue = {str(a.get("addonId")): a for a in cli.addon_list(info.org_id)}
    mounts = mounts_of(env.own)
    addons = [_planned(a, catalogue, env, mounts, info, to_zone) for a in linked]
    warnings: list[str] = []
    if info.zone == to_zone:
        warnings.append(f"{info.name} is already in {to_zone}")
    if info.is_php:
        warnings.append(f"{info.name} is a PHP app: PHP apps cannot change zone, it must be "
                        "re-created (a PHP app deployed by FTP keeps its code in its own "
                        "FS Bucket)")
    hosts = {a.bucket_host for a in addons if a.bucket_host}
    for mount in mounts:
        if mount.host not in hosts:
            warnings.append(f"{mount.variable} mounts {mount.host}, which is not a bucket "
                            "linked to this app")
    buckets_json = None
    if repo is None:
        warnings.append("clevercloud/buckets.json in the app's repository, when present, "
                        "overrides the CC_FS_BUCKET* variables: pass --repo PATH to check")
    else:
        buckets_json, more = _read_buckets_json(repo)
        warnings += more
    plain_domains = tuple(dict.fromkeys(d.hostname for d in domains))
    dns_now: list[DomainDns] = []
    if checker is not None:
        for host in plain_domains:
            try:
                now, ttl = checker.current_target(host), checker.ttl_check(host)
            except DnsError as exc:
                warnings.append(str(exc))
                continue
            dns_now.append(DomainDns(name=now.name, rtype=now.rtype if now.values else "",
                                     values=now.values, ttl=ttl.ttl, advice=ttl.advice))
    return Plan(app=info, to_zone=to_zone, addons=tuple(addons), mounts=tuple(mounts),
                domains=plain_domains, buckets_json=buckets_json, warnings=tuple(warnings),
                steps=tuple(_steps(info, to_zone, addons, plain_domains)),
                dns=tuple(dns_now))


def _planned(linked: dict[str, Any], catalogue: dict[str, dict[str, Any]], env: AppEnv,
             mounts: list[Mount], info: AppInfo, to_zone: str) -> PlannedAddon:
    addon_id = str(linked.get("id"))
    entry = catalogue.get(addon_id, {})
    provider = str(entry.get("providerId") or "")
    type_name = str(entry.get("type") or provider or "?")
    kind = classify(provider, type_name)
    name = str(linked.get("name") or entry.get("name") or addon_id)
    host = env.addons.get(addon_id, {}).get("BUCKET_HOST")
    if kind is AddonKind.FS_BUCKET:
        create = (f"clever addon create fs-bucket {name}-{to_zone} --region {to_zone} "
                  f"--org {info.org_id} --yes -F json")
        return PlannedAddon(
            id=addon_id, real_id=str(linked.get("realId") or ""), name=name, type=type_name,
            region=str(entry.get("region") or "?"), kind=kind, bucket_host=host,
            mounted_by=tuple(m.variable for m in mounts if host and m.host == host),
            create_command=create,
        )
    return PlannedAddon(id=addon_id, real_id=str(linked.get("realId") or ""), name=name,
                        type=type_name, region=str(entry.get("region") or "?"), kind=kind)


def render_plan(plan: Plan) -> str:
    """The plan as a person reads it."""
    app = plan.app
    lines = [
        f"Application {app.name} ({app.id}), zone {app.zone} → {plan.to_zone}, "
        f"instance type {app.instance_type}{' (PHP: must be re-created)' if app.is_php else ''}",
        "",
        "Add-ons:",
    ]
    if not plan.addons:
        lines.append("  (none linked)")
    for addon in plan.addons:
        lines.append(f"  {addon.name} ({addon.type}, {addon.region}, {addon.id}): "
                     f"{KIND_TEXT[addon.kind]}")
        if addon.kind is AddonKind.FS_BUCKET:
            lines.append(f"    host {addon.bucket_host or '?'}; mounted by "
                         f"{', '.join(addon.mounted_by) or 'no CC_FS_BUCKET* variable'}")
            lines.append(f"    new bucket: {addon.create_command}")
    lines += ["", "Bucket mounts (CC_FS_BUCKET*):"]
    lines += [f"  {m.variable}={m.value}" for m in plan.mounts] or ["  (none)"]
    if plan.buckets_json is not None:
        lines += ["", "clevercloud/buckets.json (overrides the variables):"]
        lines += [f"  {e.folder} → {e.bucket_host} (apps: {', '.join(e.apps) or 'all'})"
                  for e in plan.buckets_json] or ["  (empty)"]
    lines += ["", "Domains:"]
    lines += [f"  {d}" for d in plan.domains] or ["  (none)"]
    for record in plan.dns:
        now = f"{record.rtype} {' '.join(record.values)}" if record.values else "no record"
        ttl = f", TTL {record.ttl} s" if record.ttl is not None else ""
        lines.append(f"  {record.name} now: {now}{ttl}; {record.advice}")
    if plan.warnings:
        lines += ["", "Warnings:"]
        lines += [f"  ! {w}" for w in plan.warnings]
    lines += ["", "Steps, in order:"]
    lines += [f"  {i}. {s}" for i, s in enumerate(plan.steps, 1)]
    lines += ["", "Nothing was changed."]
    return "\n".join(lines)
