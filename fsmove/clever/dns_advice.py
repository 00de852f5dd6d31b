"""The DNS lines of ``plan``, ``migrate``, ``cutover`` (and the records ``fsmove dns
--zone`` checks): ONE place, so that they never disagree.

- Only the user's own domains: a Clever-managed ``*.cleverapps.io`` name is never one to
  set at a DNS provider (survey.is_users_domain).
- The records are for the **target** zone: ``CNAME domain.<zone>.clever-cloud.com.`` (an
  apex cannot hold a CNAME: its A records, which `clever domain diag` lists once the app
  is in the zone, or CNAME flattening).
- Before the switch: lower each TTL to 60 s and wait the old TTL (the zone-migration
  guide); with ``--nameserver`` the TTL each domain has now.
- After it: the exact records, and the ``fsmove dns … --zone ZONE --watch`` command.
"""

from __future__ import annotations

import sys
from collections.abc import Callable

from .clever_tool import Domain
from .dns import CUTOVER_TTL, DnsChecker, DnsError, zone_target
from .dns_domain_check import check_domain
from .survey import is_users_domain

__all__ = ["CUTOVER_TTL", "print_records", "print_ttl_advice", "record_lines",
           "users_hosts", "watch_command"]


def users_hosts(domains: list[Domain]) -> tuple[list[str], set[str]]:
    """The user's own domain names (sorted, no trailing dot) and which are apexes."""
    own = [d for d in domains if is_users_domain(d.hostname)]
    hosts = sorted({d.hostname.rstrip(".") for d in own})
    return hosts, {d.hostname.rstrip(".") for d in own if d.is_apex}


def record_lines(domains: list[Domain], zone: str) -> list[str]:
    hosts, apex = users_hosts(domains)
    target = zone_target(zone)
    return [f"{h}. A/AAAA: the {zone} zone's addresses (an apex cannot hold a CNAME; "
            f"`clever domain diag` lists them; or CNAME-flatten to {target})"
            if h in apex else f"{h}. CNAME {target}" for h in hosts]


def watch_command(domains: list[Domain], *, zone: str, nameservers: tuple[str, ...]) -> str:
    hosts, apex = users_hosts(domains)
    servers = "".join(f" --nameserver {ns}" for ns in nameservers)
    return f"fsmove dns {' '.join(h for h in hosts if h not in apex)} --zone {zone} " \
           f"--watch{servers}"


def print_ttl_advice(domains: list[Domain], *, checker: DnsChecker | None,
                     say: Callable[[str], None]) -> None:
    hosts, _apex = users_hosts(domains)
    if not hosts:
        return
    say(f"DNS, before the switch: lower the TTL of {', '.join(hosts)} to {CUTOVER_TTL} s at "
        "your DNS provider now, and wait the old TTL")
    if checker is None:
        return
    for host in hosts:
        try:
            check = checker.ttl_check(host, max_ttl=CUTOVER_TTL)
        except DnsError as exc:
            print(f"fsmove: warning: {exc}", file=sys.stderr)
            continue
        say(f"  TTL {host}.: {'ok' if check.ok else 'too long'}: {check.advice}")


def print_records(domains: list[Domain], *, zone: str, nameservers: tuple[str, ...],
                  checker: DnsChecker | None, say: Callable[[str], None]) -> None:
    hosts, apex = users_hosts(domains)
    if not hosts:
        say("DNS: the app has no domain of its own; nothing to change")
        return
    say(f"DNS: set these records at your DNS provider (for {zone}):")
    for line in record_lines(domains, zone):
        say(f"  {line}")
    if checker is not None:
        for host in hosts:
            if host in apex:
                continue
            try:
                check = check_domain(checker, host, {"CNAME": (zone_target(zone),)},
                                     max_ttl=CUTOVER_TTL)
            except DnsError as exc:
                print(f"fsmove: warning: {exc}", file=sys.stderr)
                continue
            now = ", ".join(check.current.values) or "nothing"
            state = "switched" if check.matches else "not switched yet"
            say(f"  {check.name} now {check.current.rtype} {now}: {state}; "
                f"TTL {'ok' if check.ttl.ok else 'too long'}: {check.ttl.advice}")
    if any(h not in apex for h in hosts):
        say("  watch the switch: " + watch_command(domains, zone=zone, nameservers=nameservers))
    say("  then set the TTL back to what it was")
