"""`fsmove plan --app APP --to ZONE`: what moving an app involves (fsmove/clever/plan.py
builds it); changes nothing."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

from fsmove.command_entry import CommandRun, run_command
from fsmove.commands.options import AppName
from fsmove.exitcodes import ExitCode


def plan_command(
    ctx: typer.Context,
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

    from fsmove.clever.clever_tool import CleverCli
    from fsmove.clever.plan import build_plan, render_plan

    def body(_run: CommandRun) -> ExitCode:
        result = build_plan(CleverCli(), app=app_name, to_zone=to, repo=repo,
                            nameservers=tuple(nameserver or ()))
        print(json.dumps(result.as_json(), indent=2) if json_output else render_plan(result))
        return ExitCode.OK

    run_command(ctx, body)
