"""`fsmove dns DOMAIN…`: its command line (the checks: fsmove/commands/dns.py).
Light on purpose: what the command needs is imported when it runs (the start-up time
of every `fsmove`)."""

from __future__ import annotations

from typing import Annotated

import typer

from fsmove.command_entry import CommandRun, run_command
from fsmove.errors import UsageError
from fsmove.exitcodes import ExitCode


def dns_command(
    ctx: typer.Context,
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

    def body(_run: CommandRun) -> ExitCode:
        if not timeout > 0:
            spelled = "--watch-timeout" if old_timeout is None else \
                "--timeout (now spelled --watch-timeout)"
            raise UsageError(f"{spelled} must be a positive number of seconds")
        return run_dns(
            DnsRequest(
                domains=tuple(domains), expect=tuple(expect or ()), zone=zone,
                max_ttl=max_ttl, nameservers=tuple(nameserver or ()), watch=watch,
                timeout=timeout, interval=interval, json=json_output,
            )
        )

    run_command(ctx, body)
