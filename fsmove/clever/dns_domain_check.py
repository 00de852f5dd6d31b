"""One domain's state for a cut-over, read once: what it points at, its TTL and the
advice about it, whether it matches what is expected, and the records to set if not
(`fsmove dns`, fsmove/commands/dns.py)."""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass, replace

from fsmove.clever.dns import (
    CUTOVER_TTL,
    Answer,
    DnsChecker,
    TtlCheck,
    expected_values,
    ttl_advice,
)


@dataclass(frozen=True)
class DomainCheck:
    """One domain's state for the cut-over: what it points at, TTL, match, what to set."""

    name: str
    current: Answer
    ttl: TtlCheck
    expected: dict[str, tuple[str, ...]]
    matches: bool | None  # None when nothing is expected
    records_to_set: tuple[str, ...]  # zone-file lines; () when it matches
    note: str | None  # e.g. a CNAME cannot coexist with the current A records


def check_domain(
    checker: DnsChecker,
    name: str,
    expected: Mapping[str, Iterable[str]],
    *,
    max_ttl: int = CUTOVER_TTL,
    note: str | None = None,
) -> DomainCheck:
    """Read ``name`` once and compare it with ``expected``.

    The records to set carry ``max_ttl`` (the cut-over TTL); the user restores a longer
    TTL once the switch is seen everywhere. ``note``: said when it does not match (a
    zone apex's, ``fsmove/commands/dns.py``).
    """
    wanted = {k: tuple(sorted(v)) for k, v in expected_values(expected).items()}
    current = checker.current_target(name)
    ttl = ttl_advice(current, max_ttl)
    if not wanted:
        return DomainCheck(current.name, current, ttl, {}, None, (), None)
    differing = [
        rtype
        for rtype, values in wanted.items()
        if frozenset(checker.lookup(name, rtype).values) != frozenset(values)
    ]
    lines = tuple(
        f"{current.name} {max_ttl} IN {rtype} {value}"
        for rtype in differing
        for value in wanted[rtype]
    )
    if "CNAME" in differing and current.rtype != "CNAME" and current.values:
        note = (
            f"remove the {current.rtype} records of {current.name} first: a CNAME cannot "
            "coexist with other records; at a zone apex, use your provider's ALIAS/ANAME "
            "record or the zone's A records instead"
        )
    if not differing and ttl.ttl is not None:
        # The switch is done: the guide's last step is to restore the TTL.
        ttl = replace(ttl, advice=(
            f"the switch of {current.name} is visible here: once the old record has expired "
            "from caches (the TTL it had before), restore its usual TTL"
        ))
    return DomainCheck(current.name, current, ttl, wanted, not differing, lines, note)
