"""`fsmove resume [JOB]`: its command line (the resume: fsmove/commands/resume.py).
Light on purpose: what the command needs is imported when it runs (the start-up time
of every `fsmove`)."""

from __future__ import annotations

from typing import Annotated

import typer

from fsmove.command_entry import CommandRun, run_command
from fsmove.commands import options as opt
from fsmove.exitcodes import ExitCode


def resume_command(
    ctx: typer.Context,
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
    quiet: opt.Quiet = False,
    verbose: opt.Verbose = False,
    json_output: opt.JsonEvents = False,
    timeout: Annotated[
        float | None, typer.Option("--timeout", help="Seconds before a silent server "
                                   "counts as lost (default: the job's own).")
    ] = None,
    stats: opt.Stats = None,
    log_file: opt.LogFile = None,
    known_hosts: opt.KnownHosts = None,
    accept_new_host_key: opt.AcceptNewHostKey = False,
    identity: opt.Identity = None,
    ca_file: opt.CaFile = None,
    insecure_tls: opt.InsecureTls = False,
) -> None:
    """Resume a copy from its journal with every option it was started with (printed
    first); options given here replace the saved ones.

    Passwords are never stored: they come again from FSMOVE_SRC_PASSWORD /
    FSMOVE_DST_PASSWORD, ~/.netrc or a prompt. A job started with --delete deletes
    again (said before it starts).
    """
    from fsmove.commands.resume import ResumeOverrides, run_resume

    def body(run: CommandRun) -> ExitCode:
        out = run.open_output(command="resume", quiet=quiet, verbose=verbose,
                              json_output=json_output, stats=stats, log_file=log_file)
        rate = opt.bandwidth_limit(bwlimit)
        # What is given now is checked as copy checks it (one TLS trust at most, files
        # that exist): before session 32 both TLS options, or a --ca-file, reached an
        # "internal error: ValueError".
        opt.connect_options(timeout=timeout or 1.0, known_hosts=None,
                            accept_new_host_key=False, identity=identity, ca_file=ca_file,
                            insecure_tls=insecure_tls)
        return run_resume(
            job,
            ResumeOverrides(
                workers=workers, bwlimit=rate, timeout=timeout, known_hosts=known_hosts,
                identity=tuple(identity or ()), ca_file=ca_file, quiet=quiet,
                json=json_output, accept_new_host_key=accept_new_host_key,
                insecure_tls=insecure_tls,
            ),
            output=out,
        )

    run_command(ctx, body)
