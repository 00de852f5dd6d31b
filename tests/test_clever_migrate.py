"""`fsmove migrate --app APP --to ZONE`: the whole zone migration of a node app with two
buckets, with the real `clever` CLI against the API emulator (tests/clever_api.py) and
real FTP servers standing in for the buckets (each bucket a server root of its own: the
delta deletes from the new root what the old one lacks).

The scene (``shop``): ``uploads`` (plan s, linked, ``CC_FS_BUCKET=/uploads:…``) and
``media`` (plan m, NOT linked, only ``CC_FS_BUCKET_1=/media:…:async``), a linked
PostgreSQL add-on, another variable, one domain of the user's and one cleverapps.io one.
Two FTP servers wait in ``emulator.new_buckets`` for the buckets fsmove creates.

One emulator per module: each test makes its own app (name) and add-ons.
"""

from __future__ import annotations

import json
import os
import shutil
import signal
import subprocess
import sys
import threading
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import pytest

from fsmove.transfers.jobs import list_jobs, read_status
from tests.clever_api import App, Request
from tests.clever_world import (  # noqa: F401
    CleverWorld,
    bucket_env,
    module_world_fixture,
)
from tests.servers import RunningServer, make_tree, start_aioftp

UPLOADS = {"index.html": b"<h1>shop</h1>", "img/a.bin": bytes(range(256)) * 800,
           "img/deep/b.txt": b"b" * 1000}
MEDIA = {"video/intro.txt": b"intro" * 100, "cover.png": b"\x89PNG" + b"\0" * 5000}
CLI_TIMEOUT = 600


@dataclass
class Scene:
    name: str
    app: App
    uploads: str  # old add-on ids
    media: str
    db: str
    old_uploads: RunningServer
    old_media: RunningServer
    new_servers: tuple[RunningServer, RunningServer]

    def host(self, server: RunningServer) -> str:
        return f"{server.host}:{server.port}"

    def args(self, *more: str) -> list[str]:
        return ["migrate", "--app", self.name, "--to", "mtl", "--quiet", *more]


def _tree(root: Path) -> dict[str, bytes]:
    return {p.relative_to(root).as_posix(): p.read_bytes()
            for p in sorted(root.rglob("*")) if p.is_file()}


def make_scene(world: CleverWorld, own_server: Callable[..., RunningServer], name: str, *,
               personal: bool = False) -> Scene:
    servers = [own_server(start_aioftp) for _ in range(4)]
    old_uploads, old_media, *new = servers
    make_tree(old_uploads, UPLOADS)
    make_tree(old_media, MEDIA)
    emu = world.emulator
    # The world is shared by the module: an earlier test's bucket whose server is gone may
    # name a port the kernel has just given again to one of these servers. Real bucket
    # hosts are unique; forget such stale add-ons so that one host means one add-on.
    fresh = {f"{s.host}:{s.port}" for s in servers}
    for addon_id in [a.id for a in emu.addons.values()
                     if a.env.get("BUCKET_HOST") in fresh]:
        del emu.addons[addon_id]
    # Nor may an earlier test's app still mount such a host: it would share the bucket
    # (fsmove/clever/sharing.py refuses that).
    for app in emu.apps.values():
        for variable in [k for k, v in app.env.items() if any(h in v for h in fresh)]:
            del app.env[variable]
    uploads = world.bucket(f"{name}-uploads", old_uploads, plan="s", personal=personal)
    media = world.bucket(f"{name}-media", old_media, plan="m", personal=personal)
    db = emu.add_addon(f"{name}-db", provider_id="postgresql-addon",
                       provider_name="PostgreSQL", personal=personal).id
    app = emu.add_app(name, zone="par", variant="node", personal=personal,
                      domains=[f"www.{name}.example", f"app-{name}.cleverapps.io"], env={
                          "CC_FS_BUCKET": f"/uploads:{old_uploads.host}:{old_uploads.port}",
                          "CC_FS_BUCKET_1": f"/media:{old_media.host}:{old_media.port}:async",
                          "OTHER": "kept as it is",
                      })
    app.linked += [uploads, db]
    emu.new_buckets[:] = [bucket_env(s) for s in new]  # never a former test's server
    return Scene(name=name, app=app, uploads=uploads, media=media, db=db,
                 old_uploads=old_uploads, old_media=old_media,
                 new_servers=(new[0], new[1]))


def _new_addons(world: CleverWorld, scene: Scene) -> dict[str, str]:
    """Old add-on name -> the id of the one fsmove created for it."""
    return {n: a.id for a in world.emulator.addons.values()
            for n in (f"{scene.name}-uploads", f"{scene.name}-media")
            if a.name.startswith(f"{n}-mtl")}


def _server_of(scene: Scene, world: CleverWorld, addon_id: str) -> RunningServer:
    host = world.emulator.addons[addon_id].env["BUCKET_HOST"]
    return next(s for s in scene.new_servers if scene.host(s) == host)


def _requests_for(world: CleverWorld, scene: Scene) -> list[Request]:
    return [r for r in world.emulator.requests if scene.app.id in r.path]


def _successful_deploys(scene: Scene) -> list[dict[str, object]]:
    return [d for d in scene.app.deployments if d["state"] == "OK"]


def assert_migrated(world: CleverWorld, scene: Scene, *, extra_uploads: dict[str, bytes]
                    | None = None, extra_media: dict[str, bytes] | None = None,
                    uploads: dict[str, bytes] = UPLOADS,
                    media: dict[str, bytes] = MEDIA, zone_moves: int = 1) -> None:
    emu, app = world.emulator, scene.app
    new = _new_addons(world, scene)
    assert sorted(new) == [f"{scene.name}-media", f"{scene.name}-uploads"], new
    created = [a for a in emu.addons.values() if a.name.startswith(scene.name)
               and a.region == "mtl"]
    assert len(created) == 2  # exactly one new bucket per old one
    assert emu.addons[new[f"{scene.name}-uploads"]].plan == "s"
    assert emu.addons[new[f"{scene.name}-media"]].plan == "m"
    assert app.zone == "mtl"
    up_server = _server_of(scene, world, new[f"{scene.name}-uploads"])
    media_server = _server_of(scene, world, new[f"{scene.name}-media"])
    assert app.env == {
        "CC_FS_BUCKET": f"/uploads:{scene.host(up_server)}",
        "CC_FS_BUCKET_1": f"/media:{scene.host(media_server)}:async",
        "OTHER": "kept as it is",
    }
    assert sorted(app.linked) == sorted([scene.db, new[f"{scene.name}-uploads"]])
    assert scene.uploads in emu.addons and scene.media in emu.addons  # never deleted
    want_up = {**uploads, **(extra_uploads or {})}
    want_media = {**media, **(extra_media or {})}
    assert _tree(scene.old_uploads.root) == want_up  # old trees intact
    assert _tree(scene.old_media.root) == want_media
    assert _tree(up_server.root) == want_up
    assert _tree(media_server.root) == want_media
    zone_puts = [r for r in emu.zone_changes() if scene.app.id in r.path]
    assert len(zone_puts) == zone_moves, zone_puts
    assert len(_successful_deploys(scene)) == 1
    assert scene.app.deployments[0]["state"] == "OK"
    assert scene.app.deployments[0]["zone"] == "mtl"  # the zone moved before it


def _no_secret_anywhere(world: CleverWorld, scene: Scene, *texts: str) -> None:
    secrets = [s.password for s in (scene.old_uploads, scene.old_media, *scene.new_servers)]
    secrets += [str(world.env["CLEVER_TOKEN"]), str(world.env["CLEVER_SECRET"])]
    stored = [p.read_text() for p in (world.state_home / "fsmove").rglob("*.json")]
    argv = json.dumps(world.child_argv())
    for secret in secrets:
        for text in (*texts, *stored, argv):
            assert secret not in text


def _write_old(server: RunningServer, rel: str, data: bytes) -> Callable[[Request], None]:
    def write(_request: Request) -> None:
        make_tree(server, {rel: data})
    return write


def test_org_app_with_two_buckets_moves_to_the_zone(
    module_world: CleverWorld, own_server: Callable[..., RunningServer]
) -> None:
    world = module_world
    scene = make_scene(world, own_server, "shop")
    # The old app keeps writing while the switch runs: one file as the zone moves, one
    # as the redeploy starts (both after the final delta, before the new app is up).
    def zone_moves(_request: Request) -> None:  # the old app writes one file, deletes one
        make_tree(scene.old_uploads, {"during/zone.txt": b"zone"})
        (scene.old_uploads.root / "img" / "deep" / "b.txt").unlink()
    world.emulator.on_request("PUT", rf"/applications/{scene.app.id}$", zone_moves)
    world.emulator.on_request("POST", rf"/applications/{scene.app.id}/instances$",
                              _write_old(scene.old_media, "during/restart.txt", b"restart"))
    # Other FS Buckets of the owner, never mounted (earlier scenes of the module leave
    # some too): each costs an in-process API read, never a `clever` child (Node start).
    for n in range(3):
        world.emulator.add_addon(f"unrelated-{n}", env={
            "BUCKET_HOST": f"bucket-unrelated-{n}.example", "BUCKET_FTP_USERNAME": "u",
            "BUCKET_FTP_PASSWORD": f"unrelated-password-{n}"})
    planned = world.fsmove("plan", "--app", "shop", "--to", "mtl")
    assert planned.exit_code == 0, planned.output
    started = len(world.child_argv())
    out = world.fsmove(*scene.args("--yes"))
    assert out.exit_code == 0, out.output
    # Each bucket read once per run, then carried through the phases: three `clever`
    # reads (env, addon list, domain), then only the changes (2 creates, a link, 2 env
    # set, an unlink, the restart).
    ran = [" ".join(a[:2]) for a in world.child_argv()[started:]]
    assert sorted(ran) == sorted(["env --app", "addon list", "domain --app", "addon create",
                                  "addon create", "service link-addon", "env set", "env set",
                                  "service unlink-addon", "restart --app"]), ran
    # The catch-up copied the file and deleted the one the old app deleted after the
    # final delta (the new bucket equals the old one at cut-over), and said so.
    assert_migrated(world, scene, extra_uploads={"during/zone.txt": b"zone"},
                    extra_media={"during/restart.txt": b"restart"},
                    uploads={k: v for k, v in UPLOADS.items() if k != "img/deep/b.txt"})
    assert ("catchup: shop-uploads -> shop-uploads-mtl: 1 file(s) the old app deleted after "
            "the final delta, deleted from the new bucket:\n  deleted /img/deep/b.txt\n"
            in out.stdout), out.stdout
    assert world.emulator.unknown == []
    # The plan printed exactly the create commands migrate ran.
    creates = [a for a in world.child_argv() if a[:2] == ["addon", "create"]]
    assert len(creates) == 2
    for argv in creates:
        assert "clever " + " ".join(argv) in planned.stdout, planned.stdout
    assert ["--plan", "s"] == creates[1][6:8] or ["--plan", "s"] == creates[0][6:8]
    # DNS: the user's domain, for mtl, the same in plan and migrate; never cleverapps.io.
    record = "www.shop.example. CNAME domain.mtl.clever-cloud.com."
    assert record in planned.stdout and record in out.stdout
    assert "cleverapps.io" not in out.stdout
    assert "watch the switch: fsmove dns www.shop.example --zone mtl --watch" in out.stdout
    assert "lower the TTL of www.shop.example to 60 s" in out.stdout
    # Order: the zone changed before the one redeploy; links/env between.
    paths = [(r.method, r.path) for r in _requests_for(world, scene)
             if r.method in ("PUT", "POST", "DELETE")]
    zone_at = paths.index(("PUT", f"/v2/organisations/{world.emulator.org_id}/applications/"
                                  f"{scene.app.id}"))
    restart_at = [i for i, p in enumerate(paths) if p[1].endswith("/instances")]
    assert restart_at == [len(paths) - 1] and zone_at < restart_at[0]
    # A rerun changes nothing.
    before, started = len(world.emulator.mutations()), len(world.child_argv())
    again = world.fsmove(*scene.args("--yes"))
    assert again.exit_code == 0, again.output
    assert len(world.emulator.mutations()) == before
    assert len(world.child_argv()) - started == 3  # the survey's three reads, nothing else
    _no_secret_anywhere(world, scene, out.output, again.output, planned.output)
    # Rolled back by hand (the zone and the variable put back): the journal's "done" is
    # not believed; the app is read back, nothing is changed, exit 1 (before session 34:
    # "migration of shop to mtl done").
    scene.app.zone = "par"
    scene.app.env["CC_FS_BUCKET"] = f"/uploads:{scene.host(scene.old_uploads)}"
    before = len(world.emulator.mutations())
    rolled = world.fsmove(*scene.args("--yes"))
    assert rolled.exit_code == 1, rolled.output
    last = rolled.stderr.strip().splitlines()[-1]
    assert last.startswith("fsmove: error: shop is not as this migration left it: it is in "
                           "par, not mtl; CC_FS_BUCKET mounts the old bucket shop-uploads"), last
    assert "put back what differs" in last and "migration of shop to mtl done" not in rolled.stdout
    assert len(world.emulator.mutations()) == before


def test_personal_space_app_by_id_and_a_name_in_two_owners(
    module_world: CleverWorld, own_server: Callable[..., RunningServer]
) -> None:
    world = module_world
    scene = make_scene(world, own_server, "blog", personal=True)
    # The zone moved first in the Console, as Clever Cloud's own guide does: the buckets
    # still have to move (before session 34: "blog is already in mtl", exit 2).
    scene.app.zone = "mtl"
    out = world.fsmove("migrate", "--app", scene.app.id, "--to", "mtl", "--yes", "--quiet")
    assert out.exit_code == 0, out.output
    assert_migrated(world, scene, zone_moves=0)
    # The old buckets deleted once it is done (as the README says): a rerun no longer
    # needs them (before session 34: 404 on the old bucket, exit 1).
    del world.emulator.addons[scene.uploads], world.emulator.addons[scene.media]
    # ... and a bucket of another zone mounted on purpose since: the user's business.
    archive = own_server(start_aioftp)
    world.bucket("blog-archive", archive, personal=True)
    scene.app.env["CC_FS_BUCKET_2"] = f"/archive:{scene.host(archive)}"
    again = world.fsmove("migrate", "--app", scene.app.id, "--to", "mtl", "--yes", "--quiet")
    assert again.exit_code == 0, again.output
    del scene.app.env["CC_FS_BUCKET_2"]
    user = world.emulator.user_id
    assert all(f"/organisations/{user}/" in r.path or "/self/" in r.path
               for r in world.emulator.mutations() if scene.app.id in r.path)
    creates = [a for a in world.child_argv() if a[:2] == ["addon", "create"]
               and any(x.startswith("blog-") for x in a)]
    assert all(a[a.index("--org") + 1] == user for a in creates)
    # The same name in the organisation: one line naming both owners, exit 2.
    twin = world.emulator.add_app("blog", variant="node")
    both = world.fsmove("plan", "--app", "blog", "--to", "mtl")
    assert both.exit_code == 2, both.output
    assert both.stderr.startswith("fsmove: error: ") and both.stderr.count("\n") == 1
    assert scene.app.id in both.stderr and twin.id in both.stderr
    assert "personal space" in both.stderr and "organisation" in both.stderr


def test_dry_run_and_no_yes_change_nothing(
    module_world: CleverWorld, own_server: Callable[..., RunningServer]
) -> None:
    world = module_world
    scene = make_scene(world, own_server, "dry")
    mutations = len(world.emulator.mutations())
    journals = set((world.state_home / "fsmove").rglob("*.json"))
    looked = world.fsmove(*scene.args("--dry-run"))
    assert looked.exit_code == 0, looked.output
    assert len(world.emulator.mutations()) == mutations  # only GET requests
    assert set((world.state_home / "fsmove").rglob("*.json")) == journals
    for line in ("would run: clever addon create fs-bucket dry-uploads-mtl --region mtl "
                 f"--plan s --org {world.emulator.org_id} --yes -F json",
                 "would run: clever addon create fs-bucket dry-media-mtl --region mtl "
                 f"--plan m --org {world.emulator.org_id} --yes -F json",
                 f"would request: PUT /v2/organisations/{world.emulator.org_id}/applications/"
                 f'{scene.app.id} {{"zone": "mtl"}}',
                 f"would run: clever service link-addon '<new dry-uploads-mtl>' --app "
                 f"{scene.app.id}",
                 f"would run: clever service unlink-addon {scene.uploads} --app {scene.app.id}",
                 f"would run: clever restart --app {scene.app.id} -q",
                 "www.dry.example. CNAME domain.mtl.clever-cloud.com.",
                 "dry run: nothing was changed"):
        assert line in looked.stdout, looked.stdout
    refused = world.fsmove(*scene.args())  # no --yes, no terminal
    assert refused.exit_code == 2, refused.output
    assert refused.stderr.startswith("fsmove: error: ") and "--yes" in refused.stderr
    assert refused.stderr.count("\n") == 1
    assert len(world.emulator.mutations()) == mutations
    assert scene.app.zone == "par" and _tree(scene.new_servers[0].root) == {}


# -- faults ---------------------------------------------------------------------------


class Child:
    """fsmove as a child process (a test SIGKILLs it); hooks wait until it is known."""

    def __init__(self, world: CleverWorld) -> None:
        self.world = world
        self.started = threading.Event()
        self.proc: subprocess.Popen[str] | None = None

    def kill_on(self, method: str, path_regex: str) -> None:
        def kill(_request: Request) -> None:
            assert self.started.wait(CLI_TIMEOUT)
            assert self.proc is not None
            os.kill(self.proc.pid, signal.SIGKILL)
        self.world.emulator.on_request(method, path_regex, kill)

    def run(self, args: list[str], **env: str) -> subprocess.CompletedProcess[str]:
        full_env = {**self.world.subprocess_env(), **env}
        self.proc = subprocess.Popen([sys.executable, "-m", "fsmove.cli", *args],
                                     env=full_env, stdin=subprocess.DEVNULL, text=True,
                                     stdout=subprocess.PIPE, stderr=subprocess.PIPE)
        self.started.set()
        try:
            out, err = self.proc.communicate(timeout=CLI_TIMEOUT)
        finally:
            if self.proc.poll() is None:
                self.proc.kill()
                self.proc.wait()
        return subprocess.CompletedProcess(self.proc.args, self.proc.returncode, out, err)


#: Where a run is killed: a phase's start (fsmove's test hook: the copy phases send no
#: API request), or the moment the emulator has handled a given request.
KILL_POINTS = {
    "preflight": ("crash", "preflight"),
    "create": ("request", "POST", r"/organisations/[^/]+/addons$"),
    "copy": ("crash", "copy"),
    "verify": ("crash", "verify"),
    "delta": ("crash", "delta"),
    "switch-zone": ("request", "PUT", r"/applications/{app}$"),
    "switch-link": ("request", "POST", r"/applications/{app}/addons$"),
    "switch-redeploy": ("request", "POST", r"/applications/{app}/instances$"),
    "catchup": ("crash", "catchup"),
    "dns": ("crash", "dns"),
}


#: The kill points in the order a migration meets them, in two chains: each run of a
#: chain is killed at its point, the next resumes from there (and is killed at the next
#: point), the last completes. Every point is a kill and a resume, as when each had a
#: scene of its own, at a fifth of the cost (a scene and a full rerun per point).
KILL_CHAINS = {
    "before-the-switch": ["preflight", "create", "copy", "verify", "delta"],
    "in-and-after-the-switch": ["switch-zone", "switch-link", "switch-redeploy", "catchup",
                                "dns"],
}


@pytest.mark.parametrize("chain", sorted(KILL_CHAINS))
def test_sigkill_then_the_rerun_completes_with_nothing_twice(
    module_world: CleverWorld, own_server: Callable[..., RunningServer], chain: str
) -> None:
    world = module_world
    scene = make_scene(world, own_server, f"k{sorted(KILL_CHAINS).index(chain)}")
    for point in KILL_CHAINS[chain]:
        child = Child(world)
        how = KILL_POINTS[point]
        env: dict[str, str] = {}
        if how[0] == "crash":
            env["FSMOVE_TEST_CRASH_AT"] = how[1]
        else:
            child.kill_on(how[1], how[2].format(app=scene.app.id))
        killed = child.run(scene.args("--yes"), **env)
        assert killed.returncode == -signal.SIGKILL, (point, killed.stdout, killed.stderr)
    again = world.fsmove(*scene.args("--yes"))
    assert again.exit_code == 0, again.output
    assert_migrated(world, scene)
    links = [r for r in world.emulator.requests
             if r.method == "POST" and r.path.endswith(f"{scene.app.id}/addons")]
    assert len(links) == 1


def test_a_refused_zone_move_changes_nothing_else_then_the_rerun_completes(
    module_world: CleverWorld, own_server: Callable[..., RunningServer]
) -> None:
    world = module_world
    scene = make_scene(world, own_server, "refused")
    world.emulator.fail_once("PUT", rf"/applications/{scene.app.id}$")
    first = world.fsmove(*scene.args("--yes"))
    assert first.exit_code == 1, first.output
    last = first.stderr.strip().splitlines()[-1]
    assert last.startswith("fsmove: error: ") and "Information pane, Zone, Save" in last
    app_changes = [r for r in world.emulator.mutations()
                   if scene.app.id in r.path and r.method != "PUT"]
    assert app_changes == [] and scene.app.zone == "par"
    assert scene.app.linked == [scene.uploads, scene.db]
    again = world.fsmove(*scene.args("--yes"))
    assert again.exit_code == 0, again.output
    assert_migrated(world, scene)


def test_a_failed_deployment_then_writes_to_the_old_bucket_are_not_lost(
    module_world: CleverWorld, own_server: Callable[..., RunningServer]
) -> None:
    world = module_world
    scene = make_scene(world, own_server, "faildep")
    world.emulator.fail_deployments = 1
    first = world.fsmove(*scene.args("--yes"))
    assert first.exit_code == 1, first.output
    assert scene.app.deployments[0]["state"] == "FAIL"
    # The old instances still run (a failed deployment replaces nothing) and write.
    make_tree(scene.old_uploads, {"after-failure.txt": b"still the old app"})
    (scene.old_media.root / "cover.png").unlink()  # and delete
    # The user puts the zone back meanwhile (the Console). Before session 34 the rerun
    # trusted its journal ("move the app: done already") and redeployed the app in par
    # with the mtl buckets mounted, then said done.
    scene.app.zone = "par"
    # Another zone meanwhile: refused while this migration's switch is half-way (its
    # copies would read the half-moved buckets; session 34's adversarial pass).
    before = len(world.emulator.mutations())
    for _twice in range(2):  # the second try was let through before (a journal left)
        other = world.fsmove("migrate", "--app", scene.name, "--to", "rbx", "--yes",
                             "--quiet")
        assert other.exit_code == 2, other.output
        assert (f"a migration of {scene.name} to mtl stopped in or after its switch"
                in other.stderr)
        assert "rerun the same command" not in other.output
    assert len(world.emulator.mutations()) == before
    again = world.fsmove(*scene.args("--yes"))
    assert again.exit_code == 0, again.output
    assert "the delta runs again first" in again.stderr
    media = {k: v for k, v in MEDIA.items() if k != "cover.png"}
    assert_migrated(world, scene, extra_uploads={"after-failure.txt": b"still the old app"},
                    media=media, zone_moves=2)
    assert len(scene.app.deployments) == 2  # the failed one, then exactly one more


def test_trust_partial_reaches_every_copy_of_the_migration(
    module_world: CleverWorld, own_server: Callable[..., RunningServer]
) -> None:
    """``migrate --trust-partial`` (huge buckets over a slow link) is each bucket copy's
    ``--trust-partial``, recorded with its job as ``copy`` records it (what a resume of
    that copy then replays). Before session 33 migrate had no such flag."""
    world = module_world
    scene = make_scene(world, own_server, "trust")
    copied = world.fsmove(*scene.args("--yes", "--until", "copy", "--trust-partial"))
    assert copied.exit_code == 0, copied.output
    jobs = list_jobs(Path(world.env["XDG_STATE_HOME"]) / "fsmove" / "jobs")
    olds = (scene.host(scene.old_uploads), scene.host(scene.old_media))
    copies = [c for c in map(read_status, jobs) if any(h in c.src for h in olds)]
    assert len(copies) == 2, [c.src for c in copies]  # the app's two buckets
    assert all(c.options.get("trust_partial") is True for c in copies), copies
    # A journal with a new bucket's id and no host (an earlier version journaled the id
    # before reading the host; a failed read then left it so, and the switch set
    # CC_FS_BUCKET=/uploads:None): the next run reads the host again.
    (journal,) = [p for p in (world.state_home / "fsmove" / "migrate").glob("*.json")
                  if json.loads(p.read_text()).get("app_id") == scene.app.id]
    data = json.loads(journal.read_text())
    hosts = [pair["new_host"] for pair in data["pairs"]]
    assert all(hosts)
    for pair in data["pairs"]:
        pair["new_host"] = None
    journal.write_text(json.dumps(data))
    again = world.fsmove(*scene.args("--yes", "--until", "copy"))
    assert again.exit_code == 0, again.output
    assert [p["new_host"] for p in json.loads(journal.read_text())["pairs"]] == hosts
    # The media bucket unmounted before the switch (the user's choice): left out, not
    # moved and mounted again (before session 34's 4th pass it was).
    del scene.app.env["CC_FS_BUCKET_1"]
    dropped = world.fsmove(*scene.args("--yes", "--until", "copy"))
    assert dropped.exit_code == 0, dropped.output
    assert "preflight: trust-media is no longer used by the app: left out" in dropped.stdout
    assert [p["old_name"] for p in json.loads(journal.read_text())["pairs"]] == [
        "trust-uploads"]


def test_given_buckets_must_be_distinct_and_empty_and_one_run_at_a_time(
    module_world: CleverWorld, own_server: Callable[..., RunningServer]
) -> None:
    """``--bucket OLD=NEW``: one NEW for two olds, or a NEW that holds files, is refused
    before anything changes (each was mirrored with --delete: the other bucket's or the
    owner's files deleted); a second run of one migration meanwhile is refused."""
    import fcntl

    from fsmove.clever import statefile

    world = module_world
    scene = make_scene(world, own_server, "given")
    full, empty = own_server(start_aioftp), own_server(start_aioftp)
    make_tree(full, {"keep.txt": b"the owner's"})
    world.bucket("given-full", full, region="mtl")
    world.bucket("given-empty", empty, region="mtl")
    before = len(world.emulator.mutations())
    twice = world.fsmove(*scene.args("--yes", "--bucket", "given-uploads=given-empty",
                                     "--bucket", "given-media=given-empty"))
    assert twice.exit_code == 2, twice.output
    assert "given-empty is given for two buckets" in twice.stderr
    held = world.fsmove(*scene.args("--yes", "--bucket", "given-uploads=given-full"))
    assert held.exit_code == 2, held.output
    assert "given-full already holds files (keep.txt)" in held.stderr
    own = own_server(start_aioftp)  # an empty mtl bucket the app mounts already
    world.bucket("given-own", own, region="mtl")
    scene.app.env["CC_FS_BUCKET_2"] = f"/own:{scene.host(own)}"
    used = world.fsmove(*scene.args("--yes", "--bucket", "given-uploads=given-own"))
    assert used.exit_code == 2 and "given-own is a bucket given uses already" in used.stderr
    del scene.app.env["CC_FS_BUCKET_2"]
    assert len(world.emulator.mutations()) == before
    assert _tree(full.root) == {"keep.txt": b"the owner's"}
    # Another process holds this migration's journal.
    os.environ["XDG_STATE_HOME"], saved = str(world.state_home), os.environ.get(
        "XDG_STATE_HOME")
    try:
        path = statefile.app_lock(scene.app.id)  # any zone: one migration of an app at once
    finally:
        if saved is None:
            del os.environ["XDG_STATE_HOME"]
        else:
            os.environ["XDG_STATE_HOME"] = saved
    fd = os.open(f"{path}.lock", os.O_RDWR | os.O_CREAT, 0o600)
    try:
        fcntl.flock(fd, fcntl.LOCK_EX)
        busy = world.fsmove(*scene.args("--yes", "--bucket", "given-uploads=given-empty"))
    finally:
        os.close(fd)
    assert busy.exit_code == 1, busy.output
    assert "another fsmove is running a migration of given now" in busy.stderr
    assert len(world.emulator.mutations()) == before
    # A first run whose creation fails (the plan not offered in the zone, say), then the
    # same command with --bucket for that bucket: taken (before session 34, ignored).
    world.emulator.fail_once("POST", r"/organisations/[^/]+/addons$")
    failed = world.fsmove(*scene.args("--yes", "--until", "create"))
    assert failed.exit_code == 1, failed.output
    ok = world.fsmove(*scene.args("--yes", "--bucket", "given-uploads=given-empty",
                                  "--until", "create"))
    assert ok.exit_code == 0, ok.output
    creates = [a[3] for a in world.child_argv() if a[:2] == ["addon", "create"]
               and any(x.startswith("given-") for x in a)]
    assert creates == ["given-media-mtl"] * 2  # the one refused, then made
    made = [a.name for a in world.emulator.addons.values()
            if a.name.startswith("given-") and a.region == "mtl"]
    assert sorted(made) == ["given-empty", "given-full", "given-media-mtl", "given-own"]


def test_buckets_other_apps_use_are_refused_unless_split_shared(
    module_world: CleverWorld, own_server: Callable[..., RunningServer]
) -> None:
    """Another app links ``uploads`` and a third mounts ``media`` through a variable
    only (its host spelt in capitals): moved alone, the app would write to the new
    buckets and they to the old ones (before session 35, without a word). Refused before
    any change and with no journal, naming both; checked again on every run until the
    switch (a failed read, or a bucket mounted between runs, skipped it in v1);
    ``--split-shared``, given once, moves the app alone, the others untouched."""
    world = module_world
    emu = world.emulator
    scene = make_scene(world, own_server, "shared")
    worker = emu.add_app("shared-worker", zone="par", variant="node")
    worker.linked.append(scene.uploads)
    cron_env = {"CC_FS_BUCKET_1": f"/m:{scene.host(scene.old_media).upper()}. ", "X": "y"}
    cron = emu.add_app("shared-cron", zone="par", variant="node", env=dict(cron_env))
    emu.add_app("shared-alone", zone="par", variant="node", env={"A": "b"})
    before = len(emu.mutations())
    refused = world.fsmove(*scene.args("--yes"))
    assert refused.exit_code == 2, refused.output
    (line,) = [x for x in refused.stderr.splitlines() if x.startswith("fsmove: error:")]
    assert f"shared-media: shared-cron ({cron.id}, CC_FS_BUCKET_1)" in line, line
    assert f"shared-uploads: shared-worker ({worker.id}, linked)" in line, line
    assert "shared-alone" not in line and "--split-shared" in line
    assert len(emu.mutations()) == before
    from fsmove.clever import migrate_state

    saved = os.environ.get("XDG_STATE_HOME")
    os.environ["XDG_STATE_HOME"] = str(world.state_home)
    try:
        journal = migrate_state.state_path(scene.app.id, "mtl")
    finally:
        if saved is None:
            del os.environ["XDG_STATE_HOME"]
        else:
            os.environ["XDG_STATE_HOME"] = saved
    assert not journal.exists()  # the corrected command starts anew
    # A read that fails stops the run before any change, naming what could not be read
    # (before session 36: a warning promising a check "at the next run", and the same
    # run went on to the switch).
    worker.linked.remove(scene.uploads)
    cron.env = {"X": "y"}
    emu.fail_once("GET", rf"/applications/{cron.id}/env$", status=403)
    unread = world.fsmove(*scene.args("--yes"))
    assert unread.exit_code == 2, unread.output
    (line,) = [x for x in unread.stderr.splitlines() if x.startswith("fsmove: error:")]
    assert f"could not read the variables of shared-cron ({cron.id})" in line, line
    assert "this run changed nothing" in line and "--split-shared" in line, line
    assert len(emu.mutations()) == before and not journal.exists()
    # The next run reads again: nothing shared any more, it goes on.
    first = world.fsmove(*scene.args("--yes", "--until", "create"))
    assert first.exit_code == 0, first.output
    worker.linked.append(scene.uploads)
    again = world.fsmove(*scene.args("--yes", "--until", "copy"))
    assert again.exit_code == 2, again.output
    assert f"shared-uploads: shared-worker ({worker.id}, linked)" in again.stderr
    # --split-shared, given once, holds for the reruns; the summary names the apps.
    split = world.fsmove(*scene.args("--yes", "--split-shared", "--until", "create"))
    assert split.exit_code == 0, split.output
    rerun = world.fsmove(*scene.args("--yes", "--until", "copy"))
    assert rerun.exit_code == 0, rerun.output
    assert "other apps keep the old buckets (--split-shared): shared-uploads: " \
        "shared-worker" in rerun.stdout, rerun.output
    made = [a.name for a in emu.addons.values() if a.name.startswith("shared-")
            and a.region == "mtl"]
    assert sorted(made) == ["shared-media-mtl", "shared-uploads-mtl"]
    assert worker.linked == [scene.uploads] and cron.env == {"X": "y"}


def test_a_given_bucket_another_app_uses_or_given_twice_is_refused(
    module_world: CleverWorld, own_server: Callable[..., RunningServer]
) -> None:
    """``--bucket OLD=NEW`` where another app mounts NEW: the delta would delete what it
    writes there (accepted before session 35, whatever --split-shared says); and two
    NEW for one OLD (the last one won, in silence)."""
    world = module_world
    emu = world.emulator
    scene = make_scene(world, own_server, "taken")
    a, b = own_server(start_aioftp), own_server(start_aioftp)
    world.bucket("taken-a", a, region="mtl")
    world.bucket("taken-b", b, region="mtl")
    emu.add_app("taken-staging", zone="mtl", variant="node",
                env={"CC_FS_BUCKET": f"/s:{scene.host(a)}"})
    before = len(emu.mutations())
    used = world.fsmove(*scene.args("--yes", "--split-shared",
                                    "--bucket", "taken-uploads=taken-a"))
    assert used.exit_code == 2, used.output
    assert "--bucket: taken-a: taken-staging (" in used.stderr, used.stderr
    twice = world.fsmove(*scene.args("--yes", "--bucket", "taken-uploads=taken-b",
                                     "--bucket", f"{scene.uploads}=taken-a"))
    assert twice.exit_code == 2, twice.output
    assert "is given twice" in twice.stderr, twice.stderr
    assert len(emu.mutations()) == before


def test_a_file_deleted_after_the_bulk_copy_converges(
    module_world: CleverWorld, own_server: Callable[..., RunningServer]
) -> None:
    world = module_world
    scene = make_scene(world, own_server, "gone")
    copied = world.fsmove(*scene.args("--yes", "--until", "copy"))
    assert copied.exit_code == 0, copied.output
    shutil.rmtree(scene.old_uploads.root / "img" / "deep")  # b.txt's folder with it
    make_tree(scene.old_media, {"cover.png": b"changed after the copy"})
    checked = world.fsmove(*scene.args("--yes", "--until", "verify"))
    assert checked.exit_code == 0, checked.output  # converged, no exit 4, no loop
    assert "verifying again" in checked.stderr
    assert scene.app.zone == "par"
    # A third bucket mounted between two runs: before session 34 it stayed in par and
    # the run said done. It is moved with the others (its own new bucket and copy).
    reports, reports_new = own_server(start_aioftp), own_server(start_aioftp)
    make_tree(reports, {"r.csv": b"a,b"})
    world.bucket("extra-reports", reports, plan="s")
    world.emulator.new_buckets.append(bucket_env(reports_new))
    scene.app.env["CC_FS_BUCKET_2"] = f"/reports:{scene.host(reports)}"
    done = world.fsmove(*scene.args("--yes"))
    assert done.exit_code == 0, done.output
    assert "extra-reports (CC_FS_BUCKET_2): used by the app since this migration started" \
        in done.stdout
    assert scene.app.env.pop("CC_FS_BUCKET_2") == f"/reports:{scene.host(reports_new)}"
    assert _tree(reports_new.root) == {"r.csv": b"a,b"}
    uploads = {k: v for k, v in UPLOADS.items() if k != "img/deep/b.txt"}
    assert_migrated(world, scene, uploads=uploads,
                    media={**MEDIA, "cover.png": b"changed after the copy"})
    new_uploads = _server_of(scene, world, _new_addons(world, scene)["gone-uploads"])
    assert not (new_uploads.root / "img" / "deep").exists()


def test_ctrl_c_during_a_clever_child_stops_it_and_exits_130(
    module_world: CleverWorld, own_server: Callable[..., RunningServer], tmp_path: Path
) -> None:
    world = module_world
    scene = make_scene(world, own_server, "ctrlc")

    # A `clever` that, asked to redeploy, does what Ctrl-C does to fsmove (SIGINT), then
    # would wait forever: fsmove must stop it, not wait for it.
    interrupting = tmp_path / "clever-ctrl-c"
    interrupting.write_text(
        "#!/usr/bin/env python3\n"
        "import os, signal, sys, time\n"
        "if sys.argv[1:2] == ['restart']:\n"
        "    os.kill(os.getppid(), signal.SIGINT)\n"
        "    time.sleep(3600)\n"
        f"os.execv({world.env['FSMOVE_CLEVER']!r}, ['clever', *sys.argv[1:]])\n")
    interrupting.chmod(0o755)
    # As `fsmove.cli.main` does: Ctrl-C is KeyboardInterrupt even if this test process was
    # started with SIGINT ignored (fsmove runs in-process here, through CliRunner).
    previous = signal.signal(signal.SIGINT, signal.default_int_handler)
    try:
        first = world.fsmove(*scene.args("--yes"), FSMOVE_CLEVER=str(interrupting))
    finally:
        signal.signal(signal.SIGINT, previous)
    assert first.exit_code == 130, first.output
    assert first.stderr.strip().splitlines()[-1] == (
        "fsmove: error: interrupted: the journal is saved; rerun the same command to resume")
    (state,) = [p for p in (world.state_home / "fsmove" / "migrate").glob("*.json")
                if scene.app.id in p.read_text() and "snapshot" not in p.name]
    saved = json.loads(state.read_text())
    assert saved["failed_phase"] == "switch" and scene.app.deployments == []
    assert [s["done"] for s in saved["steps"]][-1] is False
    again = world.fsmove(*scene.args("--yes"))
    assert again.exit_code == 0, again.output
    assert_migrated(world, scene)


def test_catch_up_never_overwrites_what_the_new_app_wrote(
    module_world: CleverWorld, own_server: Callable[..., RunningServer]
) -> None:
    world = module_world
    scene = make_scene(world, own_server, "clash")
    new_uploads = scene.new_servers[1]  # buckets are created by name: media, then uploads

    def both_write(_request: Request) -> None:
        # During the redeploy the old instances write two files; the new app, once up,
        # writes one of them too (its own version).
        make_tree(scene.old_uploads, {"shared.txt": b"old app", "only-old.txt": b"old"})
        make_tree(new_uploads, {"shared.txt": b"new app, newer", "only-new.txt": b"new"})
        # The old app deletes a file the new app rewrites: kept, a conflict too.
        (scene.old_uploads.root / "index.html").unlink()
        make_tree(new_uploads, {"index.html": b"<h1>the new shop</h1>"})
    world.emulator.on_request("POST", rf"/applications/{scene.app.id}/instances$",
                              both_write)
    first = world.fsmove(*scene.args("--yes"))
    assert first.exit_code == 4, first.output
    assert f"catchup: CONFLICT {scene.name}-uploads:/shared.txt" in first.stdout
    assert (f"catchup: CONFLICT {scene.name}-uploads:/index.html: the old app deleted it, "
            "the new one wrote it after the final delta; the new app's version is kept"
            in first.stdout), first.stdout
    assert (new_uploads.root / "index.html").read_bytes() == b"<h1>the new shop</h1>"
    assert (new_uploads.root / "shared.txt").read_bytes() == b"new app, newer"
    assert (new_uploads.root / "only-old.txt").read_bytes() == b"old"
    again = world.fsmove(*scene.args("--yes"))  # reported once: the rerun finishes
    assert again.exit_code == 0, again.output
    assert (new_uploads.root / "shared.txt").read_bytes() == b"new app, newer"
    assert (new_uploads.root / "index.html").read_bytes() == b"<h1>the new shop</h1>"
    # The rerun's catch-up deletes nothing the new app wrote (the old bucket never had it).
    assert (new_uploads.root / "only-new.txt").read_bytes() == b"new"
    assert len(_successful_deploys(scene)) == 1 and scene.app.zone == "mtl"


def test_the_old_apps_rewrite_in_the_second_of_the_last_listing_is_caught_up(
    module_world: CleverWorld, own_server: Callable[..., RunningServer]
) -> None:
    """The old app rewrites a file during the redeploy, at the same size, and its time
    reads as it did when the old bucket was listed (a rewrite in that same second: FTP
    lists whole seconds). Before session 36 the catch-up saw nothing ("nothing new in
    the old bucket"), exit 0, and the new bucket kept the earlier bytes for good. Files
    listed within a minute of their time are read on both sides."""
    world = module_world
    scene = make_scene(world, own_server, "racy")
    new_uploads = scene.new_servers[1]  # buckets are created by name: media, then uploads
    target = scene.old_uploads.root / "img" / "deep" / "b.txt"

    def rewrite(_request: Request) -> None:
        before = target.stat()
        target.write_bytes(b"B" * 1000)
        os.utime(target, ns=(before.st_atime_ns, before.st_mtime_ns))
    world.emulator.on_request("POST", rf"/applications/{scene.app.id}/instances$", rewrite)
    out = world.fsmove(*scene.args("--yes"))
    assert out.exit_code == 0, out.output
    assert (new_uploads.root / "img" / "deep" / "b.txt").read_bytes() == b"B" * 1000
    assert (f"catchup: {scene.name}-uploads -> {scene.name}-uploads-mtl: 1 file(s) "
            "rewritten by the old app in the second it was listed" in out.stdout), out.stdout


def test_buckets_json_in_the_repository_waits_for_the_users_push(
    module_world: CleverWorld, own_server: Callable[..., RunningServer], tmp_path: Path
) -> None:
    """``clevercloud/buckets.json`` (it overrides CC_FS_BUCKET*) mounts the uploads
    bucket: only the user's push of that file changed may redeploy the app. Before
    session 34 fsmove redeployed it in mtl on the old bucket, said done, and printed the
    change to make at the very end."""
    world = module_world
    scene = make_scene(world, own_server, "json")
    repo = tmp_path / "repo"
    (repo / "clevercloud").mkdir(parents=True)
    (repo / "clevercloud" / "buckets.json").write_text(json.dumps(
        [{"bucket_host": scene.host(scene.old_uploads), "folder": "/uploads"}]))
    dry = world.fsmove(*scene.args("--dry-run", "--repo", str(repo)))
    assert dry.exit_code == 0, dry.output  # what the run does: no restart by fsmove
    assert "would not restart the app" in dry.stdout and "would restart" not in dry.stdout
    first = world.fsmove(*scene.args("--yes", "--repo", str(repo)))
    assert first.exit_code == 3, first.output
    new_up = _server_of(scene, world, _new_addons(world, scene)["json-uploads"])
    assert (f"  bucket_host {scene.host(scene.old_uploads)} -> {scene.host(new_up)}"
            in first.stdout)
    assert scene.app.deployments == [] and scene.app.zone == "mtl"
    # A deployment that is not the push (a restart; the file unchanged): still waiting,
    # the file names the old host (before: done, the app on the old bucket); without
    # --repo fsmove cannot tell: refused.
    deployed = "0123456789abcdef0123456789abcdef01234567"  # the app's commit now
    scene.app.deployments.insert(0, {"id": 1, "uuid": "deployment_restart", "state": "OK",
                                      "zone": "mtl", "cause": "restart", "commit": deployed})
    unchanged = world.fsmove(*scene.args("--yes", "--repo", str(repo)))
    assert unchanged.exit_code == 3, unchanged.output
    waiting = world.fsmove(*scene.args("--dry-run", "--repo", str(repo)))
    assert waiting.exit_code == 0 and "would restart" not in waiting.stdout, waiting.output
    assert f"bucket_host {scene.host(scene.old_uploads)} -> {scene.host(new_up)}" \
        in waiting.stdout
    blind = world.fsmove(*scene.args("--yes"))
    assert blind.exit_code == 2 and "rerun with --repo PATH" in blind.stderr, blind.output
    # The user changes the file as told and reruns before pushing: the restart above
    # (the same commit) is not the push; fsmove never redeploys by itself (it did, on
    # the old buckets).
    (repo / "clevercloud" / "buckets.json").write_text(json.dumps(
        [{"bucket_host": scene.host(new_up), "folder": "/uploads"}]))
    early = world.fsmove(*scene.args("--yes", "--repo", str(repo)))
    assert early.exit_code == 3, early.output
    # A push whose deployment failed: named (before session 35 the rerun only said to
    # push, as if nothing had been pushed).
    scene.app.deployments.insert(0, {"id": 3, "uuid": "deployment_failed", "state": "FAIL",
                                      "zone": "mtl", "cause": "git push",
                                      "commit": "aaaabbbbccccddddeeeeffff0000111122223333"})
    failed = world.fsmove(*scene.args("--yes", "--repo", str(repo)))
    assert failed.exit_code == 3, failed.output
    assert "your push's deployment failed (deployment_failed of commit aaaabbbbcccc)" \
        in failed.stdout, failed.output
    assert "deployment failed" not in early.stdout
    # The user pushes; Clever Cloud deploys it.
    scene.app.deployments.insert(0, {"id": 2, "uuid": "deployment_push", "state": "OK",
                                      "zone": "mtl", "cause": "git push",
                                      "commit": "fedcba9876543210fedcba9876543210fedcba98"})
    again = world.fsmove(*scene.args("--yes", "--repo", str(repo)))
    assert again.exit_code == 0, again.output
    assert not [r for r in world.emulator.requests
                if r.method == "POST" and r.path.endswith(f"{scene.app.id}/instances")]
    assert "migration of json to mtl done" in again.stdout
