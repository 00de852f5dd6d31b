"""The `fsmove` command line. The ONE place where exceptions become exit codes."""

from __future__ import annotations

import math
import signal
import ssl
import sys
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, NoReturn

import typer

from fsmove import __version__
from fsmove.clever.migrate_state import Until
from fsmove.demo.sample import SampleSize
from fsmove.endpoints import ConnectOptions
from fsmove.errors import FsmoveError, UsageError
from fsmove.exitcodes import EXIT_CODES_HELP, ExitCode
from fsmove.help_text import tidy_help
from fsmove.transfers.backend import AuthError, BackendError, UnsafePathError
from fsmove.transfers.copy import CopyOptions
from fsmove.transfers.endpoint import EndpointError
from fsmove.transfers.ratelimit import parse_rate
from fsmove.transfers.tree import Filters

if TYPE_CHECKING:  # imported when a command runs (start-up time)
    from fsmove.output import CommandOutput

app = typer.Typer(
    name="fsmove",
    help=(
        "Move a storage bucket (FTP, FTPS, SFTP or local) to another place without losing "
        "a byte: parallel, resumable, verified.\n\n" + EXIT_CODES_HELP
    ),
    no_args_is_help=True,
    pretty_exceptions_enable=False,
    rich_markup_mode=None,
    add_completion=True,
    context_settings={"help_option_names": ["-h", "--help"]},
)

_state = {"debug": False}


def exit_code_for(exc: BaseException) -> ExitCode:
    """Map any exception to the documented exit codes."""
    if isinstance(exc, KeyboardInterrupt):
        return ExitCode.INTERRUPTED
    if isinstance(exc, FsmoveError):
        return exc.exit_code
    if isinstance(exc, EndpointError | UnsafePathError):
        return ExitCode.USAGE
    if isinstance(exc, AuthError):
        return ExitCode.AUTH
    return ExitCode.ERROR


def error_message(exc: BaseException) -> str:
    """The one line a user sees for ``exc`` (after ``fsmove: error: ``)."""
    if isinstance(exc, KeyboardInterrupt):
        msg = "interrupted: the journal is saved; rerun the same command to resume"
    elif isinstance(exc, FsmoveError | BackendError):
        msg = str(exc)
    elif isinstance(exc, OSError):
        msg = f"{exc.strerror or exc}" + (f": {exc.filename}" if exc.filename else "")
    else:
        msg = f"internal error: {exc.__class__.__name__}: {exc} (rerun with --debug for details)"
    return " ".join(msg.split())


def fail(exc: BaseException, output: CommandOutput | None = None) -> NoReturn:
    """Print ``exc`` as one line and exit with its code. ``output``, the command's
    output, erases its live display first (the error never lands on a bar's line) and
    ends its JSON stream and log file with the outcome."""
    code = exit_code_for(exc)
    msg = error_message(exc)
    if output is not None:
        output.fatal(msg, int(code), interrupted=isinstance(exc, KeyboardInterrupt))
    if _state["debug"]:
        import traceback

        traceback.print_exception(exc)
    print(f"fsmove: error: {msg}", file=sys.stderr)
    raise SystemExit(int(code))


def _version(value: bool) -> None:
    if value:
        print(f"fsmove {__version__}")
        raise typer.Exit()


@app.callback()
def main_options(
    version: Annotated[
        bool,
        typer.Option("--version", callback=_version, is_eager=True, help="Show the version."),
    ] = False,
    debug: Annotated[
        bool, typer.Option("--debug", help="Show tracebacks on errors (never passwords).")
    ] = False,
) -> None:
    _state["debug"] = debug


def _connect_options(
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
            raise UsageError(f"{flag} {path}: no such file")
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



# Options shared by several commands, declared once.
Workers = Annotated[int, typer.Option(help="Files moved at once.", min=1, max=512)]
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
    metavar="GLOB", help="Only files matching this glob (repeatable).")]
Exclude = Annotated[list[str] | None, typer.Option(
    metavar="GLOB", help="Leave out paths matching this glob (repeatable).")]
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


def _output(*, command: str, quiet: bool, verbose: bool, json_output: bool,
            stats: str | None, log_file: Path | None) -> CommandOutput:
    """The command's output, from the options every streaming command shares."""
    from fsmove.output import CommandOutput, OutputSettings, parse_interval

    if quiet and verbose:
        raise UsageError("--quiet and --verbose exclude each other")
    return CommandOutput(
        OutputSettings(quiet=quiet, verbose=verbose, json=json_output,
                       stats=parse_interval(stats) if stats is not None else None,
                       log_file=log_file),
        command=command,
    )


@app.command()
def copy(
    src: Annotated[str, typer.Argument(
        metavar="SRC", help="Source: ftp://, ftps://, sftp://, file://, clever:// or a path.")],
    dst: Annotated[str, typer.Argument(
        metavar="DST", help="Destination, same forms as the source.")],
    workers: Workers = 128,
    src_connections: SrcConnections = None,
    dst_connections: DstConnections = None,
    checksum: Annotated[
        bool,
        typer.Option("--checksum", help="Skip only files whose content digests match."),
    ] = False,
    mtime: Annotated[bool, typer.Option(help="Preserve modification times.")] = True,
    perms: Annotated[bool, typer.Option(
        help="Give copied files the source's permission bits where the destination can set "
             "them (--no-perms: 0644, never wider than the source's).")] = True,
    dry_run: Annotated[
        bool, typer.Option("--dry-run", help="Say what would be copied, skipped and deleted "
                           "(counts; paths and sizes with -v); write nothing.")
    ] = False,
    delete: Annotated[
        bool,
        typer.Option("--delete", help="Delete destination files that are not in the source."),
    ] = False,
    include: Include = None,
    exclude: Exclude = None,
    bwlimit: Annotated[
        str | None, typer.Option(metavar="RATE",
                                 help="Bandwidth limit in bytes per second, e.g. 10M.")
    ] = None,
    retries: Annotated[int, typer.Option(
        metavar="N",
        help="Retries per file on transient errors, in a row without progress "
             "(an attempt that got further into the file resets the count).",
        min=0, max=100)] = 5,
    retry_delay: Annotated[
        float, typer.Option(metavar="SECONDS",
                            help="Seconds before the first retry (doubles each time).",
                            min=0.0, max=600.0)
    ] = 1.0,
    journal: Annotated[
        Path | None, typer.Option(metavar="FILE",
                                  help="Journal file (default: in the XDG state dir).")
    ] = None,
    verify: Annotated[
        bool, typer.Option("--verify", help="After the copy, verify both trees (see `verify`).")
    ] = False,
    report: Report = None,
    list_all: ListAll = False,
    quiet: Quiet = False,
    verbose: Verbose = False,
    json_output: JsonEvents = False,
    stats: Stats = None,
    log_file: LogFile = None,
    timeout: Timeout = 30.0,
    known_hosts: KnownHosts = None,
    accept_new_host_key: AcceptNewHostKey = False,
    identity: Identity = None,
    ca_file: CaFile = None,
    insecure_tls: InsecureTls = False,
) -> None:
    """Copy every file from SRC to DST: parallel, resumable, hashed while streaming.

    Rerunning the same command resumes an interrupted copy, or moves only what changed.

    Passwords come from, first found: the URL itself (accepted and masked everywhere, but
    it stays in your shell history: better not), FSMOVE_SRC_PASSWORD /
    FSMOVE_DST_PASSWORD, ~/.netrc (machine HOST login USER password PASS), or a prompt
    when stdin is a terminal. SFTP without a password uses your SSH keys (agent, ~/.ssh,
    --identity) and ~/.ssh/config. clever://ADDON asks the clever CLI for the bucket's
    host and password.

    On a terminal a live display shows the transfers in flight; redirected to a file, a
    plain progress line every 60 s (--stats) and the summary, never a carriage return.

    Examples:

      fsmove copy ftp://user@old.example.com/www sftp://user@new.example.com/www
      fsmove copy ./uploads ftps://user@host/up --exclude '*.tmp' --bwlimit 20M
      fsmove copy SRC DST --delete --dry-run -v     # what would change, per file
    """
    from fsmove.commands.copy import CopyRequest, run_copy_and_verify

    out: CommandOutput | None = None
    try:
        out = _output(command="copy", quiet=quiet, verbose=verbose, json_output=json_output,
                      stats=stats, log_file=log_file)
        try:
            rate = parse_rate(bwlimit) if bwlimit is not None else None
        except ValueError as exc:
            raise UsageError(f"--bwlimit: {exc}") from None
        req = CopyRequest(
            src=src,
            dst=dst,
            options=CopyOptions(
                workers=workers,
                checksum=checksum,
                preserve_mtime=mtime,
                keep_perms=perms,
                dry_run=dry_run,
                delete=delete,
                filters=Filters(include=tuple(include or ()), exclude=tuple(exclude or ())),
                bwlimit=rate,
                retries=retries,
                retry_delay=retry_delay,
            ),
            connect=_connect_options(
                timeout=timeout,
                known_hosts=known_hosts,
                accept_new_host_key=accept_new_host_key,
                identity=identity,
                ca_file=ca_file,
                insecure_tls=insecure_tls,
            ),
            src_connections=src_connections,
            dst_connections=dst_connections,
            journal=journal,
            quiet=quiet,
            json=json_output,
            verify=verify,
            reports=tuple(report or ()),
            list_all=list_all,
        )
        code = run_copy_and_verify(req, out)
    except (Exception, KeyboardInterrupt) as exc:
        fail(exc, out)
    out.close(code)
    raise SystemExit(int(code))


@app.command("verify")
def verify_command(
    src: Annotated[str, typer.Argument(metavar="SRC", help="Source endpoint (as for copy).")],
    dst: Annotated[str, typer.Argument(metavar="DST", help="Destination endpoint.")],
    quick: Annotated[
        bool, typer.Option("--quick", help="Compare listings and sizes only (reads nothing).")
    ] = False,
    sample: Annotated[
        float | None,
        typer.Option(metavar="PCT", help="Read only a seeded random PCT % of the files "
                     "(e.g. 5)."),
    ] = None,
    seed: Annotated[
        int | None, typer.Option(metavar="N",
                                 help="Seed of --sample (default: random, in the report).")
    ] = None,
    report: Report = None,
    list_all: ListAll = False,
    no_journal: Annotated[
        bool, typer.Option("--no-journal", help="Always read the source, even where a "
                           "copy's journal holds a still-valid digest.")
    ] = False,
    journal: Annotated[
        Path | None, typer.Option(metavar="FILE",
                                  help="The copy's journal (default: the job's own).")
    ] = None,
    src_connections: SrcConnections = None,
    dst_connections: DstConnections = None,
    include: Include = None,
    exclude: Exclude = None,
    bwlimit: Annotated[
        str | None, typer.Option(metavar="RATE",
                                 help="Bandwidth limit in bytes read per second, both "
                                 "sides together, e.g. 10M.")
    ] = None,
    quiet: Quiet = False,
    verbose: Verbose = False,
    json_output: JsonEvents = False,
    stats: Stats = None,
    log_file: LogFile = None,
    timeout: Timeout = 30.0,
    known_hosts: KnownHosts = None,
    accept_new_host_key: AcceptNewHostKey = False,
    identity: Identity = None,
    ca_file: CaFile = None,
    insecure_tls: InsecureTls = False,
) -> None:
    """Check that DST holds exactly what SRC does: = identical, + only in source,
    - only in destination, * differs, ! could not be read.

    Never writes to either side. With --json, the report is one "verification" event,
    followed by the "summary" event.
    """
    from fsmove.commands.verify import VerifyRequest, run_verify
    from fsmove.verify.results import Tier

    out: CommandOutput | None = None
    try:
        out = _output(command="verify", quiet=quiet, verbose=verbose,
                      json_output=json_output, stats=stats, log_file=log_file)
        if quick and sample is not None:
            raise UsageError("--quick and --sample exclude each other")
        if seed is not None and sample is None:
            raise UsageError("--seed goes with --sample")
        tier = Tier.QUICK if quick else Tier.SAMPLE if sample is not None else Tier.FULL
        try:
            rate = parse_rate(bwlimit) if bwlimit is not None else None
        except ValueError as exc:
            raise UsageError(f"--bwlimit: {exc}") from None
        code = run_verify(
            VerifyRequest(
                src=src, dst=dst, tier=tier, sample_pct=sample, seed=seed,
                reports=tuple(report or ()),
                connect=_connect_options(
                    timeout=timeout, known_hosts=known_hosts,
                    accept_new_host_key=accept_new_host_key,
                    identity=identity, ca_file=ca_file, insecure_tls=insecure_tls,
                ),
                src_connections=src_connections, dst_connections=dst_connections,
                journal=journal, use_journal=not no_journal,
                filters=Filters(include=tuple(include or ()), exclude=tuple(exclude or ())),
                quiet=quiet, json=json_output, list_all=list_all, bwlimit=rate,
            ),
            out,
        )
    except (Exception, KeyboardInterrupt) as exc:
        fail(exc, out)
    out.close(code)
    raise SystemExit(int(code))


@app.command()
def resume(
    job: Annotated[
        str | None,
        typer.Argument(metavar="JOB", help="A job id (see `fsmove status`) or journal "
                       "path; default: the only unfinished job (several: name one)."),
    ] = None,
    workers: Annotated[
        int | None, typer.Option(help="Files moved at once (default: as the job was started).",
                                 min=1, max=512)
    ] = None,
    bwlimit: Annotated[
        str | None, typer.Option(metavar="RATE",
                                 help="Bandwidth limit, e.g. 10M (default: the job's own).")
    ] = None,
    quiet: Quiet = False,
    verbose: Verbose = False,
    json_output: JsonEvents = False,
    timeout: Annotated[
        float | None, typer.Option("--timeout", help="Seconds before a silent server "
                                   "counts as lost (default: the job's own).")
    ] = None,
    stats: Stats = None,
    log_file: LogFile = None,
    known_hosts: KnownHosts = None,
    accept_new_host_key: AcceptNewHostKey = False,
    identity: Identity = None,
    ca_file: CaFile = None,
    insecure_tls: InsecureTls = False,
) -> None:
    """Resume a copy from its journal with every option it was started with (printed
    first); options given here replace the saved ones.

    Passwords are never stored: they come again from FSMOVE_SRC_PASSWORD /
    FSMOVE_DST_PASSWORD, ~/.netrc or a prompt. A job started with --delete deletes
    again (said before it starts).
    """
    from fsmove.commands.copy import ResumeOverrides, run_resume

    out: CommandOutput | None = None
    try:
        out = _output(command="resume", quiet=quiet, verbose=verbose,
                      json_output=json_output, stats=stats, log_file=log_file)
        try:
            rate = parse_rate(bwlimit) if bwlimit is not None else None
        except ValueError as exc:
            raise UsageError(f"--bwlimit: {exc}") from None
        if timeout is not None:
            _connect_options(timeout=timeout, known_hosts=None, accept_new_host_key=False,
                             identity=None, ca_file=None, insecure_tls=False)
        code = run_resume(
            job,
            ResumeOverrides(
                workers=workers, bwlimit=rate, timeout=timeout, known_hosts=known_hosts,
                identity=tuple(identity or ()), ca_file=ca_file, quiet=quiet,
                json=json_output, accept_new_host_key=accept_new_host_key,
                insecure_tls=insecure_tls,
            ),
            output=out,
        )
    except (Exception, KeyboardInterrupt) as exc:
        fail(exc, out)
    out.close(code)
    raise SystemExit(int(code))


@app.command()
def status(
    job: Annotated[
        str | None, typer.Argument(help="A job id or journal path; omit to list jobs.")
    ] = None,
    json_output: Annotated[bool, typer.Option("--json", help="Print JSON.")] = False,
    prune: Annotated[
        bool, typer.Option("--prune", help="Delete the journals of jobs idle for longer "
                           "than --older-than (never a running one).")
    ] = False,
    older_than: Annotated[
        str, typer.Option(help="With --prune: an age like 30d, 12h or 90m.")
    ] = "30d",
) -> None:
    """Show copy jobs (state, files, bytes, percent, ETA) from their journals; works
    while a copy runs. States: running, ok, partial, interrupted, failed: <why>."""
    from fsmove.commands.status import run_prune, run_status

    try:
        if prune and job is not None:
            raise UsageError("--prune applies to every job: give no JOB")
        if prune:
            code = run_prune(older_than, as_json=json_output)
        else:
            code = run_status(job, as_json=json_output)
    except (Exception, KeyboardInterrupt) as exc:
        fail(exc)
    raise SystemExit(int(code))


@app.command("dns")
def dns_command(
    domains: Annotated[list[str], typer.Argument(help="Domains to check, e.g. www.example.org.")],
    expect: Annotated[
        list[str] | None,
        typer.Option(help="A record to expect, TYPE=VALUE (e.g. A=192.0.2.1; repeatable)."),
    ] = None,
    zone: Annotated[
        str | None,
        typer.Option(help="Expect CNAME domain.ZONE.clever-cloud.com. (par, ldn, mtl, rbx, "
                     "scw, sgp, syd, wsw)."),
    ] = None,
    max_ttl: Annotated[
        int, typer.Option(help="The TTL to have before a switch, in seconds.")
    ] = 60,
    nameserver: Annotated[
        list[str] | None,
        typer.Option(help="Ask this server, IP[:PORT] (repeatable; default: the system's "
                     "resolver; the domain's own server shows the TTL as configured)."),
    ] = None,
    watch: Annotated[
        bool, typer.Option("--watch", help="Poll until every domain matches or "
                           "--watch-timeout passes.")
    ] = False,
    watch_timeout: Annotated[
        float, typer.Option("--watch-timeout", "--for", metavar="SECONDS",
                            help="Seconds --watch waits (each query: at most 5 s).")
    ] = 600.0,
    # The old spelling, kept hidden for one release: --timeout means "seconds without
    # data" in copy, verify and migrate.
    old_timeout: Annotated[
        float | None, typer.Option("--timeout", hidden=True)
    ] = None,
    interval: Annotated[float, typer.Option(help="Seconds between --watch polls.")] = 5.0,
    json_output: Annotated[bool, typer.Option("--json", help="Print one JSON document.")] = False,
) -> None:
    """Check the DNS of domains for a cut-over: what each points at now, its TTL and the
    TTL advice, whether it matches what is expected, and the exact record to set if not.

    Reads DNS only; your DNS provider makes the change. Exit 0 when every domain matches
    (or nothing is expected), 4 when some domain does not match yet (the verification
    mismatch code, reused), 2 on bad input, 1 when the name server does not answer.
    """
    from fsmove.commands.dns import DnsRequest, run_dns

    timeout = watch_timeout if old_timeout is None else old_timeout
    try:
        if not timeout > 0:
            spelled = "--watch-timeout" if old_timeout is None else \
                "--timeout (now spelled --watch-timeout)"
            raise UsageError(f"{spelled} must be a positive number of seconds")
        code = run_dns(
            DnsRequest(
                domains=tuple(domains), expect=tuple(expect or ()), zone=zone,
                max_ttl=max_ttl, nameservers=tuple(nameserver or ()), watch=watch,
                timeout=timeout, interval=interval, json=json_output,
            )
        )
    except (Exception, KeyboardInterrupt) as exc:
        fail(exc)
    raise SystemExit(int(code))


@app.command()
def demo(
    workdir: Annotated[
        Path | None,
        typer.Option(help="Folder for the buckets, the journal and the reports "
                     "(default: a new temporary folder, kept and shown)."),
    ] = None,
    keep: Annotated[
        bool, typer.Option("--keep", help="Keep the two buckets' folders too.")
    ] = False,
    size: Annotated[
        SampleSize, typer.Option(help="Sample bucket: normal (~300 files, ~150 MiB) or "
                                 "small (~50 files, ~5 MiB).")
    ] = SampleSize.NORMAL,
) -> None:
    """Run a demo migration between two local FTP servers: copy, crash, resume, verify.

    Needs no server and no network: both buckets are FTP servers embedded in this
    process, on 127.0.0.1. Ends with the same commands for real Clever Cloud buckets.
    """
    from fsmove.commands.demo import DemoRequest, run_demo

    try:
        code = run_demo(DemoRequest(workdir=workdir, keep=keep, size=size))
    except (Exception, KeyboardInterrupt) as exc:
        fail(exc)
    raise SystemExit(int(code))


@app.command()
def plan(
    app_name: AppName,
    to: Annotated[str, typer.Option("--to", help="The zone to move to (par, ldn, mtl, rbx, "
                                    "scw, sgp, syd, wsw).")],
    repo: Annotated[
        Path | None, typer.Option(help="The app's repository, to look for "
                                  "clevercloud/buckets.json (it overrides CC_FS_BUCKET*).")
    ] = None,
    nameserver: Annotated[
        list[str] | None,
        typer.Option(help="Also show each domain's records and TTL as this server answers, "
                     "IP[:PORT] (repeatable; the domain's own server shows the real TTL).")
    ] = None,
    json_output: Annotated[bool, typer.Option("--json", help="Print one JSON document.")] = False,
) -> None:
    """Show what moving APP to another zone involves: its add-ons (who moves each), the
    buckets fsmove copies and the command making each new one, the CC_FS_BUCKET*
    variables, the domains, and the steps in order. Changes nothing.

    Needs the `clever` CLI (clever-tools; FSMOVE_CLEVER names it) logged in.
    """
    import json

    from fsmove.clever.cli import CleverCli
    from fsmove.clever.plan import build_plan, render_plan

    try:
        result = build_plan(CleverCli(), app=app_name, to_zone=to, repo=repo,
                            nameservers=tuple(nameserver or ()))
        print(json.dumps(result.as_json(), indent=2) if json_output else render_plan(result))
    except (Exception, KeyboardInterrupt) as exc:
        fail(exc)
    raise SystemExit(int(ExitCode.OK))


@app.command()
def cutover(
    app_name: AppName,
    old: OldAddon,
    new: NewAddon,
    dry_run: Annotated[
        bool, typer.Option("--dry-run", help="Print every `clever` command that would "
                           "change something; change nothing.")
    ] = False,
    nameserver: TtlNameservers = None,
) -> None:
    """Switch APP from the old bucket to the new one: link the new, point every
    CC_FS_BUCKET* variable at it (folder and :async kept), unlink the old, restart;
    then print the DNS records to set. Journaled: a rerun continues at the failed step.

    Run it after the last `fsmove copy … --delete` pass. Needs the `clever` CLI logged in.
    """
    from fsmove.clever.cutover import CutoverRequest, run_cutover

    try:
        code = run_cutover(CutoverRequest(app=app_name, old=old, new=new, dry_run=dry_run,
                                          nameservers=tuple(nameserver or ())))
    except (Exception, KeyboardInterrupt) as exc:
        fail(exc)
    raise SystemExit(int(code))


@app.command()
def migrate(
    app_name: AppName,
    to: Annotated[str, typer.Option("--to", help="The zone to move the app to (par, ldn, "
                                    "mtl, rbx, scw, sgp, syd, wsw).")],
    bucket: Annotated[
        list[str] | None,
        typer.Option(help="OLD=NEW: use NEW, an FS Bucket you made in the zone, for the "
                     "app's bucket OLD instead of creating one (ids or names; repeatable).")
    ] = None,
    until: Annotated[
        Until | None,
        typer.Option(help="Stop after this phase; rerun without it to continue "
                     "(e.g. --until verify overnight, the switch the next day).")
    ] = None,
    yes: Annotated[bool, typer.Option("--yes", "-y", help="Go ahead without asking.")] = False,
    dry_run: Annotated[
        bool, typer.Option("--dry-run", help="Print every phase, the copy's plan and every "
                           "`clever` command and API request that would change something; "
                           "change nothing.")
    ] = False,
    repo: Annotated[
        Path | None, typer.Option(help="The app's repository, to read "
                                  "clevercloud/buckets.json (it overrides CC_FS_BUCKET*).")
    ] = None,
    nameserver: TtlNameservers = None,
    report: Report = None,
    workers: Workers = 128,
    src_connections: SrcConnections = None,
    dst_connections: DstConnections = None,
    bwlimit: Annotated[
        str | None, typer.Option(help="Bandwidth limit, e.g. 10M (bytes per second).")
    ] = None,
    retries: Annotated[int, typer.Option(
        help="Retries per file on transient errors, in a row without progress.",
        min=0, max=100)] = 5,
    retry_delay: Annotated[
        float, typer.Option(help="Seconds before the first retry (doubles each time).",
                            min=0.0, max=600.0)
    ] = 1.0,
    quiet: Quiet = False,
    timeout: Timeout = 30.0,
) -> None:
    """Move APP (personal space or organisation, name or id) to ZONE with every FS Bucket
    it mounts: preflight, create (a new bucket per old one, same plan), copy, verify,
    delta, switch (zone, links, CC_FS_BUCKET*, one redeploy), catchup, dns.

    Journaled per app and zone: a rerun continues where the last run stopped, never
    creating a second bucket nor redeploying twice. Needs --yes (or a terminal to ask).
    """
    from fsmove.commands.migrate import MigrateRequest, run_migrate

    try:
        rate = parse_rate(bwlimit) if bwlimit is not None else None
    except ValueError as exc:
        fail(UsageError(f"--bwlimit: {exc}"))
    try:
        code = run_migrate(MigrateRequest(
            app=app_name, zone=to, buckets=tuple(bucket or ()), until=until,
            dry_run=dry_run, yes=yes, repo=repo,
            nameservers=tuple(nameserver or ()), reports=tuple(report or ()),
            workers=workers, src_connections=src_connections,
            dst_connections=dst_connections, bwlimit=rate, retries=retries,
            retry_delay=retry_delay, quiet=quiet,
            connect=_connect_options(
                timeout=timeout, known_hosts=None, accept_new_host_key=False,
                identity=None, ca_file=None, insecure_tls=False,
            ),
        ))
    except (Exception, KeyboardInterrupt) as exc:
        fail(exc)
    raise SystemExit(int(code))


def _sigterm(_signum: int, frame: object) -> None:
    """SIGTERM is Ctrl-C. Inside ``asyncio.run`` the SIGINT handler is asyncio's own: it
    cancels the main task, so every task unwinds at an await (no journal record is cut
    in half), the run records "interrupted" and the JSON stream gets its summary, then
    KeyboardInterrupt ends the command with 130. Elsewhere it raises KeyboardInterrupt
    at once (a second signal too: the user insists)."""
    handler = signal.getsignal(signal.SIGINT)
    if callable(handler) and handler is not signal.default_int_handler:
        handler(signal.SIGINT, frame)
        return
    raise KeyboardInterrupt


def _usage_error_types() -> tuple[type[BaseException], type[BaseException]]:
    """Click's UsageError and NoArgsIsHelpError: vendored by Typer >= 0.2x, the click
    package before."""
    try:
        from typer._click import exceptions as click_exceptions
    except ImportError:  # Typer with click as a separate package
        from click import exceptions as click_exceptions  # type: ignore[no-redef]
    return click_exceptions.UsageError, click_exceptions.NoArgsIsHelpError


def main() -> None:
    # Ctrl-C is KeyboardInterrupt even when fsmove was started with SIGINT ignored (a
    # non-interactive shell's background job, some CI runners): Python keeps an inherited
    # SIG_IGN, and an interrupt would then be lost (a watch running to its timeout, a
    # migration going on).
    signal.signal(signal.SIGINT, signal.default_int_handler)
    signal.signal(signal.SIGTERM, _sigterm)
    try:  # a signal while the command is still being built is an interruption too
        usage_error, no_args = _usage_error_types()
        command = typer.main.get_command(app)
        tidy_help(command)
    except KeyboardInterrupt as exc:
        fail(exc)
    try:
        result = command.main(prog_name="fsmove", standalone_mode=False)
    except no_args as exc:
        exc.show()  # a command given without its arguments: its help
        raise SystemExit(int(ExitCode.USAGE)) from None
    except usage_error as exc:
        ctx = getattr(exc, "ctx", None)
        where = ctx.command_path if ctx is not None else "fsmove"
        message = " ".join(exc.format_message().split())
        print(f"fsmove: error: {message} (see '{where} --help')", file=sys.stderr)
        raise SystemExit(int(ExitCode.USAGE)) from None
    except KeyboardInterrupt as exc:
        fail(exc)
    raise SystemExit(result if isinstance(result, int) else 0)


if __name__ == "__main__":
    main()
