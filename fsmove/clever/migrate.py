"""The app-side pieces of ``fsmove migrate``: its phases, the preflight checks through the
`clever` CLI, and the DNS phase. The runner that strings the phases together (copy,
verify, delta, cut-over) is fsmove/commands/migrate.py.

Decisions:

- **Preflight reads, never writes**: `clever` found (exit 5), logged in (exit 5), the app
  exists (exit 2), OLD and NEW are FS Buckets (exit 2) with different hosts (exit 2).
  The four reads run at once (each `clever` call is a Node process of ~1-2 s).
- **The DNS phase** prints the records to set, the zone being the app's as the CLI
  reports it (the cut-over prints them too, as it always does; the DNS phase repeats them
  only when the cut-over did not run in this invocation). With ``--nameserver`` (the
  domains' own server) it reads each domain there with fsmove/clever/dns.py: what it
  points at now, the TTL advice, and whether the switch is visible yet. A domain that
  does not match yet is not a failure: the user's DNS provider makes the change after
  the cut-over. Without ``--nameserver`` no DNS is asked (the system resolver's cached
  TTLs mislead); the phase prints the `fsmove dns … --watch` command to run.
"""

from __future__ import annotations

import sys
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass

from fsmove.errors import UsageError

from .app import AppInfo, find_app
from .bucket import Bucket, read_bucket
from .cli import CleverCli, Domain
from .dns import DnsChecker, DnsError, check_domain
from .plan import CUTOVER_TTL


@dataclass(frozen=True)
class Preflight:
    app: AppInfo
    old: Bucket
    new: Bucket


def preflight(cli: CleverCli, *, app: str, old: str, new: str) -> Preflight:
    """The app and both buckets, read at once; refuses a bucket that is not one, or the
    same bucket twice. Raises before anything is written."""
    if old == new:
        raise UsageError(f"--from and --to are both {old}: give the new bucket as --to")
    _ = cli.executable  # fails now (exit 5) when `clever` is missing
    with ThreadPoolExecutor(max_workers=3) as pool:
        f_app = pool.submit(find_app, cli, app)
        f_old = pool.submit(read_bucket, cli, old)
        f_new = pool.submit(read_bucket, cli, new)
        found = Preflight(app=f_app.result(), old=f_old.result(), new=f_new.result())
    if found.old.host == found.new.host:
        raise UsageError(
            f"--from {old} and --to {new} are the same bucket ({found.old.host}); "
            "give the new bucket's add-on id as --to"
        )
    return found


def watch_command(hosts: list[str], *, zone: str, nameservers: tuple[str, ...]) -> str:
    servers = "".join(f" --nameserver {ns}" for ns in nameservers)
    return f"fsmove dns {' '.join(hosts)} --zone {zone} --watch{servers}"


def run_dns_phase(cli: CleverCli, *, app: str, zone: str, checker: DnsChecker | None,
                  nameservers: tuple[str, ...], print_records: bool,
                  say: Callable[[str], None]) -> None:
    """The DNS phase (see the module docstring). Reads only."""
    domains: list[Domain] = cli.domains(app)
    if not domains:
        say("DNS: the app has no domain of its own; nothing to change")
        return
    target = f"domain.{zone}.clever-cloud.com."
    hosts = sorted({d.hostname.rstrip(".") for d in domains})
    apex = {d.hostname.rstrip(".") for d in domains if d.is_apex}
    if print_records:
        say(f"DNS: set these records at your DNS provider (lower their TTL to {CUTOVER_TTL} s "
            "first and wait the old TTL):")
        for host in hosts:
            say(f"  {host}. A/AAAA: the zone's addresses (an apex cannot hold a CNAME)"
                if host in apex else f"  {host}. CNAME {target}")
    if checker is not None:
        for host in hosts:
            try:
                check = check_domain(checker, host, {"CNAME": [target]}, max_ttl=CUTOVER_TTL)
            except DnsError as exc:
                print(f"fsmove: warning: {exc}", file=sys.stderr)
                continue
            now = ", ".join(check.current.values) or "nothing"
            state = "switched" if check.matches else "not switched yet"
            say(f"  {check.name} now {check.current.rtype} {now}: {state}; "
                f"TTL {'ok' if check.ttl.ok else 'too long'}: {check.ttl.advice}")
    zone_hosts = [h for h in hosts if h not in apex]
    if zone_hosts:
        say("  watch the switch: " + watch_command(zone_hosts, zone=zone,
                                                   nameservers=nameservers))
