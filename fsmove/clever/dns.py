"""DNS checks for a zone cut-over: what a domain points at, its TTL, and a bounded watch.

fsmove never edits DNS (the user's DNS provider does); it reads what resolvers answer and
says exactly what to set. Built on dnspython. Decisions:

- NXDOMAIN and "no record of that type" are answers (an empty ``Answer``), not errors.
  A name server that does not answer (timeout, refused connection, REFUSED, SERVFAIL)
  raises ``DnsError`` (exit 1), one line naming the server.
- A refused port fails at once (a connected UDP socket hears the ICMP error) instead of
  after the timeout.
- No cache: every lookup asks the name server again, so a watch sees changes as soon as
  the server does. Names are always queried as absolute names (no search domains).
- Names and CNAME targets are compared and reported in lowercase, absolute ("a.b."),
  addresses in their canonical text form: DNS names are case-insensitive.
- A resolver that caches (the system's) reports the TTL *remaining* in its cache; ask the
  domain's authoritative server (``nameservers=["IP"]``) to read the TTL as configured.
- ``lookup(name, "A")`` on a name that is a CNAME returns the target's addresses (that is
  what resolving means); ``current_target`` asks for the CNAME first.
- ``watch`` needs the first query to succeed (else ``DnsError`` at once: waiting on a
  server that is down is pointless); a later failed query counts as "not matched yet",
  since a watch of minutes must survive a lost UDP packet. It returns when matched or at
  its timeout, overrunning it by at most one query of ``_LAST_QUERY_FLOOR`` seconds.
"""

from __future__ import annotations

import ipaddress
import re
import socket
import time
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass

import dns.exception
import dns.inet
import dns.message
import dns.name
import dns.nameserver
import dns.query
import dns.rdatatype
import dns.resolver

from fsmove.errors import FsmoveError, UsageError

#: Clever Cloud zones, and the CNAME target the zone-migration guide recommends for each.
CLEVER_ZONES = ("par", "ldn", "mtl", "rbx", "scw", "sgp", "syd", "wsw")
#: The TTL the zone-migration guide asks for before a switch.
CUTOVER_TTL = 60
DEFAULT_PORT = 53
#: A query started when less time than this is left in a watch still gets this long.
_LAST_QUERY_FLOOR = 0.5


class DnsError(FsmoveError):
    """A name server did not answer (timeout, refused): exit 1."""


@dataclass(frozen=True)
class Answer:
    name: str  # the name asked, absolute ("www.example.org.")
    rtype: str  # "CNAME", "A", "AAAA", "TXT", ...
    ttl: int | None  # None when there is no answer
    values: tuple[str, ...]  # sorted; CNAME targets absolute with the trailing dot; () = none


@dataclass(frozen=True)
class TtlCheck:
    name: str
    ttl: int | None
    max_ttl: int
    ok: bool  # ttl is None or ttl <= max_ttl
    advice: str  # one line


@dataclass(frozen=True)
class WatchResult:
    name: str
    matched: bool
    seen: tuple[str, ...]  # what the resolver answered last
    elapsed: float


def zone_target(zone: str) -> str:
    """``"mtl"`` -> ``"domain.mtl.clever-cloud.com."``; UsageError for an unknown zone."""
    key = zone.strip().lower()
    if key not in CLEVER_ZONES:
        raise UsageError(
            f"unknown Clever Cloud zone {zone!r}: use one of {', '.join(CLEVER_ZONES)}"
        )
    return f"domain.{key}.clever-cloud.com."


def absolute_name(name: str) -> str:
    """``"WWW.Example.org"`` -> ``"www.example.org."``; UsageError when it is no domain."""
    text = name.strip()
    if not text or any(c in text for c in "/:@ \t") or text == ".":
        raise UsageError(f"{name!r} is not a domain name: give it like www.example.org")
    try:
        parsed = dns.name.from_text(text)
    except (dns.exception.DNSException, UnicodeError, ValueError) as exc:
        raise UsageError(f"{name!r} is not a domain name ({exc})") from None
    return parsed.to_text().lower()


def checked_host_name(name: str) -> str:
    """``absolute_name`` of a name a user typed, whose labels must be a host's: letters,
    digits, hyphens inside, underscores (``_acme-challenge``), a leading ``*``. ``-``
    was queried as a name and ended in exit 4 (not found) where a typo is exit 2."""
    text = absolute_name(name)
    labels = text.rstrip(".").split(".")
    if labels and labels[0] == "*":
        labels = labels[1:]
    if not labels or not all(_LABEL.fullmatch(label.encode()) for label in labels):
        raise UsageError(f"{name!r} is not a domain name: give it like www.example.org")
    return text


_LABEL = re.compile(rb"[A-Za-z0-9_](?:[A-Za-z0-9_-]{0,61}[A-Za-z0-9_])?")


def rtype_text(rtype: str) -> str:
    """The canonical spelling of a record type (``"cname"`` -> ``"CNAME"``)."""
    try:
        return dns.rdatatype.to_text(dns.rdatatype.from_text(rtype.strip().upper()))
    except (dns.exception.DNSException, ValueError):
        raise UsageError(f"unknown DNS record type {rtype!r} (e.g. CNAME, A, AAAA, TXT)") from None


def normalize_value(rtype: str, value: str) -> str:
    """A record value in the form ``Answer.values`` uses, so the two compare equal."""
    kind = rtype_text(rtype)
    text = value.strip()
    if kind in ("CNAME", "NS", "PTR", "DNAME"):
        return absolute_name(text)
    if kind in ("A", "AAAA"):
        try:
            address = ipaddress.ip_address(text)
        except ValueError:
            raise UsageError(f"{kind} value {value!r} is not an IP address") from None
        if (kind == "A") != (address.version == 4):
            raise UsageError(f"{value!r} is not an {'IPv4' if kind == 'A' else 'IPv6'} address")
        return str(address)
    if not text:
        raise UsageError(f"empty {kind} value")
    if kind in ("TXT", "SPF") and len(text) >= 2 and text[0] == text[-1] == '"':
        return text[1:-1]
    return text


def parse_nameserver(spec: str) -> tuple[str, int]:
    """``"IP"``, ``"IP:PORT"``, ``"[IPv6]:PORT"`` or a bare IPv6 -> (ip, port)."""
    text = spec.strip()
    host, port_text = text, ""
    if text.startswith("["):
        host, sep, rest = text[1:].partition("]")
        if not sep or (rest and not rest.startswith(":")):
            raise UsageError(f"name server {spec!r}: write it as [IPv6]:PORT")
        port_text = rest[1:]
    elif text.count(":") == 1:
        host, _, port_text = text.partition(":")
    try:
        ip = str(ipaddress.ip_address(host))
    except ValueError:
        raise UsageError(
            f"name server {spec!r} is not an IP address (give IP or IP:PORT, e.g. 1.1.1.1)"
        ) from None
    if not port_text:
        return ip, DEFAULT_PORT
    if not port_text.isdigit() or not 0 < int(port_text) < 65536:
        raise UsageError(f"name server {spec!r}: the port must be a number from 1 to 65535")
    return ip, int(port_text)


def _value_text(kind: str, rdata: object) -> str:
    """An answer's record as text: TXT strings joined and unquoted, the rest normalized."""
    strings = getattr(rdata, "strings", None)
    if kind in ("TXT", "SPF") and strings is not None:
        return "".join(part.decode("utf-8", "replace") for part in strings)
    return normalize_value(kind, str(rdata))


def ttl_advice(answer: Answer, max_ttl: int) -> TtlCheck:
    name, ttl = answer.name, answer.ttl
    if ttl is None:
        advice = f"{name} has no record yet: nothing to wait for, set the new one directly"
    elif ttl <= max_ttl:
        advice = (
            f"the TTL of {name} is {ttl} s (at most {max_ttl} s): switch once the old TTL "
            "has passed since it was lowered, and restore a longer TTL afterwards"
        )
    else:
        advice = (
            f"lower the TTL of {name} from {ttl} s to {max_ttl} s, "
            f"then wait {ttl} s before switching"
        )
    return TtlCheck(
        name=name, ttl=ttl, max_ttl=max_ttl, ok=ttl is None or ttl <= max_ttl, advice=advice
    )


def expected_values(expected: Mapping[str, Iterable[str]]) -> dict[str, frozenset[str]]:
    return {
        rtype_text(rtype): frozenset(normalize_value(rtype, v) for v in values)
        for rtype, values in expected.items()
    }


class _ConnectedUdpNameserver(dns.nameserver.Do53Nameserver):
    """Do53 whose UDP socket is connected, so a refused port fails the query at once.

    dnspython sends from an unconnected socket, which never hears the ICMP "port
    unreachable" and waits out the whole timeout; a connected one gets ECONNREFUSED
    (an OSError, which the resolver reports as a failed server). TCP is unchanged.
    """

    def query(
        self,
        request: dns.message.QueryMessage,
        timeout: float,
        source: str | None,
        source_port: int,
        max_size: bool,
        one_rr_per_rrset: bool = False,
        ignore_trailing: bool = False,
    ) -> dns.message.Message:
        if max_size or source is not None or source_port:
            return super().query(
                request, timeout, source, source_port, max_size,
                one_rr_per_rrset=one_rr_per_rrset, ignore_trailing=ignore_trailing,
            )
        with socket.socket(dns.inet.af_for_address(self.address), socket.SOCK_DGRAM) as sock:
            sock.setblocking(False)
            sock.connect((self.address, self.port))
            return dns.query.udp(
                request, self.address, timeout=timeout, port=self.port, sock=sock,
                raise_on_truncation=True, one_rr_per_rrset=one_rr_per_rrset,
                ignore_trailing=ignore_trailing, ignore_errors=True, ignore_unexpected=True,
            )


class DnsChecker:
    """Asks one set of name servers (or the system's resolver) about records."""

    def __init__(self, nameservers: Sequence[str] | None = None, *, timeout: float = 5.0) -> None:
        """nameservers: "IP" or "IP:PORT" strings; None = the system's resolver."""
        if not timeout > 0:
            raise UsageError("the DNS timeout must be a positive number of seconds")
        self.timeout = float(timeout)
        if nameservers:
            servers = [parse_nameserver(s) for s in nameservers]
            self._resolver = dns.resolver.Resolver(configure=False)
            self._resolver.nameservers = [
                _ConnectedUdpNameserver(ip, port) for ip, port in servers
            ]
            self.server_label = ", ".join(
                f"[{ip}]:{port}" if ":" in ip else f"{ip}:{port}" for ip, port in servers
            )
        else:
            try:
                self._resolver = dns.resolver.Resolver()
            except (dns.resolver.NoResolverConfiguration, OSError) as exc:
                raise DnsError(
                    f"the system has no usable DNS resolver configuration ({exc}): "
                    "give one with --nameserver IP"
                ) from None
            shown = ", ".join(str(ns) for ns in self._resolver.nameservers[:3])
            self.server_label = f"the system resolver ({shown})"
        self._resolver.cache = None
        self._resolver.timeout = self.timeout
        self._resolver.lifetime = self.timeout

    def lookup(self, name: str, rtype: str = "CNAME") -> Answer:
        return self._lookup(name, rtype, lifetime=self.timeout)

    def _lookup(self, name: str, rtype: str, *, lifetime: float) -> Answer:
        qname = absolute_name(name)
        kind = rtype_text(rtype)
        try:
            result = self._resolver.resolve(
                qname, kind, raise_on_no_answer=False, search=False, lifetime=lifetime
            )
        except dns.resolver.NXDOMAIN:
            return Answer(name=qname, rtype=kind, ttl=None, values=())
        except dns.exception.Timeout:
            raise DnsError(
                f"DNS server {self.server_label} did not answer {qname} {kind} within "
                f"{lifetime:g} s: check the address and that it is up (--nameserver)"
            ) from None
        except dns.resolver.NoNameservers as exc:
            errors = exc.kwargs.get("errors") or []
            why = "; ".join(str(err[3]) for err in errors) or "no usable answer"
            raise DnsError(
                f"DNS server {self.server_label} failed to answer {qname} {kind} ({why}): "
                "check the address and that it is up (--nameserver)"
            ) from None
        except dns.exception.DNSException as exc:
            raise DnsError(
                f"DNS lookup of {qname} {kind} at {self.server_label} failed: {exc}"
            ) from None
        rrset = result.rrset
        if rrset is None:
            return Answer(name=qname, rtype=kind, ttl=None, values=())
        values = tuple(sorted(_value_text(kind, rdata) for rdata in rrset))
        return Answer(name=qname, rtype=kind, ttl=int(rrset.ttl), values=values)

    def is_apex(self, name: str) -> bool | None:
        """Whether ``name`` is the apex of its DNS zone (its own SOA answers its SOA
        query): a CNAME cannot be set there (RFC 1034, 3.6.2; DNS providers refuse it).
        A name that is a CNAME is no apex (its SOA query follows the alias). None: the
        server did not answer."""
        qname = absolute_name(name)
        try:
            result = self._resolver.resolve(qname, "SOA", raise_on_no_answer=False,
                                            search=False, lifetime=self.timeout)
        except dns.resolver.NXDOMAIN:
            return False
        except dns.exception.DNSException:
            return None
        rrset = result.rrset
        return rrset is not None and rrset.name == dns.name.from_text(qname)

    def current_target(self, name: str) -> Answer:
        """The CNAME if there is one, else the A and AAAA records.

        Without a CNAME the answer's rtype is "A" when there is an A record ("AAAA" when
        there are only AAAA records) and its values hold both kinds of addresses, its TTL
        is the lower of the two.
        """
        cname = self.lookup(name, "CNAME")
        if cname.values:
            return cname
        v4, v6 = self.lookup(name, "A"), self.lookup(name, "AAAA")
        ttls = [a.ttl for a in (v4, v6) if a.ttl is not None]
        return Answer(
            name=v4.name,
            rtype="A" if v4.values or not v6.values else "AAAA",
            ttl=min(ttls) if ttls else None,
            values=tuple(sorted(v4.values + v6.values)),
        )

    def ttl_check(self, name: str, *, max_ttl: int = CUTOVER_TTL) -> TtlCheck:
        if max_ttl < 0:
            raise UsageError("the maximum TTL must be 0 or more seconds")
        return ttl_advice(self.current_target(name), max_ttl)

    def matches(self, name: str, expected: Mapping[str, Iterable[str]]) -> bool:
        """Whether every expected type holds exactly the expected values (an empty
        mapping matches). ``{"CNAME": ["domain.mtl.clever-cloud.com."]}``"""
        wanted = expected_values(expected)
        return all(
            frozenset(self.lookup(name, rtype).values) == values
            for rtype, values in wanted.items()
        )

    def watch(
        self,
        name: str,
        expected: Mapping[str, Iterable[str]],
        *,
        timeout: float,
        interval: float = 5.0,
        on_tick: Callable[[Answer], None] | None = None,
    ) -> WatchResult:
        """Poll until ``name`` matches ``expected`` or ``timeout`` seconds have passed.

        Always asks at least once. ``on_tick`` gets every answer read (one per expected
        type per round). ``seen`` holds the values of the expected types from the last
        round that got an answer.
        """
        if timeout < 0:
            raise UsageError("the watch timeout must be 0 or more seconds")
        if not interval > 0:
            raise UsageError("the watch interval must be a positive number of seconds")
        wanted = expected_values(expected)
        start = time.monotonic()
        deadline = start + timeout
        seen: tuple[str, ...] = ()
        first = True
        while True:
            left = deadline - time.monotonic()
            lifetime = min(self.timeout, max(left, _LAST_QUERY_FLOOR))
            try:
                answers = [self._lookup(name, rtype, lifetime=lifetime) for rtype in wanted]
            except DnsError:
                if first:
                    raise
                answers = None
            first = False
            if answers is not None:
                seen = tuple(v for answer in answers for v in answer.values)
                for answer in answers:
                    if on_tick is not None:
                        on_tick(answer)
                if all(frozenset(a.values) == wanted[a.rtype] for a in answers):
                    return WatchResult(absolute_name(name), True, seen, time.monotonic() - start)
            left = deadline - time.monotonic()
            if left <= 0:
                return WatchResult(absolute_name(name), False, seen, time.monotonic() - start)
            time.sleep(min(interval, left))
