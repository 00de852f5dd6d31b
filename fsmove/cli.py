"""The `fsmove` command line. The ONE place where exceptions become exit codes."""

from __future__ import annotations

import signal
import sys
from pathlib import Path
from typing import Annotated, NoReturn

import typer

from fsmove import __version__
from fsmove.clever.migrate_state import Until
from fsmove.demo.sample import SampleSize
from fsmove.endpoints import ConnectOptions
from fsmove.errors import FsmoveError, UsageError
from fsmove.exitcodes import EXIT_CODES_HELP, ExitCode
from fsmove.transfers.backend import AuthError, BackendError, UnsafePathError
from fsmove.transfers.endpoint import EndpointError
from fsmove.transfers.engine import CopyOptions
from fsmove.transfers.plan import Filters
from fsmove.transfers.ratelimit import parse_rate

app = typer.Typer(
    name="fsmove",
    help=(
        "Move a storage bucket (FTP, FTPS, SFTP or local) to another place without losing "
        "a byte: parallel, resumable, verified.\n\n" + EXIT_CODES_HELP
    ),
    no_args_is_help=True,
    pretty_exceptions_enable=False,
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


def fail(exc: BaseException) -> NoReturn:
    code = exit_code_for(exc)
    if _state["debug"]:
        import traceback

        traceback.print_exception(exc)
    if isinstance(exc, KeyboardInterrupt):
        msg = "interrupted: the journal is saved; rerun the same command to resume"
    elif isinstance(exc, FsmoveError | BackendError):
        msg = str(exc)
    elif isinstance(exc, OSError):
        msg = f"{exc.strerror or exc}" + (f": {exc.filename}" if exc.filename else "")
    else:
        msg = f"internal error: {exc.__class__.__name__}: {exc} (rerun with --debug for details)"
    print(f"fsmove: error: {' '.join(msg.split())}", file=sys.stderr)
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
    if timeout <= 0:
        raise UsageError("--timeout must be a positive number of seconds")
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
Quiet = Annotated[bool, typer.Option("--quiet", "-q", help="No progress bars.")]
JsonEvents = Annotated[
    bool, typer.Option("--json", help="One JSON event per line on stdout, for scripts.")
]
Timeout = Annotated[
    float, typer.Option("--timeout", help="Seconds before a silent server counts as lost.")
]
KnownHosts = Annotated[
    Path | None, typer.Option(help="SSH known_hosts file (default ~/.ssh/known_hosts).")
]
Identity = Annotated[list[Path] | None, typer.Option(help="SSH private key file (repeatable).")]
CaFile = Annotated[Path | None, typer.Option(help="CA bundle to verify FTPS certificates.")]
Report = Annotated[
    list[Path] | None,
    typer.Option(help="Write the verification report to FILE.json or FILE.html (repeatable)."),
]
AppName = Annotated[str, typer.Option("--app", help="The application: id app_… or name.")]
OldAddon = Annotated[str, typer.Option("--from", help="The old FS Bucket add-on (id or name).")]
NewAddon = Annotated[str, typer.Option("--to", help="The new FS Bucket add-on (id or name).")]
TtlNameservers = Annotated[
    list[str] | None,
    typer.Option(help="Check the domains' TTL on this server, IP[:PORT] (repeatable)."),
]


@app.command()
def copy(
    src: Annotated[
        str, typer.Argument(help="Source: ftp://, ftps://, sftp://, file:// or a path.")
    ],
    dst: Annotated[str, typer.Argument(help="Destination, same forms as the source.")],
    workers: Workers = 128,
    src_connections: SrcConnections = None,
    dst_connections: DstConnections = None,
    checksum: Annotated[
        bool,
        typer.Option("--checksum", help="Skip only files whose content digests match."),
    ] = False,
    mtime: Annotated[bool, typer.Option(help="Preserve modification times.")] = True,
    dry_run: Annotated[
        bool, typer.Option("--dry-run", help="Print the plan; write nothing.")
    ] = False,
    delete: Annotated[
        bool,
        typer.Option("--delete", help="Delete destination files that are not in the source."),
    ] = False,
    include: Annotated[
        list[str] | None, typer.Option(help="Only copy files matching this glob (repeatable).")
    ] = None,
    exclude: Annotated[
        list[str] | None, typer.Option(help="Do not copy paths matching this glob (repeatable).")
    ] = None,
    bwlimit: Annotated[
        str | None, typer.Option(help="Bandwidth limit, e.g. 10M (bytes per second).")
    ] = None,
    retries: Annotated[int, typer.Option(
        help="Retries per file on transient errors, in a row without progress "
             "(an attempt that got further into the file resets the count).",
        min=0, max=100)] = 5,
    retry_delay: Annotated[
        float, typer.Option(help="Seconds before the first retry (doubles each time).",
                            min=0.0, max=600.0)
    ] = 1.0,
    journal: Annotated[
        Path | None, typer.Option(help="Journal file (default: in the XDG state dir).")
    ] = None,
    verify: Annotated[
        bool, typer.Option("--verify", help="After the copy, verify both trees (see `verify`).")
    ] = False,
    report: Report = None,
    quiet: Quiet = False,
    json_output: JsonEvents = False,
    timeout: Timeout = 30.0,
    known_hosts: KnownHosts = None,
    accept_new_host_key: Annotated[
        bool, typer.Option("--accept-new-host-key",
                           help="Trust and record an SFTP host key never seen before "
                           "(like OpenSSH accept-new; a changed key is always refused).")
    ] = False,
    identity: Identity = None,
    ca_file: CaFile = None,
    insecure_tls: Annotated[
        bool, typer.Option("--insecure-tls",
                           help="FTPS: do not verify the server certificate (unsafe).")
    ] = False,
) -> None:
    """Copy every file from SRC to DST: parallel, resumable, hashed while streaming.

    Rerunning the same command resumes an interrupted copy, or moves only what changed.
    """
    from fsmove.commands.copy import CopyRequest, run_copy

    try:
        rate = parse_rate(bwlimit) if bwlimit is not None else None
    except ValueError as exc:
        fail(UsageError(f"--bwlimit: {exc}"))
    try:
        req = CopyRequest(
            src=src,
            dst=dst,
            options=CopyOptions(
                workers=workers,
                checksum=checksum,
                preserve_mtime=mtime,
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
        )
        if report and not verify:
            raise UsageError("--report goes with --verify")
        if verify:
            from fsmove.commands.verify import check_report_paths

            check_report_paths(tuple(report or ()))
        code = run_copy(req)
        if verify and not dry_run:
            from fsmove.commands.verify import VerifyRequest, run_verify
            from fsmove.verify.results import Tier

            checked = run_verify(
                VerifyRequest(
                    src=src, dst=dst, tier=Tier.FULL, connect=req.connect,
                    reports=tuple(report or ()), src_connections=src_connections,
                    dst_connections=dst_connections, journal=journal,
                    filters=req.options.filters, quiet=quiet, json=json_output,
                )
            )
            code = max(code, checked)
    except (Exception, KeyboardInterrupt) as exc:
        fail(exc)
    raise SystemExit(int(code))


@app.command("verify")
def verify_command(
    src: Annotated[str, typer.Argument(help="Source endpoint (as for copy).")],
    dst: Annotated[str, typer.Argument(help="Destination endpoint.")],
    quick: Annotated[
        bool, typer.Option("--quick", help="Compare listings and sizes only (reads nothing).")
    ] = False,
    sample: Annotated[
        float | None,
        typer.Option(help="Read only a seeded random PCT % of the files (e.g. 5)."),
    ] = None,
    seed: Annotated[
        int | None, typer.Option(help="Seed of --sample (default: random, in the report).")
    ] = None,
    report: Report = None,
    no_journal: Annotated[
        bool, typer.Option("--no-journal", help="Always read the source, even where a "
                           "copy's journal holds a still-valid digest.")
    ] = False,
    journal: Annotated[
        Path | None, typer.Option(help="The copy's journal (default: the job's own).")
    ] = None,
    src_connections: SrcConnections = None,
    dst_connections: DstConnections = None,
    exclude: Annotated[
        list[str] | None, typer.Option(help="Ignore paths matching this glob (repeatable).")
    ] = None,
    quiet: Annotated[bool, typer.Option("--quiet", "-q", help="Print nothing.")] = False,
    json_output: Annotated[
        bool, typer.Option("--json", help="Print the JSON report on stdout.")
    ] = False,
    timeout: Timeout = 30.0,
    known_hosts: KnownHosts = None,
    identity: Identity = None,
    ca_file: CaFile = None,
) -> None:
    """Check that DST holds exactly what SRC does: = identical, + only in source,
    - only in destination, * differs, ! could not be read.

    Exit 0 when everything matched, 4 on any difference, 3 when paths could not be read.
    """
    from fsmove.commands.verify import VerifyRequest, run_verify
    from fsmove.verify.results import Tier

    try:
        if quick and sample is not None:
            raise UsageError("--quick and --sample exclude each other")
        if seed is not None and sample is None:
            raise UsageError("--seed goes with --sample")
        tier = Tier.QUICK if quick else Tier.SAMPLE if sample is not None else Tier.FULL
        code = run_verify(
            VerifyRequest(
                src=src, dst=dst, tier=tier, sample_pct=sample, seed=seed,
                reports=tuple(report or ()),
                connect=_connect_options(
                    timeout=timeout, known_hosts=known_hosts, accept_new_host_key=False,
                    identity=identity, ca_file=ca_file, insecure_tls=False,
                ),
                src_connections=src_connections, dst_connections=dst_connections,
                journal=journal, use_journal=not no_journal,
                filters=Filters(exclude=tuple(exclude or ())), quiet=quiet, json=json_output,
            )
        )
    except (Exception, KeyboardInterrupt) as exc:
        fail(exc)
    raise SystemExit(int(code))


@app.command()
def resume(
    job: Annotated[
        str | None,
        typer.Argument(help="A job id (see `fsmove status`) or journal path; "
                       "default: the most recent unfinished job."),
    ] = None,
    workers: Workers = 128,
    quiet: Quiet = False,
    json_output: JsonEvents = False,
    timeout: Timeout = 30.0,
    known_hosts: KnownHosts = None,
    identity: Identity = None,
    ca_file: CaFile = None,
) -> None:
    """Resume an interrupted copy from its journal (same as rerunning `fsmove copy`).

    Passwords are never stored: they come again from FSMOVE_SRC_PASSWORD /
    FSMOVE_DST_PASSWORD, ~/.netrc or a prompt.
    """
    from fsmove.commands.copy import run_resume

    try:
        code = run_resume(
            job,
            workers=workers,
            quiet=quiet,
            json=json_output,
            connect=_connect_options(
                timeout=timeout,
                known_hosts=known_hosts,
                accept_new_host_key=False,
                identity=identity,
                ca_file=ca_file,
                insecure_tls=False,
            ),
        )
    except (Exception, KeyboardInterrupt) as exc:
        fail(exc)
    raise SystemExit(int(code))


@app.command()
def status(
    job: Annotated[
        str | None, typer.Argument(help="A job id or journal path; omit to list jobs.")
    ] = None,
    json_output: Annotated[bool, typer.Option("--json", help="Print JSON.")] = False,
) -> None:
    """Show a copy job's progress from its journal (works while the copy runs)."""
    from fsmove.commands.status import run_status

    try:
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
        bool, typer.Option("--watch", help="Poll until every domain matches or --timeout.")
    ] = False,
    timeout: Annotated[
        float, typer.Option(help="Seconds --watch waits (each query: at most 5 s).")
    ] = 600.0,
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

    try:
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
    new: Annotated[str, typer.Option(
        "--to", help="The new FS Bucket add-on (id or name); for a PHP app, the zone to "
        "re-create it in (par, mtl, rbx, ...).")],
    old: Annotated[str | None, typer.Option(
        "--from", help="The old FS Bucket add-on (id or name); not for a PHP app.")] = None,
    until: Annotated[
        Until | None,
        typer.Option(help="Stop after this phase; rerun without it to continue "
                     "(e.g. --until verify overnight, the cut-over the next day).")
    ] = None,
    dry_run: Annotated[
        bool, typer.Option("--dry-run", help="Print each phase, the copy's plan and every "
                           "`clever` command that would change something; change nothing.")
    ] = False,
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
    yes: Annotated[bool, typer.Option("--yes", "-y", help="Go ahead without asking "
                                      "(re-creating a PHP app).")] = False,
) -> None:
    """Move APP from bucket OLD to bucket NEW, every phase in order: preflight (the CLI,
    the app, both buckets reachable), copy, verify, delta (copy --delete), cutover, dns.
    A PHP app (`--app APP --to ZONE`) is re-created in ZONE instead: see the README.

    Journaled: a rerun of the same command skips the done phases and continues at the
    one that failed (a verification mismatch sends it back to the copy). Stops with the
    failed phase's exit code (3 partial copy, 4 mismatch: the app untouched).
    """
    from fsmove.commands.migrate import MigrateRequest, run_migrate

    try:
        rate = parse_rate(bwlimit) if bwlimit is not None else None
    except ValueError as exc:
        fail(UsageError(f"--bwlimit: {exc}"))
    try:
        code = run_migrate(MigrateRequest(
            app=app_name, old=old, new=new, until=until, dry_run=dry_run,
            nameservers=tuple(nameserver or ()), reports=tuple(report or ()),
            workers=workers, src_connections=src_connections,
            dst_connections=dst_connections, bwlimit=rate, retries=retries,
            retry_delay=retry_delay, quiet=quiet, yes=yes,
            connect=_connect_options(
                timeout=timeout, known_hosts=None, accept_new_host_key=False,
                identity=None, ca_file=None, insecure_tls=False,
            ),
        ))
    except (Exception, KeyboardInterrupt) as exc:
        fail(exc)
    raise SystemExit(int(code))


def _sigterm(_signum: int, _frame: object) -> None:
    raise KeyboardInterrupt


def main() -> None:
    signal.signal(signal.SIGTERM, _sigterm)
    try:
        app()
    except KeyboardInterrupt as exc:
        fail(exc)


if __name__ == "__main__":
    main()
