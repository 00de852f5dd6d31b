"""`fsmove copy SRC DST`: its command line (the copy itself: fsmove/commands/copy.py).
Light on purpose: what the command needs is imported when it runs (the start-up time
of every `fsmove`)."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

from fsmove.command_entry import CommandRun, run_command
from fsmove.commands import options as opt
from fsmove.exitcodes import ExitCode


def copy_command(
    ctx: typer.Context,
    src: Annotated[str, typer.Argument(
        metavar="SRC", help="Source: ftp://, ftps://, sftp://, file://, clever:// or a path.")],
    dst: Annotated[str, typer.Argument(
        metavar="DST", help="Destination, same forms as the source.")],
    workers: opt.Workers = 512,
    src_connections: opt.SrcConnections = None,
    dst_connections: opt.DstConnections = None,
    checksum: Annotated[
        bool,
        typer.Option("--checksum", help="Skip only files whose content digests match."),
    ] = False,
    trust_partial: opt.TrustPartial = False,
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
    include: opt.Include = None,
    exclude: opt.Exclude = None,
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
    report: opt.Report = None,
    list_all: opt.ListAll = False,
    quiet: opt.Quiet = False,
    verbose: opt.Verbose = False,
    json_output: opt.JsonEvents = False,
    stats: opt.Stats = None,
    log_file: opt.LogFile = None,
    timeout: opt.Timeout = 30.0,
    known_hosts: opt.KnownHosts = None,
    accept_new_host_key: opt.AcceptNewHostKey = False,
    identity: opt.Identity = None,
    ca_file: opt.CaFile = None,
    insecure_tls: opt.InsecureTls = False,
) -> None:
    """Copy every file from SRC to DST: parallel, resumable, hashed while streaming.

    Rerunning the same command resumes an interrupted copy, or moves only what changed.

    Passwords come from, first found: the URL itself (accepted and masked in fsmove's
    output, but it stays in your shell history and other users of this machine see it
    in `ps` while fsmove runs: better not), FSMOVE_SRC_PASSWORD /
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
    # First the connections (their round trips and the servers' start of a session
    # overlap the imports below; fsmove/endpoint_access.py), then the copy's code.
    from fsmove.endpoint_access import connect_early
    from fsmove.transfers import preconnect

    connect_early((src, dst), timeout=timeout)
    from fsmove.commands.copy import CopyRequest, run_copy_and_verify

    def body(run: CommandRun) -> ExitCode:
        out = run.open_output(command="copy", quiet=quiet, verbose=verbose,
                              json_output=json_output, stats=stats, log_file=log_file)
        return run_copy_and_verify(CopyRequest(
            src=src,
            dst=dst,
            options=opt.copy_options(
                workers=workers, checksum=checksum, trust_partial=trust_partial,
                preserve_mtime=mtime, keep_perms=perms,
                dry_run=dry_run, delete=delete, include=include, exclude=exclude,
                bwlimit=bwlimit, retries=retries, retry_delay=retry_delay,
            ),
            connect=opt.connect_options(
                timeout=timeout, known_hosts=known_hosts,
                accept_new_host_key=accept_new_host_key, identity=identity,
                ca_file=ca_file, insecure_tls=insecure_tls,
            ),
            src_connections=src_connections,
            dst_connections=dst_connections,
            journal=journal,
            quiet=quiet,
            json=json_output,
            verify=verify,
            reports=tuple(report or ()),
            list_all=list_all,
        ), out)

    try:
        run_command(ctx, body)
    finally:
        preconnect.close_unclaimed()
