"""`fsmove cutover --app APP --from OLD --to NEW`: switch an app from one FS Bucket to another.

Steps, in order, each run through the `clever` CLI and journaled (cutover_state.py):

1. link the new bucket (``clever service link-addon NEW --app APP``), unless it is linked;
2. rewrite every ``CC_FS_BUCKET*`` variable that mounts the old bucket's host to the new
   host, keeping the folder and any ``:async`` suffix (``clever env set``);
3. unlink the old bucket, unless it is not linked (else the app keeps its BUCKET_*);
4. restart (``clever restart --app APP -q``; restarting is how Clever redeploys);

then the DNS records to set are printed: ``CNAME domain.<zone>.clever-cloud.com.`` for
each domain, the zone being the app's as the CLI reports it. ``clever domain diag`` is not
used: it resolves every domain with the system resolver, and tests never touch real DNS.
With ``--nameserver`` (the domains' own server, which shows the TTL as configured), each
domain's TTL is checked against the 60 s the zone-migration guide asks for.

A rerun after a failure continues at the step that failed and never repeats a done one;
once all are done a rerun only prints the DNS steps. ``--dry-run`` runs the read-only
commands, prints every changing `clever` command it would run, and writes nothing (not
even the journal).
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

from fsmove.errors import UsageError

from . import children, cutover_state, statefile
from .api import CleverApi
from .app import find_app, mounts_of
from .bucket import read_bucket
from .clever_tool import CleverCli, CleverError, Domain
from .cutover_state import CutoverState, Step
from .dns import DnsChecker
from .dns_advice import print_records, print_ttl_advice
from .sharing import host_key


@dataclass(frozen=True)
class CutoverRequest:
    app: str
    old: str
    new: str
    dry_run: bool = False
    nameservers: tuple[str, ...] = ()


def _is(entry: dict[str, object], addon: str) -> bool:
    return addon in (entry.get("id"), entry.get("realId"), entry.get("name"))


def _first_run_steps(cli: CleverCli, req: CutoverRequest,
                     out: Callable[[str], None]) -> tuple[CutoverState, list[Domain]]:
    """Read the app and both buckets; fix the step list. Also returns the domains."""
    app = find_app(CleverApi.from_cli_environment(), req.app)
    if app.is_php:
        raise UsageError(f"{app.name} is a PHP app: PHP apps cannot change zone, they are "
                         f"re-created; use `fsmove migrate --app {req.app} --to ZONE`")
    old, new, env, linked, domains, catalogue = children.parallel([
        lambda: read_bucket(cli, req.old), lambda: read_bucket(cli, req.new),
        lambda: cli.app_env(app.id), lambda: cli.linked_addons(app.id),
        lambda: cli.domains(app.id), lambda: cli.addon_list(app.owner_id)])
    # The DNS records are for the zone the app will be in: the new bucket's (a bucket is
    # mounted only by apps in its own zone), not the app's zone of today.
    zone = next((str(a.get("region")) for a in catalogue
                 if req.new in (a.get("addonId"), a.get("realId"), a.get("name"))), app.zone)
    if zone != app.zone:
        out(f"warning: {app.name} is in {app.zone} and the new bucket in {zone}: a bucket is "
            f"mounted only by apps in its own zone; `fsmove migrate --app {req.app} --to "
            f"{zone}` moves the app too")
    if old.host == new.host:
        raise UsageError(
            f"--from {req.old} and --to {req.new} are the same bucket ({old.host}); "
            "give the new bucket's add-on id as --to"
        )
    steps: list[Step] = []
    if not any(_is(e, req.new) for e in linked):
        steps.append(Step("link", (req.new,)))
    # Compared loosely (case, a trailing dot, ``:21``): a variable written by hand with
    # the host in capitals was left on the old bucket, and the cut-over said done
    # (session 35's adversarial pass).
    rewrites = [m for m in mounts_of(env.own) if host_key(m.host) == host_key(old.host)]
    if not rewrites:
        out(f"warning: no CC_FS_BUCKET* variable of {app.name} mounts {old.host}; nothing "
            "to rewrite (does clevercloud/buckets.json in the app's repository name it?)")
    steps += [Step("env", (m.variable, m.moved_to(new.host).value)) for m in rewrites]
    if any(_is(e, req.old) for e in linked):
        steps.append(Step("unlink", (req.old,)))
    steps.append(Step("restart", ()))
    state = CutoverState(app=req.app, old=req.old, new=req.new, zone=zone,
                         steps=tuple(steps))
    return state, domains


def _run_step(cli: CleverCli, app: str, step: Step) -> None:
    if step.kind == "link":
        cli.link_addon(app, step.args[0])
    elif step.kind == "unlink":
        cli.unlink_addon(app, step.args[0])
    elif step.kind == "env":
        cli.env_set(app, step.args[0], step.args[1])
    elif step.kind == "restart":
        cli.restart(app)
    else:
        raise CleverError(f"unknown cut-over step {step.kind!r} in the journal")


def run_cutover(req: CutoverRequest, *, cli: CleverCli | None = None,
                out: Callable[[str], None] | None = None) -> int:
    say = out or (lambda line: print(line, flush=True))
    if req.old == req.new:
        raise UsageError(f"--from and --to are both {req.old}: give the new bucket as --to")
    # Built first: a malformed --nameserver is a usage error before anything changes.
    checker = DnsChecker(list(req.nameservers)) if req.nameservers else None
    cli = cli or CleverCli(dry_run=req.dry_run, echo=say)
    path = cutover_state.state_path(req.app, req.old, req.new)
    if req.dry_run:
        return _cut_over(req, cli, path, checker, say)
    statefile.hold(path, f"this cut-over of {req.app}")
    try:
        return _cut_over(req, cli, path, checker, say)
    finally:
        statefile.release(path)


def _cut_over(req: CutoverRequest, cli: CleverCli, path: Path, checker: DnsChecker | None,
              say: Callable[[str], None]) -> int:
    state = cutover_state.load(path)
    if state is None:
        state, domains = _first_run_steps(cli, req, say)
        if not req.dry_run:
            cutover_state.save(path, state)
    else:
        done = sum(s.done for s in state.steps)
        say(f"continuing the cut-over from its journal {path}: "
            f"{done} of {len(state.steps)} steps done")
        domains = cli.domains(req.app)
    total = len(state.steps)
    for index, step in enumerate(state.steps):
        label = f"[{index + 1}/{total}] {step.description}"
        if step.done:
            say(f"{label}: done already")
            continue
        try:
            _run_step(cli, req.app, step)
        except CleverError as exc:
            raise type(exc)(
                f"{exc}; the cut-over stopped at step {index + 1}/{total} "
                f"({step.description}): fix the cause and rerun the same command to continue "
                "there"
            ) from None
        if not req.dry_run:
            state = state.mark_done(index)
            cutover_state.save(path, state)
            say(f"{label}: done")
    _print_dns(domains, zone=state.zone, checker=checker, say=say)
    if req.dry_run:
        say("dry run: nothing was changed")
    else:
        say(f"cut-over of {req.app} to {req.new} done (journal: {path})")
    return 0


def _print_dns(domains: list[Domain], *, zone: str, checker: DnsChecker | None,
               say: Callable[[str], None]) -> None:
    print_ttl_advice(domains, checker=checker, say=say)
    print_records(domains, zone=zone, nameservers=(), checker=None, say=say)
