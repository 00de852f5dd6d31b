"""`fsmove status [JOB]`: its command line (the listing: fsmove/commands/status.py).
Light on purpose: what the command needs is imported when it runs (the start-up time
of every `fsmove`)."""

from __future__ import annotations

from typing import Annotated

import typer

from fsmove.command_entry import CommandRun, run_command
from fsmove.errors import UsageError
from fsmove.exitcodes import ExitCode


def status_command(
    ctx: typer.Context,
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

    def body(_run: CommandRun) -> ExitCode:
        if prune and job is not None:
            raise UsageError("--prune applies to every job: give no JOB")
        if prune:
            return run_prune(older_than, as_json=json_output)
        return run_status(job, as_json=json_output)

    run_command(ctx, body)
