"""`fsmove cutover --app APP --from OLD --to NEW`: switch an app from one bucket to another
(fsmove/clever/cutover.py does it)."""

from __future__ import annotations

from typing import Annotated

import typer

from fsmove.command_entry import run_command
from fsmove.commands.options import AppName, NewAddon, OldAddon, TtlNameservers


def cutover_command(
    ctx: typer.Context,
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

    run_command(ctx, lambda _run: run_cutover(CutoverRequest(
        app=app_name, old=old, new=new, dry_run=dry_run,
        nameservers=tuple(nameserver or ()))))
