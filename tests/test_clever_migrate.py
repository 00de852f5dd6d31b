"""`fsmove migrate`: every phase end to end, with the real `clever` CLI against the API
emulator (tests/clever_api.py) and two real FTP servers as the buckets.

Each bucket is a server of its own (``own_server``): ``clever://ADDON`` is a bucket's whole
root, and the delta pass deletes from the new root what the old one lacks, so a shared
session server (whose root holds other tests' folders) must never be one.
"""

from __future__ import annotations

import json
import sqlite3
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import pytest

from tests.clever_api import App
from tests.clever_world import CleverWorld, clever_world_fixture, shop_dns_fixture  # noqa: F401
from tests.servers import RunningServer, make_tree, start_aioftp, start_vsftpd
from tests.servers.dnsmasq import DnsmasqServer

FILES = {
    "index.html": b"<h1>shop</h1>",
    "img/a.bin": bytes(range(256)) * 800,
    "img/deep/b.txt": b"b" * 1000,
}


@dataclass(frozen=True)
class Scene:
    app: App
    old: str  # add-on ids
    new: str
    src: RunningServer
    dst: RunningServer

    @property
    def new_host(self) -> str:
        return f"{self.dst.host}:{self.dst.port}"

    def args(self, *more: str) -> list[str]:
        return ["migrate", "--app", "shop", "--from", self.old, "--to", self.new, "--quiet",
                *more]


@pytest.fixture
def scene(clever_world: CleverWorld, own_server: Callable[..., RunningServer]) -> Scene:
    src, dst = own_server(start_vsftpd), own_server(start_aioftp)
    make_tree(src, FILES)
    old = clever_world.bucket("uploads", src)
    new = clever_world.bucket("uploads-mtl", dst, region="mtl")
    app = clever_world.emulator.add_app(
        "shop", zone="mtl", variant="node", domains=["www.shop.example"],
        env={"CC_FS_BUCKET": f"/uploads:{src.host}:{src.port}:async"})
    app.linked.append(old)
    return Scene(app=app, old=old, new=new, src=src, dst=dst)


def _tree(root: Path) -> dict[str, bytes]:
    return {p.relative_to(root).as_posix(): p.read_bytes()
            for p in sorted(root.rglob("*")) if p.is_file()}


def _copy_runs(world: CleverWorld) -> int:
    """How many runs the copy job's journal recorded (bulk copy, delta, ...)."""
    (journal,) = (world.state_home / "fsmove" / "jobs").glob("*.db")
    with sqlite3.connect(f"file:{journal}?mode=ro", uri=True) as conn:
        return int(conn.execute("SELECT COUNT(*) FROM runs").fetchone()[0])


def _calls(world: CleverWorld, method: str, suffix: str) -> int:
    return sum(1 for r in world.emulator.requests
               if r.method == method and r.path.endswith(suffix))


def _assert_switched(world: CleverWorld, scene: Scene) -> None:
    assert scene.app.linked == [scene.new]
    assert scene.app.env == {"CC_FS_BUCKET": f"/uploads:{scene.new_host}:async"}
    assert len(scene.app.deployments) == 1


def _assert_no_secret(world: CleverWorld, scene: Scene, *texts: str) -> None:
    secrets = (scene.src.password, scene.dst.password, world.env["CLEVER_TOKEN"],
               world.env["CLEVER_SECRET"])
    stored = [p.read_text() for p in (world.state_home / "fsmove").rglob("*.json")]
    argv = json.dumps(world.child_argv())
    for secret in secrets:
        assert secret
        for text in (*texts, *stored, argv):
            assert secret not in text


def test_migrate_end_to_end(clever_world: CleverWorld, scene: Scene, dnsmasq: DnsmasqServer,
                            tmp_path: Path) -> None:
    report = tmp_path / "migration.json"
    out = clever_world.fsmove(*scene.args("--report", str(report),
                                          "--nameserver", dnsmasq.nameserver))
    assert out.exit_code == 0, out.output
    assert _tree(scene.dst.root) == FILES
    assert json.loads(report.read_text())["verdict"] == "match"
    _assert_switched(clever_world, scene)
    assert clever_world.emulator.unknown == []
    for line in ("www.shop.example. CNAME domain.mtl.clever-cloud.com.",
                 "www.shop.example. now CNAME domain.par.clever-cloud.com.: not switched yet; "
                 "TTL too long: lower the TTL of www.shop.example. from 3600 s to 60 s",
                 "watch the switch: fsmove dns www.shop.example --zone mtl --watch",
                 "verification: match: the new bucket holds exactly the old one's files",
                 "migration of shop to " + scene.new + " done"):
        assert line in out.stdout, out.stdout
    for phase in ("preflight", "copy", "verify", "delta", "cutover", "dns"):
        assert f"] {phase}: done in" in out.stderr, out.stderr
    (state,) = (clever_world.state_home / "fsmove" / "migrate").glob("*.json")
    assert sorted(json.loads(state.read_text())["done"]) == sorted(
        ["preflight", "copy", "verify", "delta", "cutover", "dns"])
    assert _copy_runs(clever_world) == 2  # the bulk copy and the delta

    again = clever_world.fsmove(*scene.args())
    assert again.exit_code == 0, again.output
    assert again.stderr.count("done already") == 6
    assert len(clever_world.emulator.mutations()) == 4  # link, env set, unlink, restart
    assert _copy_runs(clever_world) == 2
    _assert_no_secret(clever_world, scene, out.output, again.output, report.read_text())


def test_until_verify_then_the_rerun_continues_at_delta(
    clever_world: CleverWorld, scene: Scene
) -> None:
    first = clever_world.fsmove(*scene.args("--until", "verify"))
    assert first.exit_code == 0, first.output
    assert _tree(scene.dst.root) == FILES
    assert clever_world.emulator.mutations() == []
    assert "rerun without --until to continue at delta" in first.stdout
    assert "cutover    not run (--until verify)" in first.stdout
    assert _copy_runs(clever_world) == 1

    # Meanwhile the app writes a file to the old bucket; the new one has a stray file.
    make_tree(scene.src, {"late.txt": b"written after the bulk copy"})
    (scene.dst.root / "stray.txt").write_bytes(b"not in the old bucket")
    looked = clever_world.fsmove(*scene.args("--until", "delta", "--dry-run"))
    assert looked.exit_code == 0, looked.output
    assert "delta (dry run): would copy" in looked.stdout, looked.stdout
    assert "delta (dry run): would delete 1 files only in the new bucket" in looked.stdout
    assert (scene.dst.root / "stray.txt").exists() and _copy_runs(clever_world) == 1

    second = clever_world.fsmove(*scene.args())
    assert second.exit_code == 0, second.output
    for phase in ("preflight", "copy", "verify"):
        assert f"] {phase}: done already" in second.stderr, second.stderr
    assert _copy_runs(clever_world) == 2  # only the delta ran: the copy was not redone
    assert _tree(scene.dst.root) == {**FILES, "late.txt": b"written after the bulk copy"}
    _assert_switched(clever_world, scene)


def test_a_failed_restart_then_the_rerun_continues_at_cutover(
    clever_world: CleverWorld, scene: Scene
) -> None:
    clever_world.emulator.fail_once("POST", r"/applications/[^/]+/instances$")
    first = clever_world.fsmove(*scene.args())
    assert first.exit_code == 1, first.output
    assert "injected failure" in first.stderr and "(restart)" in first.stderr
    assert first.stderr.strip().splitlines()[-1].startswith("fsmove: error: ")
    assert "stopped at cutover; rerun the same command" in first.stdout
    assert scene.app.deployments == [] and scene.new in scene.app.linked

    second = clever_world.fsmove(*scene.args())
    assert second.exit_code == 0, second.output
    for phase in ("preflight", "copy", "verify", "delta"):
        assert f"] {phase}: done already" in second.stderr, second.stderr
    assert _copy_runs(clever_world) == 2  # copy and delta, not repeated
    _assert_switched(clever_world, scene)
    assert _calls(clever_world, "POST", "/addons") == 1  # the link was not repeated
    assert _calls(clever_world, "POST", "/instances") == 2  # the failed one, the good one


def test_ctrl_c_exits_130_with_the_journal_saved(
    clever_world: CleverWorld, scene: Scene, tmp_path: Path
) -> None:
    # A `clever` that, asked to restart, does what Ctrl-C does to fsmove: SIGINT.
    interrupting = tmp_path / "clever-ctrl-c"
    interrupting.write_text(
        "#!/usr/bin/env python3\n"
        "import os, signal, sys, time\n"
        "if sys.argv[1:2] == ['restart']:\n"
        "    os.kill(os.getppid(), signal.SIGINT)\n"
        "    time.sleep(30)\n"
        f"os.execv({clever_world.env['FSMOVE_CLEVER']!r}, ['clever', *sys.argv[1:]])\n")
    interrupting.chmod(0o755)
    first = clever_world.fsmove(*scene.args(), FSMOVE_CLEVER=str(interrupting))
    assert first.exit_code == 130, first.output
    assert first.stderr.strip().splitlines()[-1] == (
        "fsmove: error: interrupted: the journal is saved; rerun the same command to resume")
    (state,) = (clever_world.state_home / "fsmove" / "migrate").glob("*.json")
    saved = json.loads(state.read_text())
    assert sorted(saved["done"]) == sorted(["preflight", "copy", "verify", "delta"])
    assert saved["failed_phase"] == "cutover" and scene.app.deployments == []

    second = clever_world.fsmove(*scene.args())
    assert second.exit_code == 0, second.output
    assert "] cutover: done in" in second.stderr
    assert _copy_runs(clever_world) == 2
    _assert_switched(clever_world, scene)


def test_dry_run_changes_nothing(clever_world: CleverWorld, scene: Scene) -> None:
    out = clever_world.fsmove("migrate", "--app", "shop", "--from", scene.old,
                              "--to", scene.new, "--dry-run")
    assert out.exit_code == 0, out.output
    assert clever_world.emulator.mutations() == []
    assert _tree(scene.dst.root) == {}
    assert not (clever_world.state_home / "fsmove").exists()  # no journal of any kind
    for line in ("copy (dry run): would copy 3 of 3 files (201.0 KiB); 0 already identical",
                 f"would run: fsmove verify clever://{scene.old} clever://{scene.new}",
                 f"would run: fsmove copy clever://{scene.old} clever://{scene.new} --delete",
                 f"would run: clever service link-addon {scene.new} --app shop",
                 "would run: clever env set CC_FS_BUCKET "
                 f"/uploads:{scene.new_host}:async --app shop",
                 f"would run: clever service unlink-addon {scene.old} --app shop",
                 "would run: clever restart --app shop -q",
                 "dry run: nothing was changed"):
        assert line in out.stdout, out.stdout


def test_a_mismatch_stops_before_cutover_and_the_rerun_copies_again(
    clever_world: CleverWorld, scene: Scene, tmp_path: Path
) -> None:
    copied = clever_world.fsmove(*scene.args("--until", "copy"))
    assert copied.exit_code == 0, copied.output
    damaged = scene.dst.root / "img" / "a.bin"
    damaged.write_bytes(b"\0" * len(FILES["img/a.bin"]))  # same size, other bytes

    report = tmp_path / "check.json"
    checked = clever_world.fsmove(*scene.args("--report", str(report)))
    assert checked.exit_code == 4, checked.output
    assert json.loads(report.read_text())["verdict"] == "mismatch"
    assert "verification: MISMATCH" in checked.stdout
    assert "stopped at verify" in checked.stdout
    assert clever_world.emulator.mutations() == []  # the app was not touched
    assert scene.app.linked == [scene.old]

    fixed = clever_world.fsmove(*scene.args("--until", "verify"))
    assert fixed.exit_code == 0, fixed.output
    assert "comparing contents" in fixed.stderr
    assert _tree(scene.dst.root) == FILES
    assert "verification: match" in fixed.stdout
    assert clever_world.emulator.mutations() == []


def test_same_bucket_or_not_a_bucket_is_a_usage_error_before_anything(
    clever_world: CleverWorld, scene: Scene
) -> None:
    same = clever_world.fsmove("migrate", "--app", "shop", "--from", scene.old,
                               "--to", scene.old)
    assert same.exit_code == 2, same.output
    assert same.stderr.startswith("fsmove: error: ") and same.stderr.count("\n") == 1
    assert "are both" in same.stderr
    assert clever_world.emulator.requests == [] and clever_world.child_argv() == []

    pg = clever_world.emulator.add_addon("db", provider_id="postgresql-addon",
                                         provider_name="PostgreSQL")
    not_bucket = clever_world.fsmove("migrate", "--app", "shop", "--from", scene.old,
                                     "--to", pg.id, "--quiet")
    assert not_bucket.exit_code == 2, not_bucket.output
    assert "is not an FS Bucket" in not_bucket.stderr
    assert clever_world.emulator.mutations() == []
    assert not (clever_world.state_home / "fsmove" / "jobs").exists()  # nothing copied
