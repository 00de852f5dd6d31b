"""`fsmove migrate --app APP --to ZONE`: its command line (the migration:
fsmove/commands/migrate.py).
Light on purpose: what the command needs is imported when it runs (the start-up time
of every `fsmove`)."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

from fsmove.clever.migrate_state import Until
from fsmove.command_entry import CommandRun, run_command
from fsmove.commands import options as opt
from fsmove.exitcodes import ExitCode


def migrate_command(
    ctx: typer.Context,
    app_name: opt.AppName,
    to: Annotated[str, typer.Option("--to", help="The zone to move the app to (par, ldn, "
                                    "mtl, rbx, scw, sgp, syd, wsw).")],
    bucket: Annotated[
        list[str] | None,
        typer.Option(help="OLD=NEW: use NEW, an FS Bucket you made in the zone, for the "
                     "app's bucket OLD instead of creating one (ids or names; repeatable).")
    ] = None,
    split_shared: Annotated[
        bool, typer.Option("--split-shared", help="Move the app even when another app "
                           "links or mounts one of its buckets: that app keeps the old "
                           "bucket, and the two no longer share files after the switch.")
    ] = False,
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
    nameserver: opt.TtlNameservers = None,
    report: opt.Report = None,
    workers: opt.Workers = 512,
    src_connections: opt.SrcConnections = None,
    dst_connections: opt.DstConnections = None,
    bwlimit: Annotated[
        str | None, typer.Option(help="Bandwidth limit, e.g. 10M (bytes per second).")
    ] = None,
    trust_partial: opt.TrustPartial = False,
    retries: Annotated[int, typer.Option(
        help="Retries per file on transient errors, in a row without progress.",
        min=0, max=100)] = 5,
    retry_delay: Annotated[
        float, typer.Option(help="Seconds before the first retry (doubles each time).",
                            min=0.0, max=600.0)
    ] = 1.0,
    quiet: opt.Quiet = False,
    timeout: opt.Timeout = 30.0,
) -> None:
    """Move APP (personal space or organisation, name or id) to ZONE with every FS Bucket
    it mounts: preflight, create (a new bucket per old one, same plan), copy, verify,
    delta, switch (zone, links, CC_FS_BUCKET*, one redeploy), catchup, dns.

    Journaled per app and zone: a rerun continues where the last run stopped, never
    creating a second bucket nor redeploying twice. Needs --yes (or a terminal to ask).
    """
    from fsmove.commands.migrate import MigrateRequest, run_migrate

    def body(_run: CommandRun) -> ExitCode:
        options = opt.copy_options(workers=workers, bwlimit=bwlimit, retries=retries,
                                   retry_delay=retry_delay, trust_partial=trust_partial)
        return run_migrate(MigrateRequest(
            app=app_name, zone=to, buckets=tuple(bucket or ()), until=until,
            split_shared=split_shared,
            dry_run=dry_run, yes=yes, repo=repo,
            nameservers=tuple(nameserver or ()), reports=tuple(report or ()),
            copy=options, src_connections=src_connections,
            dst_connections=dst_connections, quiet=quiet,
            connect=opt.connect_options(
                timeout=timeout, known_hosts=None, accept_new_host_key=False,
                identity=None, ca_file=None, insecure_tls=False,
            ),
        ))

    run_command(ctx, body)
