"""`fsmove cutover`: the real `clever` CLI against the API emulator, journaled, resumable."""

from __future__ import annotations

import json
from dataclasses import dataclass

from tests.clever_api import App
from tests.clever_world import CleverWorld, clever_world_fixture, shop_dns_fixture  # noqa: F401
from tests.servers.dnsmasq import DnsmasqServer

OLD = "bucket-0ld-fsbucket.services.clever-cloud.com"
NEW = "bucket-n3w-fsbucket.services.clever-cloud.com"
OTHER = "bucket-07her-fsbucket.services.clever-cloud.com"


@dataclass(frozen=True)
class Scene:
    app: App
    old: str
    new: str


def _scene(world: CleverWorld, *, domains: tuple[str, ...] = ("www.shop.example",)) -> Scene:
    emu = world.emulator
    old = emu.add_addon("uploads", env={"BUCKET_HOST": OLD, "BUCKET_FTP_USERNAME": "u1",
                                        "BUCKET_FTP_PASSWORD": "old-secret"})
    new = emu.add_addon("uploads-mtl", region="mtl", env={
        "BUCKET_HOST": NEW, "BUCKET_FTP_USERNAME": "u2", "BUCKET_FTP_PASSWORD": "new-secret"})
    other = emu.add_addon("logs", env={"BUCKET_HOST": OTHER, "BUCKET_FTP_USERNAME": "u3",
                                       "BUCKET_FTP_PASSWORD": "other-secret"})
    app = emu.add_app("shop", zone="mtl", variant="node", domains=list(domains), env={
        "CC_FS_BUCKET": f"/uploads:{OLD}:async",
        "CC_FS_BUCKET_1": f"/cache:{OLD.upper()}",  # by hand: rewritten too (s35)
        "CC_FS_BUCKET_2": f"/logs:{OTHER}",
        "APP_SETTING": f"mentions {OLD} but is no mount",
    })
    app.linked += [old.id, other.id]
    return Scene(app=app, old=old.id, new=new.id)


def _calls(world: CleverWorld, method: str, suffix: str) -> int:
    return sum(1 for r in world.emulator.requests
               if r.method == method and r.path.endswith(suffix))


def _assert_switched(world: CleverWorld, scene: Scene) -> None:
    assert scene.app.linked == [next(a for a in world.emulator.addons.values()
                                     if a.name == "logs").id, scene.new]
    assert scene.app.env == {
        "CC_FS_BUCKET": f"/uploads:{NEW}:async",
        "CC_FS_BUCKET_1": f"/cache:{NEW}",
        "CC_FS_BUCKET_2": f"/logs:{OTHER}",
        "APP_SETTING": f"mentions {OLD} but is no mount",
    }
    assert len(scene.app.deployments) == 1


def test_cutover_end_to_end(clever_world: CleverWorld) -> None:
    scene = _scene(clever_world)
    out = clever_world.fsmove("cutover", "--app", "shop", "--from", scene.old,
                              "--to", scene.new)
    assert out.exit_code == 0, out.output
    _assert_switched(clever_world, scene)
    assert _calls(clever_world, "POST", "/addons") == 1
    assert _calls(clever_world, "POST", "/instances") == 1
    assert "www.shop.example. CNAME domain.mtl.clever-cloud.com." in out.stdout
    assert clever_world.emulator.unknown == []
    changing = (["service", "link-addon"], ["service", "unlink-addon"], ["env", "set"])
    changes = [a for a in clever_world.child_argv() if a[:2] in changing or a[0] == "restart"]
    assert changes == [
        ["service", "link-addon", scene.new, "--app", "shop"],
        ["env", "set", "CC_FS_BUCKET", f"/uploads:{NEW}:async", "--app", "shop"],
        ["env", "set", "CC_FS_BUCKET_1", f"/cache:{NEW}", "--app", "shop"],
        ["service", "unlink-addon", scene.old, "--app", "shop"],
        ["restart", "--app", "shop", "-q"],
    ]
    flat = json.dumps(clever_world.child_argv())
    assert "secret" not in flat
    journal = list((clever_world.state_home / "fsmove" / "cutover").glob("*.json"))
    assert len(journal) == 1 and "secret" not in journal[0].read_text()
    assert all(step["done"] for step in json.loads(journal[0].read_text())["steps"])
    assert "secret" not in out.output

    again = clever_world.fsmove("cutover", "--app", "shop", "--from", scene.old,
                                "--to", scene.new)
    assert again.exit_code == 0, again.output
    assert "5 of 5 steps done" in again.stdout
    assert len(clever_world.emulator.mutations()) == 5  # nothing repeated


def test_cutover_interrupted_at_restart_continues_on_rerun(clever_world: CleverWorld) -> None:
    scene = _scene(clever_world)
    clever_world.emulator.fail_once("POST", r"/applications/[^/]+/instances$")
    first = clever_world.fsmove("cutover", "--app", scene.app.id, "--from", "uploads",
                                "--to", "uploads-mtl")
    assert first.exit_code == 1, first.output
    assert first.stderr.startswith("fsmove: error: ") and first.stderr.count("\n") == 1
    assert "injected failure" in first.stderr and "stopped at step 5/5 (restart)" in first.stderr
    assert scene.app.deployments == [] and scene.new in scene.app.linked

    second = clever_world.fsmove("cutover", "--app", scene.app.id, "--from", "uploads",
                                 "--to", "uploads-mtl")
    assert second.exit_code == 0, second.output
    assert "4 of 5 steps done" in second.stdout
    _assert_switched(clever_world, scene)
    assert _calls(clever_world, "POST", "/addons") == 1  # the link was not repeated
    assert _calls(clever_world, "POST", "/instances") == 2  # the failed one, the good one


def test_cutover_dry_run_changes_nothing(clever_world: CleverWorld) -> None:
    scene = _scene(clever_world)
    out = clever_world.fsmove("cutover", "--app", "shop", "--from", scene.old,
                              "--to", scene.new, "--dry-run")
    assert out.exit_code == 0, out.output
    assert clever_world.emulator.mutations() == []
    for line in (f"would run: clever service link-addon {scene.new} --app shop",
                 f"would run: clever env set CC_FS_BUCKET /uploads:{NEW}:async --app shop",
                 f"would run: clever env set CC_FS_BUCKET_1 /cache:{NEW} --app shop",
                 f"would run: clever service unlink-addon {scene.old} --app shop",
                 "would run: clever restart --app shop -q"):
        assert line in out.stdout
    assert "dry run: nothing was changed" in out.stdout
    assert not (clever_world.state_home / "fsmove" / "cutover").exists()


def test_cutover_refuses_same_or_non_bucket(clever_world: CleverWorld) -> None:
    scene = _scene(clever_world)
    same = clever_world.fsmove("cutover", "--app", "shop", "--from", scene.old,
                               "--to", scene.old)
    assert same.exit_code == 2 and "are both" in same.stderr
    pg = clever_world.emulator.add_addon("db", provider_id="postgresql-addon",
                                         provider_name="PostgreSQL")
    not_bucket = clever_world.fsmove("cutover", "--app", "shop", "--from", scene.old,
                                     "--to", pg.id)
    assert not_bucket.exit_code == 2, not_bucket.output
    assert "is not an FS Bucket" in not_bucket.stderr
    assert not_bucket.stderr.count("\n") == 1
    assert clever_world.emulator.mutations() == []


def test_cutover_checks_ttls_on_the_given_nameserver(
    clever_world: CleverWorld, dnsmasq: DnsmasqServer
) -> None:
    scene = _scene(clever_world)
    out = clever_world.fsmove("cutover", "--app", "shop", "--from", scene.old, "--to",
                              scene.new, "--nameserver", dnsmasq.nameserver)
    assert out.exit_code == 0, out.output
    assert "TTL www.shop.example.: too long:" in out.stdout
    assert "3600" in out.stdout
