"""`fsmove dns DOMAIN...`: what each domain points at, its TTL, whether it matches, and
what to set. Reads DNS only; the user's DNS provider makes the change."""

from __future__ import annotations

import json
import sys
import time
from collections.abc import Sequence
from dataclasses import asdict, dataclass

from fsmove.clever.dns import (
    Answer,
    DnsChecker,
    DnsError,
    checked_host_name,
    normalize_value,
    rtype_text,
    zone_target,
)
from fsmove.clever.dns_domain_check import DomainCheck, check_domain
from fsmove.errors import UsageError
from fsmove.exitcodes import ExitCode

#: The longest a single DNS query may take (the watch --timeout caps it further).
QUERY_TIMEOUT = 5.0


@dataclass(frozen=True)
class DnsRequest:
    domains: tuple[str, ...]
    expect: tuple[str, ...] = ()  # "TYPE=VALUE", as typed
    zone: str | None = None
    max_ttl: int = 60
    nameservers: tuple[str, ...] = ()
    watch: bool = False
    timeout: float = 600.0
    interval: float = 5.0
    json: bool = False


def parse_expectations(expect: Sequence[str], zone: str | None) -> dict[str, tuple[str, ...]]:
    """``["A=1.2.3.4", "A=5.6.7.8"]`` + zone -> ``{"A": (...), "CNAME": (...)}``."""
    wanted: dict[str, list[str]] = {}
    for item in expect:
        kind, sep, value = item.partition("=")
        if not sep or not kind.strip() or not value.strip():
            raise UsageError(f"--expect {item!r}: write it as TYPE=VALUE, e.g. A=192.0.2.1")
        rtype = rtype_text(kind)
        wanted.setdefault(rtype, []).append(normalize_value(rtype, value))
    if zone is not None:
        if "CNAME" in wanted:
            raise UsageError("--zone sets the CNAME to expect: give either --zone or "
                             "--expect CNAME=..., not both")
        wanted["CNAME"] = [zone_target(zone)]
    if len(wanted.get("CNAME", ())) > 1:
        raise UsageError("a name has at most one CNAME: give one --expect CNAME=...")
    return {rtype: tuple(sorted(set(values))) for rtype, values in wanted.items()}


def _validate(req: DnsRequest) -> None:
    if not req.domains:
        raise UsageError("give at least one domain, e.g. fsmove dns www.example.org --zone mtl")
    if not req.timeout > 0:
        raise UsageError("--timeout must be a positive number of seconds")
    if not req.interval > 0:
        raise UsageError("--interval must be a positive number of seconds")
    if req.max_ttl < 0:
        raise UsageError("--max-ttl must be 0 or more seconds")
    for domain in req.domains:  # all of them before any query or watch
        checked_host_name(domain)


def _shown(answer: Answer) -> str:
    if not answer.values:
        return "no record (NXDOMAIN or no CNAME/A/AAAA)"
    return f"{answer.rtype} {', '.join(answer.values)} (TTL {answer.ttl} s)"


def _text(check: DomainCheck) -> str:
    lines = [check.name, f"  now:      {_shown(check.current)}", f"  TTL:      {check.ttl.advice}"]
    if check.matches is None:
        lines.append("  expected: nothing (give --zone ZONE or --expect TYPE=VALUE to check)")
        return "\n".join(lines)
    wanted = "; ".join(f"{rtype} {', '.join(v) or '(none)'}" for rtype, v in check.expected.items())
    lines.append(f"  expected: {wanted}")
    if check.matches:
        lines.append("  matches:  yes")
    else:
        lines.append("  matches:  no, set at your DNS provider:")
        lines += [f"    {record}" for record in check.records_to_set]
        if check.note:
            lines.append(f"  note:     {check.note}")
    return "\n".join(lines)


def _as_dict(check: DomainCheck) -> dict[str, object]:
    d = asdict(check)
    d["expected"] = {k: list(v) for k, v in check.expected.items()}
    return d


def for_apex(checker: DnsChecker, domain: str, expected: dict[str, tuple[str, ...]],
             zone: str | None) -> tuple[dict[str, tuple[str, ...]], str | None]:
    """What ``domain`` should hold, and a note: with ``--zone``, a domain that is the
    apex of its DNS zone (``example.com`` itself) cannot hold the zone's CNAME, so it is
    expected to hold the addresses that CNAME's target has now. Before session 36 fsmove
    asked for a CNAME there, which DNS providers refuse, and ``--watch`` could never
    end. Other domains, or no ``--zone``: ``expected`` as given, no note."""
    if zone is None or "CNAME" not in expected or checker.is_apex(domain) is not True:
        return expected, None
    target = zone_target(zone)
    wanted = {k: v for k, v in expected.items() if k != "CNAME"}
    if not ("A" in wanted or "AAAA" in wanted):
        # The addresses the user gave (--expect A=...) stand; else the target's now.
        try:
            v4 = checker.lookup(target, "A").values
            v6 = checker.lookup(target, "AAAA").values
        except DnsError as exc:
            # The domain's own server (--nameserver, for its TTLs) answers for its
            # zones only (session 36's third pass: "REFUSED ... check that it is up").
            raise DnsError(
                f"{domain} is the apex of its DNS zone, where a CNAME cannot be set, and "
                f"the addresses of {target} could not be read ({exc}): ask a resolver "
                "that answers for other zones too, or give them with --expect A=... "
                "(those `clever domain diag` lists)") from None
        if not v4 and not v6:
            raise DnsError(
                f"{domain} is the apex of its DNS zone, where a CNAME cannot be set, and "
                f"{target} has no address at {checker.server_label} to expect instead: "
                "give the addresses with --expect A=... (those `clever domain diag` "
                "lists)")
        wanted.update({k: v for k, v in (("A", v4), ("AAAA", v6)) if v})
    note = (f"{domain} is the apex of its DNS zone: it cannot hold a CNAME (DNS providers "
            f"refuse one there), so it must hold the addresses {target} has now; an "
            f"ALIAS/ANAME record to {target} (or CNAME flattening), where your provider "
            "offers one, follows them if Clever Cloud changes them")
    return wanted, note


def run_dns(req: DnsRequest) -> ExitCode:
    _validate(req)
    expected = parse_expectations(req.expect, req.zone)
    if req.watch and not expected:
        raise UsageError("--watch needs something to wait for: --zone ZONE or --expect TYPE=VALUE")
    checker = DnsChecker(
        req.nameservers or None, timeout=min(QUERY_TIMEOUT, req.timeout)
    )
    wanted = {domain: for_apex(checker, domain, expected, req.zone)
              for domain in req.domains}
    watched: dict[str, float] | None = None
    if req.watch:
        try:
            watched = _watch(checker, req, {d: w[0] for d, w in wanted.items()})
        except KeyboardInterrupt:
            # Not cli.fail's message: there is no journal here, and nothing was changed.
            print("fsmove: interrupted: the watch stopped (fsmove changed nothing)",
                  file=sys.stderr)
            return ExitCode.INTERRUPTED
    checks = [
        check_domain(checker, domain, wanted[domain][0], max_ttl=req.max_ttl,
                     note=wanted[domain][1])
        for domain in req.domains
    ]
    mismatched = [c for c in checks if c.matches is False]
    code = ExitCode.MISMATCH if mismatched else ExitCode.OK
    if req.json:
        print(json.dumps({
            "domains": [_as_dict(c) for c in checks],
            "nameserver": checker.server_label,
            "all_match": not mismatched,
            "watch": watched,
            "exit_code": int(code),
        }, indent=2))
        return code
    print("\n\n".join(_text(c) for c in checks))
    print()
    if not expected:
        print(f"{len(checks)} domain(s) read from {checker.server_label}; nothing expected")
    elif mismatched and watched:
        print(f"{len(mismatched)} of {len(checks)} domain(s) still do not match after "
              f"{watched['elapsed']:.0f} s of watching (exit 4): check the records above at "
              "your DNS provider, or watch longer (--timeout)")
    elif mismatched:
        print(f"{len(mismatched)} of {len(checks)} domain(s) do not match yet (exit 4): set "
              "the records above, then rerun with --watch")
    else:
        print(f"all {len(checks)} domain(s) match")
    return code


def _watch(
    checker: DnsChecker, req: DnsRequest, expected: dict[str, dict[str, tuple[str, ...]]]
) -> dict[str, float]:
    """Watch the domains one after the other within one shared deadline.

    Progress goes to stderr (never with --json), one line whenever an answer changes.
    """
    start = time.monotonic()
    last: dict[tuple[str, str], tuple[str, ...]] = {}
    for domain in req.domains:
        left = max(0.0, req.timeout - (time.monotonic() - start))

        def tick(answer: Answer) -> None:
            key = (answer.name, answer.rtype)
            if req.json or last.get(key) == answer.values:
                return
            last[key] = answer.values
            seen = ", ".join(answer.values) or "nothing"
            print(f"  [{time.monotonic() - start:4.0f} s] {answer.name} {answer.rtype}: {seen}",
                  file=sys.stderr, flush=True)

        checker.watch(domain, expected[domain], timeout=left, interval=req.interval,
                      on_tick=tick)
    return {"timeout": req.timeout, "elapsed": round(time.monotonic() - start, 3)}
