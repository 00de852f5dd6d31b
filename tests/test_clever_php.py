"""Re-creating a PHP app in another zone (fsmove/clever/php.py): the real `clever` CLI
against the API emulator (tests/clever_api.py), two real FTP servers standing in for the
old app's own FTP bucket (holding its code) and the one the platform gives the new app."""

from __future__ import annotations

import json
import shutil
import signal
import subprocess
import sys
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import pytest

from fsmove.clever.php import PhpMigrationRequest, run_php_migration
from fsmove.exitcodes import ExitCode
from tests.clever_api import Addon, App, Emulator, Request
from tests.clever_world import CleverWorld, clever_world_fixture  # noqa: F401
from tests.servers import RunningServer, make_tree, start_aioftp, start_vsftpd

CODE = {
    "index.php": b"<?php echo 'legacy'; ?>",
    "lib/db.php": b"<?php // db\n" + b"x" * 5000,
    "assets/logo.png": bytes(range(256)) * 300,
    "wp-content/uploads/2024/a.jpg": b"\xff\xd8" + b"j" * 20000,
}
DB_PASSWORD = "s3cret-db-password"


@dataclass
class PhpScene:
    emu: Emulator
    old: App
    code_bucket: Addon
    db: Addon
    cache: Addon
    backend: App
    src: RunningServer
    dst: RunningServer
    snapshot: dict[str, object]


def _snapshot(app: App) -> dict[str, object]:
    """Everything of an app but its domains and deployments."""
    data = dict(vars(app))
    for key in ("domains", "deployments"):
        data.pop(key)
    return json.loads(json.dumps(data))


@pytest.fixture
def php(clever_world: CleverWorld, own_server: Callable[..., RunningServer],
        request: pytest.FixtureRequest) -> PhpScene:
    """The old app in the organisation, or (``indirect`` param "personal") with its
    add-ons in the personal space."""
    personal = getattr(request, "param", "organisation") == "personal"
    src, dst = own_server(start_vsftpd), own_server(start_aioftp)
    make_tree(src, CODE)
    emu = clever_world.emulator
    code_bucket = emu.add_addon("legacy-php-ftp", env={
        "BUCKET_HOST": f"{src.host}:{src.port}", "BUCKET_FTP_USERNAME": src.user,
        "BUCKET_FTP_PASSWORD": src.password}, personal=personal)
    db = emu.add_addon("legacy-db", provider_id="mysql-addon", provider_name="MySQL",
                       env={"MYSQL_ADDON_HOST": "mysql.example", "MYSQL_ADDON_PASSWORD": "p"},
                       personal=personal)
    cache = emu.add_addon("cache", provider_id="redis-addon", provider_name="Redis",
                          env={"REDIS_HOST": "redis.example"}, personal=personal)
    backend = emu.add_app("api-backend", variant="node", personal=personal)
    old = emu.add_app("legacy-php", zone="par", variant="php", personal=personal, env={
        "APP_ENV": "production", "DB_PASSWORD": DB_PASSWORD, "CC_PHP_VERSION": "8.2"})
    old.domains += ["www.legacy.example", "legacy.example",
                    f"app-{old.id.removeprefix('app_')}.cleverapps.io"]
    old.linked += [code_bucket.id, db.id, cache.id]
    old.dependencies.append(backend.id)
    old.deploy_type = "FTP"
    old.min_instances, old.max_instances = 2, 4
    old.min_flavor, old.max_flavor = "S", "M"
    old.separate_build, old.build_flavor = True, "L"
    old.force_https, old.sticky_sessions = "ENABLED", True
    old.homogeneous, old.cancel_on_push = True, True
    emu.ftp_app_buckets.append({
        "BUCKET_HOST": f"{dst.host}:{dst.port}", "BUCKET_FTP_USERNAME": dst.user,
        "BUCKET_FTP_PASSWORD": dst.password})
    return PhpScene(emu=emu, old=old, code_bucket=code_bucket, db=db, cache=cache,
                    backend=backend, src=src, dst=dst, snapshot=_snapshot(old))


@pytest.fixture
def world_env(clever_world: CleverWorld, monkeypatch: pytest.MonkeyPatch) -> CleverWorld:
    """The world's environment in os.environ, for calling fsmove's functions directly."""
    for key, value in clever_world.env.items():
        if value is None:
            monkeypatch.delenv(key, raising=False)
        else:
            monkeypatch.setenv(key, value)
    return clever_world


def _migrate(world: CleverWorld, capsys: pytest.CaptureFixture[str], *,
             dry_run: bool = False) -> tuple[ExitCode, str]:
    code = run_php_migration(PhpMigrationRequest(app="legacy-php", zone="mtl", yes=True,
                                                 dry_run=dry_run, quiet=True))
    return code, capsys.readouterr().out


def _tree(root: Path) -> dict[str, bytes]:
    return {p.relative_to(root).as_posix(): p.read_bytes()
            for p in sorted(root.rglob("*")) if p.is_file()}


def _new_app(emu: Emulator, old: App) -> App:
    (new,) = [a for a in emu.apps.values() if a.name == f"{old.name}-mtl"]
    return new


def _mutations(emu: Emulator) -> list[Request]:
    return emu.mutations()


def _assert_recreated(s: PhpScene) -> App:
    emu, old = s.emu, s.old
    new = _new_app(emu, old)
    assert new.owner == old.owner
    assert (new.zone, new.variant, new.deploy_type) == ("mtl", "php", "FTP")
    assert new.env == old.env
    # Its own bucket, then the old app's links but its code bucket; the same dependency.
    own = [a for a in emu.addons.values() if a.name == "legacy-php-mtl FTP"]
    assert len(own) == 1 and own[0].region == "mtl"
    assert sorted(new.linked) == sorted([own[0].id, s.db.id, s.cache.id])
    assert new.dependencies == [s.backend.id]
    assert (new.min_instances, new.max_instances, new.min_flavor, new.max_flavor) == (
        2, 4, "S", "M")
    assert (new.separate_build, new.build_flavor) == (True, "L")
    assert (new.force_https, new.sticky_sessions, new.homogeneous, new.cancel_on_push) == (
        "ENABLED", True, True, True)
    # The only add-on created is the new app's own bucket: no POST of an add-on.
    assert not [r for r in emu.requests if r.method == "POST" and r.path.endswith("/addons")
                and "/applications/" not in r.path]
    assert len(emu.addons) == 4
    # Its code, byte for byte.
    assert _tree(s.dst.root) == _tree(s.src.root) == CODE
    # Deployed (exactly once, successfully) before the first domain left the old app.
    assert [d["state"] for d in new.deployments] == ["OK"]
    reqs = emu.requests
    deployed_at = next(i for i, r in enumerate(reqs) if r.method == "POST"
                       and r.path.endswith(f"{new.id}/instances"))
    first_rm = next(i for i, r in enumerate(reqs) if r.method == "DELETE"
                    and "/vhosts/" in r.path)
    assert deployed_at < first_rm
    # Each domain's rm and add back to back; the old app keeps its own cleverapps domain.
    muts = _mutations(emu)
    for domain in ("www.legacy.example", "legacy.example"):
        i = next(i for i, r in enumerate(muts) if r.method == "DELETE"
                 and r.path == f"/v2/organisations/{old.owner}/applications/{old.id}"
                               f"/vhosts/{domain}")
        assert (muts[i + 1].method, muts[i + 1].path) == (
            "PUT", f"/v2/organisations/{old.owner}/applications/{new.id}/vhosts/{domain}")
    assert old.domains == [f"app-{old.id.removeprefix('app_')}.cleverapps.io"]
    assert {"www.legacy.example", "legacy.example"} <= set(new.domains)
    # The old app is unchanged but for its domains; its code bucket too.
    assert _snapshot(old) == s.snapshot and old.deployments == []
    assert not [r for r in muts if f"/applications/{old.id}" in r.path
                and "/vhosts/" not in r.path]
    assert s.code_bucket.id in emu.addons
    return new


@pytest.mark.parametrize("php", ["organisation", "personal"], indirect=True)
def test_ftp_php_app_is_recreated_in_the_zone(php: PhpScene,
                                              clever_world: CleverWorld) -> None:
    """`fsmove migrate --app legacy-php --to mtl --yes`, as a user runs it."""
    result = clever_world.fsmove("migrate", "--app", "legacy-php", "--to", "mtl", "--yes",
                                 "--quiet")
    code, out = result.exit_code, result.stdout
    assert code == 0, result.output
    new = _assert_recreated(php)
    assert "www.legacy.example. CNAME domain.mtl.clever-cloud.com." in out
    assert "legacy.example. A/AAAA" in out and "cleverapps.io. CNAME" not in out
    assert f"re-creation of legacy-php in mtl done: legacy-php-mtl ({new.id})" in out
    assert php.emu.unknown == []
    # No secret in any child's command line (the env went through stdin).
    flat = json.dumps(clever_world.child_argv())
    assert DB_PASSWORD not in flat and php.src.password not in flat
    files = list((clever_world.state_home / "fsmove" / "php").glob("*.json"))
    journal = [p for p in files if not p.name.endswith(".snapshot.json")]
    assert len(journal) == 1 and len(files) == 2  # the journal, the catch-up's snapshot
    assert all(DB_PASSWORD not in p.read_text() and php.src.password not in p.read_text()
               for p in files)
    # A rerun has nothing left to do and changes nothing.
    before = len(_mutations(php.emu))
    result = clever_world.fsmove("migrate", "--app", "legacy-php", "--to", "mtl", "--yes",
                                 "--quiet")
    assert result.exit_code == 0 and len(_mutations(php.emu)) == before
    assert "[8/9] domains: done already" in result.stdout
    assert "[9/9] catchup: done already" in result.stdout
    # Without --yes and no terminal: a one-line refusal, nothing asked, nothing changed.
    result = clever_world.fsmove("migrate", "--app", "legacy-php", "--to", "rbx")
    assert result.exit_code == 2 and "add --yes" in result.stderr
    assert result.stderr.count("\n") == 1 and len(_mutations(php.emu)) == before


def test_dry_run_changes_nothing_and_prints_every_change(
        php: PhpScene, clever_world: CleverWorld) -> None:
    php.backend.linked.append(php.code_bucket.id)  # another app that uses the code bucket
    result = clever_world.fsmove("migrate", "--app", "legacy-php", "--to", "mtl",
                                 "--dry-run")
    code, out = result.exit_code, result.stdout
    assert code == 0, result.output
    assert (f"note: other apps use legacy-php's code bucket and keep it (the new app gets "
            f"its own copy): legacy-php-ftp: {php.backend.name} ({php.backend.id}, linked)"
            ) in " ".join(out.split()), out
    assert _mutations(php.emu) == [] and php.emu.unknown == []
    assert not list((clever_world.state_home / "fsmove").glob("php/*.json"))
    assert f"would request: POST /v2/organisations/{php.emu.org_id}/applications" in out
    assert '"deploy": "ftp"' in out and '"zone": "mtl"' in out
    for line in (
        "would run: clever env import --json --app '<new app>' < 3 variables",
        f"would run: clever service link-addon {php.db.id} --app '<new app>'",
        f"would run: clever service link-addon {php.cache.id} --app '<new app>'",
        f"would run: clever service link-app {php.backend.id} --app '<new app>'",
        "would run: clever scale --app '<new app>' --min-instances 2 --max-instances 4 "
        "--min-flavor S --max-flavor M --build-flavor L",
        "would run: clever config set force-https true --app '<new app>'",
        "would run: clever config set zero-downtime false --app '<new app>'",
        f"would run: fsmove copy clever://{php.code_bucket.id} "
        "'clever://<new app bucket>' --delete",
        "would run: clever restart --app '<new app>' -q",
        f"would run: clever domain rm www.legacy.example --app {php.old.id}",
        "would run: clever domain add www.legacy.example --app '<new app>'",
        "would copy what the old app wrote to its bucket after the code copy, and delete "
        "from the new app's bucket what it deleted (never over a file the new app changed)",
    ):
        assert line in out, line
    assert "dry run: nothing was changed" in out
    # An app of the new app's name exists already (the user's): refused before any
    # change. Before session 34 the first run made a second app of that name, and a
    # rerun after a failed creation adopted the user's app and overwrote it.
    theirs = php.emu.add_app("legacy-php-mtl", zone="mtl", variant="php",
                             env={"THEIR_VAR": "keep me"})
    refused = clever_world.fsmove("migrate", "--app", "legacy-php", "--to", "mtl", "--yes")
    assert refused.exit_code == 2, refused.output
    assert refused.stderr.startswith("fsmove: error: an application named legacy-php-mtl "
                                     f"exists already in the owner's account ({theirs.id})")
    assert _mutations(php.emu) == [] and theirs.env == {"THEIR_VAR": "keep me"}


def test_the_code_copy_takes_the_users_copy_options(
        php: PhpScene, clever_world: CleverWorld) -> None:
    """--workers, --bwlimit, --retries, --retry-delay and the connection caps reach the
    code copy (built by fsmove/commands/options.py, as for every copy): its job journal
    keeps the options it ran with (what `fsmove resume` would replay)."""
    from fsmove.transfers.jobs import list_jobs, read_status
    from fsmove.transfers.ratelimit import parse_rate

    result = clever_world.fsmove(
        "migrate", "--app", "legacy-php", "--to", "mtl", "--yes", "--quiet",
        "--workers", "3", "--bwlimit", "64M", "--retries", "2", "--retry-delay", "0.5",
        "--src-connections", "2", "--dst-connections", "3")
    assert result.exit_code == 0, result.output
    _assert_recreated(php)
    (job,) = list_jobs(clever_world.state_home / "fsmove" / "jobs")
    options = read_status(job).options
    assert options is not None
    assert {k: options[k] for k in ("workers", "bwlimit", "retries", "retry_delay",
                                    "src_connections", "dst_connections", "delete")} == {
        "workers": 3, "bwlimit": parse_rate("64M"), "retries": 2, "retry_delay": 0.5,
        "src_connections": 2, "dst_connections": 3, "delete": True}


def test_what_the_old_app_does_to_its_bucket_after_the_code_copy_is_caught_up(
        php: PhpScene, clever_world: CleverWorld, tmp_path: Path) -> None:
    """The old app serves until its domains move: uploads it writes and files it deletes
    after the code copy reach the new app's bucket once they moved; never over what the
    new app wrote (a conflict, exit 4, reported once), never at or below a path the old
    bucket holds as a link (fsmove does not look into it: its absence proves nothing)."""
    emu, src, dst = php.emu, php.src, php.dst
    elsewhere = tmp_path / "elsewhere"
    elsewhere.mkdir()

    def old_app_writes(_request: Request) -> None:  # the new app's deployment starts
        make_tree(src, {"wp-content/uploads/2025/late.jpg": b"\xff\xd8late upload",
                        "index.php": b"<?php echo 'edited by the old app'; ?>"})
        shutil.rmtree(src.root / "lib")  # its only file with it
        shutil.rmtree(src.root / "assets")
        (src.root / "assets").symlink_to(elsewhere)

    def new_app_writes(_request: Request) -> None:  # the first domain reaches the new app
        if not (dst.root / "by-new.txt").exists():
            make_tree(dst, {"by-new.txt": b"the new app's own",
                            "index.php": b"<?php echo 'the new app'; ?>"})
    emu.on_request("POST", r"/instances$", old_app_writes)
    emu.on_request("PUT", r"/vhosts/www\.legacy\.example$", new_app_writes)
    args = ("migrate", "--app", "legacy-php", "--to", "mtl", "--yes", "--quiet")
    first = clever_world.fsmove(*args)
    assert first.exit_code == 4, first.output
    out = first.stdout
    assert "1 conflict(s) listed above (exit 4)" in out, first.output
    assert ("catchup: CONFLICT /index.php: the old app and the new one both wrote it after "
            "the code copy; the new app's version is kept") in out, out
    assert "1 file(s) the old app wrote after the code copy" in out
    assert ("1 file(s) the old app deleted after the code copy, deleted from the new "
            "bucket:\n  deleted /lib/db.php\n") in out
    assert ("/assets/logo.png kept in the new bucket although the old one no longer lists "
            "it: the old bucket holds /assets as a link") in out
    want = {**CODE, "wp-content/uploads/2025/late.jpg": b"\xff\xd8late upload",
            "by-new.txt": b"the new app's own", "index.php": b"<?php echo 'the new app'; ?>"}
    del want["lib/db.php"]
    assert _tree(dst.root) == want and not (dst.root / "lib").exists()
    assert php.old.domains == [f"app-{php.old.id.removeprefix('app_')}.cleverapps.io"]
    again = clever_world.fsmove(*args)  # the conflict was reported: the rerun finishes
    assert again.exit_code == 0, again.output
    assert "CONFLICT" not in again.stdout and "re-creation of legacy-php in mtl done" in \
        again.stdout
    assert _tree(dst.root) == want


def test_500_on_each_kind_of_step_then_rerun_completes_without_duplicates(
        php: PhpScene, world_env: CleverWorld, capsys: pytest.CaptureFixture[str]) -> None:
    emu = php.emu
    emu.lose_creation_answers = 1  # type: ignore[attr-defined]
    code_or_error: object
    try:
        code_or_error = _migrate(world_env, capsys)[0]
    except Exception as exc:  # the creation's answer was lost: one line, rerun
        code_or_error = exc
    assert "HTTP 500" in str(code_or_error) and "\n" not in str(code_or_error)
    faults = [("POST", r"/organisations/[^/]+/applications$"),  # the creation
              ("PUT", r"/applications/[^/]+/env$"),  # env import
              ("POST", r"/applications/[^/]+/addons$"),  # a link
              ("PUT", r"/dependencies/"),  # link-app
              ("PUT", r"/applications/[^/]+$"),  # scale / config set
              ("POST", r"/instances$"),  # the restart
              ("PUT", r"/vhosts/www\.legacy\.example$")]  # a domain add (retried at once)
    for method, rx in faults:
        emu.fail_once(method, rx)
        try:
            code, _out = _migrate(world_env, capsys)
        except Exception as exc:  # each fault stops the run with a one-line error
            assert "\n" not in str(exc) and "rerun" in str(exc), exc
            continue
        if code is ExitCode.OK:
            break
    code, out = _migrate(world_env, capsys)
    assert code is ExitCode.OK, out
    _assert_recreated(php)
    assert sum(1 for a in emu.apps.values() if a.name == "legacy-php-mtl") == 1


def test_failed_deployment_is_redone_domains_wait(
        php: PhpScene, world_env: CleverWorld, capsys: pytest.CaptureFixture[str]) -> None:
    php.emu.fail_deployments = 1
    with pytest.raises(Exception, match="no domain moved") as caught:
        _migrate(world_env, capsys)
    assert "\n" not in str(caught.value)
    assert php.old.domains[:2] == ["www.legacy.example", "legacy.example"]
    code, out = _migrate(world_env, capsys)
    assert code is ExitCode.OK, out
    new = _new_app(php.emu, php.old)
    assert [d["state"] for d in new.deployments] == ["OK", "FAIL"]


def test_cutover_refuses_a_php_app(php: PhpScene, clever_world: CleverWorld) -> None:
    other = clever_world.emulator.add_addon("elsewhere", region="mtl", env={
        "BUCKET_HOST": "bucket-x.example", "BUCKET_FTP_USERNAME": "u",
        "BUCKET_FTP_PASSWORD": "p"})
    out = clever_world.fsmove("cutover", "--app", "legacy-php", "--from", php.code_bucket.id,
                              "--to", other.id)
    assert out.exit_code == 2
    assert out.stderr.startswith("fsmove: error: ") and out.stderr.count("\n") == 1
    assert "fsmove migrate --app legacy-php --to ZONE" in out.stderr
    assert _mutations(php.emu) == []



def test_git_php_app_waits_for_the_push_then_moves_domains(
        clever_world: CleverWorld, world_env: CleverWorld,
        capsys: pytest.CaptureFixture[str]) -> None:
    emu = clever_world.emulator
    old = emu.add_app("shop-php", zone="par", variant="php", env={"APP_ENV": "prod"},
                      domains=["www.shop-php.example"])
    old.min_instances = old.max_instances = 2
    snapshot = _snapshot(old)
    request = PhpMigrationRequest(app="shop-php", zone="mtl", yes=True, quiet=True)
    code = run_php_migration(request)
    out = capsys.readouterr().out
    assert code is ExitCode.PARTIAL, out
    (new,) = [a for a in emu.apps.values() if a.name == "shop-php-mtl"]
    assert (new.zone, new.deploy_type, new.env, new.max_instances) == (
        "mtl", "GIT", {"APP_ENV": "prod"}, 2)
    creates = [a for a in clever_world.child_argv() if a[:1] == ["create"]]
    assert creates == [["create", "--type", "php", "--region", "mtl", "--org", emu.org_id,
                        "shop-php-mtl", "-F", "json"]]
    assert f"git remote add clever-mtl git+ssh://git@example.invalid/{new.id}.git" in out
    assert "git push clever-mtl HEAD:master" in out
    assert old.domains == ["www.shop-php.example"] and new.deployments == []
    # Not pushed yet: the rerun stops there again, creating nothing.
    assert run_php_migration(request) is ExitCode.PARTIAL
    capsys.readouterr()
    assert sum(1 for a in emu.apps.values() if a.name == "shop-php-mtl") == 1
    # The user pushes: the platform deploys the new app; the rerun moves the domain.
    new.deployments.insert(0, {"id": 1, "uuid": "deployment_push", "action": "DEPLOY",
                               "state": "OK", "cause": "git push", "instances": 2})
    assert run_php_migration(request) is ExitCode.OK
    out = capsys.readouterr().out
    assert old.domains == [] and "www.shop-php.example" in new.domains
    assert "www.shop-php.example. CNAME domain.mtl.clever-cloud.com." in out
    assert not [r for r in emu.requests if r.method == "POST" and r.path.endswith("/instances")]
    assert _snapshot(old) == snapshot


_KILLER = """#!{python}
import json, os, signal, subprocess, sys
args = sys.argv[1:]
code = subprocess.call([{launcher!r}, *args])
for index, prefix in enumerate({prefixes!r}):
    flag = {flags!r} + str(index)
    if args[:len(prefix)] == prefix and not os.path.exists(flag):
        open(flag, "w").close()
        os.kill(os.getppid(), signal.SIGKILL)  # fsmove, right after this child's change
sys.exit(code)
"""


def test_sigkill_after_each_kind_of_change_then_rerun_completes_once(
        php: PhpScene, clever_world: CleverWorld, tmp_path: Path) -> None:
    """fsmove is killed right after a `clever` child made its change (a link, the restart,
    a domain's rm before its add), each time before it could journal it; each rerun
    continues without a second link, deployment or app, and the domain lands."""
    kills = [["service", "link-addon"], ["restart"], ["domain", "rm"]]
    killer = tmp_path / "killer"
    killer.write_text(_KILLER.format(python=sys.executable,
                                     launcher=clever_world.env["FSMOVE_CLEVER"],
                                     prefixes=kills, flags=str(tmp_path / "killed-")))
    killer.chmod(0o755)
    env = {k: v for k, v in clever_world.env.items() if v is not None}
    env["FSMOVE_CLEVER"] = str(killer)
    script = ("import sys; from fsmove.cli import main; sys.argv = ['fsmove', 'migrate', "
              "'--app', 'legacy-php', '--to', 'mtl', '--yes', '--quiet']; main()")
    codes = []
    for _attempt in range(len(kills) + 1):
        proc = subprocess.run([sys.executable, "-c", script], env=env, capture_output=True,
                              text=True, stdin=subprocess.DEVNULL, timeout=600, check=False)
        codes.append(proc.returncode)
        if proc.returncode == 0:
            break
    assert codes == [-signal.SIGKILL] * len(kills) + [0], proc.stderr
    new = _assert_recreated(php)
    links = [r for r in php.emu.requests if r.method == "POST"
             and r.path.endswith(f"{new.id}/addons")]
    assert sorted(json.loads(r.body) for r in links) == sorted([php.db.id, php.cache.id])
