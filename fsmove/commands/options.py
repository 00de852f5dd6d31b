"""What several commands share on their command line, declared once: the options
(Typer ``Annotated`` types, same help everywhere) and the builders that turn flags into
the values the layers below take (``ConnectOptions``, ``CopyOptions``), each built once
per command."""

from __future__ import annotations

import math
import ssl
from pathlib import Path
from typing import TYPE_CHECKING, Annotated

import typer

from fsmove.endpoint_access import ConnectOptions
from fsmove.errors import UsageError
from fsmove.transfers.ratelimit import parse_rate
from fsmove.transfers.tree import Filters

if TYPE_CHECKING:
    from fsmove.transfers.copy import CopyOptions

# Options shared by several commands, declared once.
Workers = Annotated[int, typer.Option(help="Files moved at once.", min=1, max=1024)]
SrcConnections = Annotated[
    int | None,
    typer.Option(help="Max connections to the source (default by scheme).", min=1, max=128),
]
DstConnections = Annotated[
    int | None, typer.Option(help="Max connections to the destination.", min=1, max=128)
]
Quiet = Annotated[bool, typer.Option(
    "--quiet", "-q", help="Print only the summary and errors (no progress).")]
Verbose = Annotated[bool, typer.Option(
    "--verbose", "-v", help="One line per file (copied, deleted; in a dry run: would copy, "
    "would skip, with sizes).")]
JsonEvents = Annotated[bool, typer.Option(
    "--json", help="One JSON event per line on stdout, for scripts; the last one is the "
    "summary, whatever the outcome (ok, partial, error, interrupted).")]
Stats = Annotated[str | None, typer.Option(
    "--stats", metavar="DURATION",
    help="Print a plain progress line every DURATION (e.g. 30s, 5m; 0: none) instead of "
    "the live display. Off a terminal this is the default, every 60s.")]
LogFile = Annotated[Path | None, typer.Option(
    "--log-file", metavar="FILE",
    help="Also append the messages, a progress line every --stats (default 60s) and the "
    "summary to FILE, each line with its time.")]
Timeout = Annotated[float, typer.Option(
    "--timeout", metavar="SECONDS",
    help="Seconds without any answer or data before a server counts as lost.")]
KnownHosts = Annotated[Path | None, typer.Option(
    metavar="FILE", help="SSH known_hosts file (default: UserKnownHostsFile of "
    "~/.ssh/config, else ~/.ssh/known_hosts).")]
AcceptNewHostKey = Annotated[bool, typer.Option(
    "--accept-new-host-key", help="Trust and record an SFTP host key never seen before "
    "(like OpenSSH accept-new; a changed key is always refused).")]
Identity = Annotated[list[Path] | None, typer.Option(
    metavar="KEY", help="SSH private key file (repeatable).")]
CaFile = Annotated[Path | None, typer.Option(
    metavar="PEM", help="CA bundle to verify FTPS certificates (e.g. a server's "
    "self-signed certificate).")]
InsecureTls = Annotated[bool, typer.Option(
    "--insecure-tls", help="FTPS: do not verify the server certificate (unsafe).")]
Include = Annotated[list[str] | None, typer.Option(
    metavar="GLOB", help="Only files matching this glob (repeatable; rules as --exclude).")]
Exclude = Annotated[list[str] | None, typer.Option(
    metavar="GLOB", help="Leave out paths matching this glob (repeatable), as rsync: at "
    "any depth unless it starts with / (anchored at the root); a trailing / names folders "
    "only; * and ? stay within a name, ** crosses folders. Nothing at or below an "
    "excluded folder is copied, compared or deleted.")]
ListAll = Annotated[bool, typer.Option(
    "--list-all", help="The reports list every file with its digest, identical ones "
    "included: the record of what was moved.")]
Report = Annotated[
    list[Path] | None,
    typer.Option(metavar="FILE", help="Write the verification report to FILE.json or "
                 "FILE.html (repeatable)."),
]
AppName = Annotated[str, typer.Option("--app", help="The application: id app_… or name.")]
OldAddon = Annotated[str, typer.Option("--from", help="The old FS Bucket add-on (id or name).")]
NewAddon = Annotated[str, typer.Option("--to", help="The new FS Bucket add-on (id or name).")]
TtlNameservers = Annotated[
    list[str] | None,
    typer.Option(help="Check the domains' TTL on this server, IP[:PORT] (repeatable)."),
]


TrustPartial = Annotated[bool, typer.Option(
    "--trust-partial",
    help="On resume, keep what an interrupted run left after checking only its last "
         "block, not re-reading every kept block on both sides (huge files over a "
         "slow link; a server crash that lost writes is then not seen).")]


def not_a_file(path: Path) -> str:
    """Why ``path``, given where a file is wanted, is not one, in a few words."""
    if path.is_dir():
        return "a folder, not a file"
    if path.exists():
        return "not a regular file"
    return "no such file"


def connect_options(
    *,
    timeout: float,
    known_hosts: Path | None,
    accept_new_host_key: bool,
    identity: list[Path] | None,
    ca_file: Path | None,
    insecure_tls: bool,
) -> ConnectOptions:
    if not math.isfinite(timeout) or timeout <= 0:
        raise UsageError("--timeout must be a positive number of seconds")
    for flag, path in (("--ca-file", ca_file), *(("--identity", p) for p in identity or ())):
        if path is not None and not path.is_file():
            raise UsageError(f"{flag} {path}: {not_a_file(path)}")
    if ca_file is not None:
        if insecure_tls:
            raise UsageError("--ca-file and --insecure-tls exclude each other")
        try:
            ssl.create_default_context(cafile=str(ca_file))
        except (ssl.SSLError, OSError, ValueError) as exc:
            raise UsageError(f"--ca-file {ca_file}: not a PEM file of CA certificates "
                             f"({getattr(exc, 'reason', None) or exc})") from None
    return ConnectOptions(
        timeout=timeout,
        known_hosts=known_hosts,
        accept_new_host_key=accept_new_host_key,
        identity_files=tuple(identity or ()),
        ca_file=ca_file,
        insecure_tls=insecure_tls,
    )


def bandwidth_limit(text: str | None) -> float | None:
    """``--bwlimit`` (e.g. ``10M``) in bytes per second; None: no limit."""
    try:
        return parse_rate(text) if text is not None else None
    except ValueError as exc:
        raise UsageError(f"--bwlimit: {exc}") from None


def copy_options(*, workers: int, bwlimit: str | None, retries: int, retry_delay: float,
                 checksum: bool = False, trust_partial: bool = False,
                 preserve_mtime: bool = True,
                 keep_perms: bool = True, dry_run: bool = False, delete: bool = False,
                 include: list[str] | None = None,
                 exclude: list[str] | None = None) -> CopyOptions:
    """The copy engine's options from a command's flags: the one place they are built
    (`copy`, and `migrate` for each of its copy phases, which change only ``delete``,
    ``checksum`` or ``filters`` from there)."""
    from fsmove.transfers.copy import CopyOptions  # the engine: when a command runs

    return CopyOptions(
        workers=workers, checksum=checksum, trust_partial=trust_partial,
        preserve_mtime=preserve_mtime, keep_perms=keep_perms, dry_run=dry_run, delete=delete,
        filters=Filters(include=tuple(include or ()), exclude=tuple(exclude or ())),
        bwlimit=bandwidth_limit(bwlimit), retries=retries, retry_delay=retry_delay,
    )
