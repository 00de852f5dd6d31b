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

from dataclasses import asdict, dataclass, field
from enum import StrEnum
from pathlib import Path
from typing import Any

from fsmove.errors import UsageError

from .api import CleverApi
from .app import AppInfo, Mount, mounts_of
from .bucket import FS_BUCKET_PROVIDER
from .clever_tool import CleverCli
from .dns import DnsChecker, DnsError
from .dns_advice import CUTOVER_TTL, record_lines, users_hosts
from .sharing import MovedBucket, describe, other_uses
from .survey import BucketsJsonEntry, Survey, new_bucket_name, survey

#: Zones where FS Buckets exist (FACTS.md).
ZONES = ("par", "ldn", "mtl", "rbx", "scw", "sgp", "syd", "wsw")


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
    plan: str = ""
    linked: bool = True


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
    records: tuple[str, ...] = field(default=())

    def as_json(self) -> dict[str, Any]:
        data = asdict(self)
        data["app"]["is_php"] = self.app.is_php
        return data


def create_command(name: str, *, zone: str, plan: str, owner: str) -> str:
    """The exact `clever addon create` fsmove migrate runs for a new bucket."""
    return (f"clever addon create fs-bucket {name} --region {zone} --plan {plan} "
            f"--org {owner} --yes -F json")


def _steps(sv: Survey, to_zone: str, addons: list[PlannedAddon], *,
           shared: bool = False) -> list[str]:
    app, hosts = sv.app, users_hosts(sv.domains)[0]
    steps: list[str] = []
    if hosts:
        steps.append(f"lower the DNS TTL of {', '.join(hosts)} to {CUTOVER_TTL} s and wait "
                     "the old TTL (`fsmove dns DOMAIN --nameserver NS` shows it)")
    for addon in addons:
        if addon.kind is AddonKind.MIGRATION_TOOL:
            steps.append(f"move {addon.name} ({addon.type}) with the Migration Tool in the "
                         "Console")
        elif addon.kind is AddonKind.SUPPORT:
            steps.append(f"ask Clever Cloud support to move {addon.name} ({addon.type})")
    if app.is_php:
        steps.append(f"re-create the PHP app in {to_zone} (PHP apps cannot change zone): "
                     f"fsmove migrate --app {app.id} --to {to_zone} --yes")
        if hosts:
            steps.append(f"DNS: {'; '.join(record_lines(sv.domains, to_zone))}; then "
                         "restore the TTL")
        return steps
    # In the order migrate takes them (by name).
    buckets = sorted((a for a in addons if a.kind is AddonKind.FS_BUCKET), key=lambda a: a.name)
    refused = ("refused while other apps may use its buckets (the warning above): "
               "README \"Apps sharing a bucket\", or add --split-shared; " if shared else "")
    steps.append(f"fsmove migrate --app {app.id} --to {to_zone} --yes  ({refused}every step "
                 "below; a rerun continues where it stopped)")
    steps += [f"  create: {a.create_command}" for a in buckets]
    steps += [f"  copy {a.name} -> its new bucket while the app runs, verify, final delta "
              "(--delete)" for a in buckets]
    steps.append(f"  switch: PUT /v2/organisations/{app.owner_id}/applications/{app.id} "
                 f'{{"zone": "{to_zone}"}} (the console\'s Zone → Save)')
    steps += [f"  switch: clever service link-addon NEW({a.name}) --app {app.id}"
              for a in buckets if a.linked]
    for a in buckets:
        steps += [f"  switch: clever env set {m} <{m} with the new host of {a.name}> "
                  f"--app {app.id}" for m in a.mounted_by]
    steps += [f"  switch: clever service unlink-addon {a.id} --app {app.id}  (kept, never "
              "deleted)" for a in buckets if a.linked]
    steps.append(f"  switch: clever restart --app {app.id} -q  (once)")
    steps.append("  catch-up: copy what the old instances wrote after the final delta")
    if hosts:
        steps.append(f"DNS: {'; '.join(record_lines(sv.domains, to_zone))}; then restore "
                     "the TTL")
    return steps


def build_plan(cli: CleverCli, *, app: str, to_zone: str, repo: Path | None = None,
               nameservers: tuple[str, ...] = ()) -> Plan:
    if to_zone not in ZONES:
        raise UsageError(f"--to {to_zone!r}: not a zone with FS Buckets; use one of "
                         + ", ".join(ZONES))
    checker = DnsChecker(list(nameservers)) if nameservers else None
    api = CleverApi.from_cli_environment()
    sv = survey(cli, api, app, repo=repo)
    info = sv.app
    taken = {str(a.get("name")) for a in sv.catalogue.values()}
    bucket_of = {b.addon_id: b for b in sv.buckets}
    addons: list[PlannedAddon] = []
    for addon_id in [*sv.env.addons, *(b.addon_id for b in sv.buckets
                                       if b.addon_id not in sv.env.addons)]:
        entry = sv.catalogue.get(addon_id, {})
        provider = str(entry.get("providerId") or "")
        type_name = str(entry.get("type") or provider or "?")
        name = str(entry.get("name") or addon_id)
        common = {"id": addon_id, "real_id": str(entry.get("realId") or ""), "name": name,
                  "type": type_name, "region": str(entry.get("region") or "?")}
        bucket = bucket_of.get(addon_id)
        if bucket is None:
            addons.append(PlannedAddon(**common, kind=classify(provider, type_name)))
            continue
        new_name = new_bucket_name(name, to_zone, taken)
        addons.append(PlannedAddon(
            **common, kind=AddonKind.FS_BUCKET, bucket_host=bucket.host,
            mounted_by=tuple(m.variable for m in bucket.mounts), plan=bucket.plan,
            linked=bucket.linked,
            create_command=create_command(new_name, zone=to_zone, plan=bucket.plan,
                                          owner=info.owner_id)))
    warnings = list(sv.warnings)
    if info.zone == to_zone:
        warnings.append(f"{info.name} is already in {to_zone}")
    if info.is_php:
        warnings.append(f"{info.name} is a PHP app: PHP apps cannot change zone, it must be "
                        "re-created (a PHP app deployed by FTP keeps its code in its own "
                        "FS Bucket)")
    moved = [MovedBucket(addon_id=b.addon_id, name=b.name, host=b.host)
             for b in sv.buckets if b.region != to_zone]
    uses, unread = other_uses(api, info.owner_id, info.id, moved)
    if uses and info.is_php:
        warnings.append(f"buckets used by other apps too ({describe(uses)}): they keep the "
                        "old buckets (the re-created app gets its own)")
    elif uses:
        warnings.append(f"buckets used by other apps too ({describe(uses)}): they keep the "
                        "old buckets; fsmove migrate refuses unless --split-shared (README: "
                        "\"Apps sharing a bucket\")")
    warnings += [f"{line}: cannot tell whether another app shares a bucket"
                 + ("" if info.is_php else "; fsmove migrate refuses until it can be read, "
                    "unless --split-shared") for line in unread]
    if repo is None:
        warnings.append("clevercloud/buckets.json in the app's repository, when present, "
                        "overrides the CC_FS_BUCKET* variables: pass --repo PATH to check")
    hosts = users_hosts(sv.domains)[0]
    dns_now: list[DomainDns] = []
    if checker is not None:
        for host in hosts:
            try:
                now, ttl = checker.current_target(host), checker.ttl_check(host)
            except DnsError as exc:
                warnings.append(str(exc))
                continue
            dns_now.append(DomainDns(name=now.name, rtype=now.rtype if now.values else "",
                                     values=now.values, ttl=ttl.ttl, advice=ttl.advice))
    return Plan(app=info, to_zone=to_zone, addons=tuple(addons),
                mounts=tuple(mounts_of(sv.env.own)), domains=tuple(hosts),
                buckets_json=sv.buckets_json, warnings=tuple(warnings),
                steps=tuple(_steps(sv, to_zone, addons, shared=bool(uses or unread))),
                dns=tuple(dns_now),
                records=tuple(record_lines(sv.domains, to_zone)))


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
        lines.append("  (none)")
    for addon in plan.addons:
        lines.append(f"  {addon.name} ({addon.type}, {addon.region}, {addon.id}): "
                     f"{KIND_TEXT[addon.kind]}")
        if addon.kind is AddonKind.FS_BUCKET:
            lines.append(f"    plan {addon.plan}, {'linked' if addon.linked else 'NOT linked'}; "
                         f"host {addon.bucket_host or '?'}; mounted by "
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
    if plan.records:
        lines += ["", f"DNS records to set after the switch (for {plan.to_zone}):"]
        lines += [f"  {r}" for r in plan.records]
    if plan.warnings:
        lines += ["", "Warnings:"]
        lines += [f"  ! {w}" for w in plan.warnings]
    lines += ["", "Steps, in order:"]
    lines += [f"  {i}. {s}" for i, s in enumerate(plan.steps, 1)]
    lines += ["", "Nothing was changed."]
    return "\n".join(lines)
