"""A copy job's options as its journal keeps them, so `fsmove resume` replays the job
exactly as it was started: `--bwlimit 2M` overnight stays 2M after a resume.

Every option of `fsmove copy` is saved except the secrets (passwords come again from
FSMOVE_SRC_PASSWORD / FSMOVE_DST_PASSWORD, ~/.netrc or a prompt) and `--dry-run` (a dry
run keeps no journal). Paths (`--identity`, `--ca-file`, `--known-hosts`) are saved as
absolute paths: a key file's path is not a secret, its content never enters the journal.
A journal written by an older fsmove holds fewer keys: the missing ones take the copy
command's defaults.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, replace
from pathlib import Path

from fsmove.endpoint_access import ConnectOptions
from fsmove.progress import human_bytes
from fsmove.transfers.copy import CopyOptions
from fsmove.transfers.tree import FILTER_RULES, from_first_rules, shown_pattern

#: Bumped when a key changes meaning (new keys need no bump: absent keys take defaults).
FORMAT = 2


@dataclass(frozen=True)
class JobOptions:
    """What `fsmove copy` was asked, minus the endpoints and the secrets."""

    copy: CopyOptions
    connect: ConnectOptions
    src_connections: int | None = None
    dst_connections: int | None = None
    verify: bool = False
    reports: tuple[Path, ...] = ()


def _absolute(path: Path | None) -> str | None:
    return str(path.expanduser().absolute()) if path is not None else None


def to_record(job: JobOptions) -> dict[str, object]:
    """The JSON-able form stored in the journal's ``meta.options``."""
    c, k = job.copy, job.connect
    return {
        "format": FORMAT,
        "workers": c.workers,
        "checksum": c.checksum,
        "trust_partial": c.trust_partial,
        "delete": c.delete,
        "mtime": c.preserve_mtime,
        "perms": c.keep_perms,
        "include": list(c.filters.include),
        "exclude": list(c.filters.exclude),
        "filter_rules": FILTER_RULES,
        "bwlimit": c.bwlimit,
        "retries": c.retries,
        "retry_delay": c.retry_delay,
        "src_connections": job.src_connections,
        "dst_connections": job.dst_connections,
        "timeout": k.timeout,
        "known_hosts": _absolute(k.known_hosts),
        "accept_new_host_key": k.accept_new_host_key,
        "identity": [_absolute(p) for p in k.identity_files],
        "ca_file": _absolute(k.ca_file),
        "insecure_tls": k.insecure_tls,
        "verify": job.verify,
        "reports": [_absolute(p) for p in job.reports],
    }


def _opt_path(value: object) -> Path | None:
    return Path(value) if isinstance(value, str) and value else None


def _number(value: object, default: float) -> float:
    if isinstance(value, int | float) and not isinstance(value, bool) and math.isfinite(value):
        return float(value)
    return default


def _count(value: object) -> int | None:
    return value if isinstance(value, int) and not isinstance(value, bool) else None


class DamagedOptionsError(ValueError):
    """A saved option of the wrong shape: the journal was edited or damaged."""


def _strings(record: dict[str, object], key: str) -> tuple[str, ...]:
    """A list of strings (``--include``...), or DamagedOptionsError: a bare string was
    taken letter by letter (``"*.x"`` became ``* . x``, widening the filter to every
    file, session 32)."""
    value = record.get(key) or ()
    if not isinstance(value, list | tuple) or not all(isinstance(v, str) for v in value):
        raise DamagedOptionsError(f"{key}: {value!r:.80}")
    return tuple(value)


def from_record(record: dict[str, object]) -> JobOptions:
    """The options of a saved job (defaults for what an older journal did not keep).
    DamagedOptionsError when one has a shape fsmove never writes (a negative rate, a
    string for a list): replaying a wrong option could widen a filter or drop a limit."""
    if record.get("format") == "damaged":
        raise DamagedOptionsError("not JSON")
    base = CopyOptions()
    bwlimit = record.get("bwlimit")
    if bwlimit is not None and _number(bwlimit, -1.0) <= 0:
        raise DamagedOptionsError(f"bwlimit: {bwlimit!r:.80}")
    include = _strings(record, "include")
    exclude = _strings(record, "exclude")
    if record.get("filter_rules") != FILTER_RULES:
        # Recorded before the rules changed: each pattern keeps what it matched then.
        include = [from_first_rules(str(p)) for p in include]
        exclude = [from_first_rules(str(p)) for p in exclude]
    copy = replace(
        base,
        workers=_count(record.get("workers")) or base.workers,
        checksum=bool(record.get("checksum", base.checksum)),
        trust_partial=bool(record.get("trust_partial", base.trust_partial)),
        delete=bool(record.get("delete", base.delete)),
        preserve_mtime=bool(record.get("mtime", base.preserve_mtime)),
        keep_perms=bool(record.get("perms", base.keep_perms)),
        # The Filters type is taken from the defaults, wherever it is defined.
        filters=replace(base.filters, include=tuple(map(str, include)),  # type: ignore[arg-type]
                        exclude=tuple(map(str, exclude))),  # type: ignore[arg-type]
        bwlimit=_number(bwlimit, 0.0) or None,
        retries=_count(record.get("retries")) if _count(record.get("retries")) is not None
        else base.retries,
        retry_delay=_number(record.get("retry_delay"), base.retry_delay),
    )
    identity = _strings(record, "identity")
    reports = _strings(record, "reports")
    connect = ConnectOptions(
        timeout=_number(record.get("timeout"), ConnectOptions.timeout),
        known_hosts=_opt_path(record.get("known_hosts")),
        accept_new_host_key=bool(record.get("accept_new_host_key", False)),
        identity_files=tuple(p for p in map(_opt_path, identity) if p is not None),  # type: ignore[arg-type]
        ca_file=_opt_path(record.get("ca_file")),
        insecure_tls=bool(record.get("insecure_tls", False)),
    )
    return JobOptions(
        copy=copy,
        connect=connect,
        src_connections=_count(record.get("src_connections")),
        dst_connections=_count(record.get("dst_connections")),
        verify=bool(record.get("verify", False)),
        reports=tuple(p for p in map(_opt_path, reports) if p is not None),  # type: ignore[arg-type]
    )


def describe(job: JobOptions) -> str:
    """The options as `fsmove copy` flags, defaults left out (for `resume`'s first line)."""
    c, k, base = job.copy, job.connect, CopyOptions()
    flags: list[str] = [f"--workers {c.workers}"]
    if c.bwlimit:
        flags.append(f"--bwlimit {human_bytes(c.bwlimit).replace(' ', '')}/s")
    if c.checksum:
        flags.append("--checksum")
    if c.trust_partial:
        flags.append("--trust-partial")
    if c.delete:
        flags.append("--delete")
    if not c.preserve_mtime:
        flags.append("--no-mtime")
    if not c.keep_perms:
        flags.append("--no-perms")
    flags += [f"--include {shown_pattern(p)}" for p in c.filters.include]
    flags += [f"--exclude {shown_pattern(p)}" for p in c.filters.exclude]
    if c.retries != base.retries:
        flags.append(f"--retries {c.retries}")
    if c.retry_delay != base.retry_delay:
        flags.append(f"--retry-delay {c.retry_delay:g}")
    if job.src_connections is not None:
        flags.append(f"--src-connections {job.src_connections}")
    if job.dst_connections is not None:
        flags.append(f"--dst-connections {job.dst_connections}")
    if k.timeout != ConnectOptions.timeout:
        flags.append(f"--timeout {k.timeout:g}")
    if k.known_hosts is not None:
        flags.append(f"--known-hosts {k.known_hosts}")
    if k.accept_new_host_key:
        flags.append("--accept-new-host-key")
    flags += [f"--identity {p}" for p in k.identity_files]
    if k.ca_file is not None:
        flags.append(f"--ca-file {k.ca_file}")
    if k.insecure_tls:
        flags.append("--insecure-tls")
    if job.verify:
        flags.append("--verify")
    flags += [f"--report {p}" for p in job.reports]
    return " ".join(flags)
