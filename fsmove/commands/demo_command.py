"""`fsmove demo`: its command line (the demo: fsmove/commands/demo.py).
Light on purpose: what the command needs is imported when it runs (the start-up time
of every `fsmove`)."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

from fsmove.command_entry import run_command
from fsmove.demo.sample import SampleSize


def demo_command(
    ctx: typer.Context,
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

    run_command(ctx, lambda _run: run_demo(DemoRequest(workdir=workdir, keep=keep, size=size)))
