"""`fsmove verify SRC DST`: its command line (the verification: fsmove/commands/verify.py).
Light on purpose: what the command needs is imported when it runs (the start-up time
of every `fsmove`)."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

from fsmove.command_entry import CommandRun, run_command
from fsmove.commands import options as opt
from fsmove.errors import UsageError
from fsmove.exitcodes import ExitCode


def verify_command(
    ctx: typer.Context,
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
    report: opt.Report = None,
    list_all: opt.ListAll = False,
    no_journal: Annotated[
        bool, typer.Option("--no-journal", help="Always read the source, even where a "
                           "copy's journal holds a still-valid digest.")
    ] = False,
    journal: Annotated[
        Path | None, typer.Option(metavar="FILE",
                                  help="The copy's journal (default: the job's own).")
    ] = None,
    src_connections: opt.SrcConnections = None,
    dst_connections: opt.DstConnections = None,
    include: opt.Include = None,
    exclude: opt.Exclude = None,
    bwlimit: Annotated[
        str | None, typer.Option(metavar="RATE",
                                 help="Bandwidth limit in bytes read per second, both "
                                 "sides together, e.g. 10M.")
    ] = None,
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
    """Check that DST holds exactly what SRC does: = identical, + only in source,
    - only in destination, * differs, ! could not be read.

    Never writes to either side. With --json, the report is one "verification" event,
    followed by the "summary" event.
    """
    from fsmove.commands.verify import VerifyRequest, run_verify
    from fsmove.transfers.tree import Filters
    from fsmove.verify.results import Tier

    def body(run: CommandRun) -> ExitCode:
        out = run.open_output(command="verify", quiet=quiet, verbose=verbose,
                              json_output=json_output, stats=stats, log_file=log_file)
        if quick and sample is not None:
            raise UsageError("--quick and --sample exclude each other")
        if seed is not None and sample is None:
            raise UsageError("--seed goes with --sample")
        tier = Tier.QUICK if quick else Tier.SAMPLE if sample is not None else Tier.FULL
        rate = opt.bandwidth_limit(bwlimit)
        return run_verify(
            VerifyRequest(
                src=src, dst=dst, tier=tier, sample_pct=sample, seed=seed,
                reports=tuple(report or ()),
                connect=opt.connect_options(
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

    run_command(ctx, body)
