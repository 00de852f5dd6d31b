"""`fsmove plan`: read-only, with the real `clever` CLI against the API emulator."""

from __future__ import annotations

import json
from pathlib import Path

from tests.clever_api import Emulator
from tests.clever_world import CleverWorld, clever_world_fixture, shop_dns_fixture  # noqa: F401
from tests.servers.dnsmasq import DnsmasqServer

OLD_HOST = "bucket-0ld-fsbucket.services.clever-cloud.com"


def _php_app(emu: Emulator) -> dict[str, str]:
    """A PHP app in par with one of each kind of add-on linked."""
    bucket = emu.add_addon("uploads", env={"BUCKET_HOST": OLD_HOST,
                                           "BUCKET_FTP_USERNAME": "u",
                                           "BUCKET_FTP_PASSWORD": "bucket-secret"})
    kinds = [("postgresql-addon", "PostgreSQL"), ("redis-addon", "Redis"),
             ("jenkins", "Jenkins"), ("cellar-addon", "Cellar S3 storage"),
             ("config-provider", "Configuration provider")]
    others = [emu.add_addon(name.split()[0].lower(), provider_id=pid, provider_name=name)
              for pid, name in kinds]
    app = emu.add_app("shop", zone="par", variant="php", domains=["www.shop.example"], env={
        "CC_FS_BUCKET": f"/uploads:{OLD_HOST}:async",
        "CC_FS_BUCKET_1": f"/cache:{OLD_HOST}",
        "OTHER": "x",
    })
    app.linked += [bucket.id, *(o.id for o in others)]
    return {"app": app.id, "bucket": bucket.id}


def test_plan_lists_everything_and_changes_nothing(clever_world: CleverWorld) -> None:
    ids = _php_app(clever_world.emulator)
    out = clever_world.fsmove("plan", "--app", "shop", "--to", "mtl")
    assert out.exit_code == 0, out.output
    text = out.stdout
    assert "zone par → mtl, instance type php (PHP: must be re-created)" in text
    assert "postgresql (PostgreSQL, par" in text
    assert "moved by Clever Cloud's Migration Tool" in text
    assert "redis (Redis" in text
    assert "jenkins (Jenkins" in text and "needs Clever Cloud support to move" in text
    assert "cellar (Cellar S3 storage" in text
    assert "configuration (Configuration provider" in text and "check by hand" in text
    assert f"uploads (FS Bucket, par, {ids['bucket']}): copied by fsmove" in text
    assert f"host {OLD_HOST}; mounted by CC_FS_BUCKET, CC_FS_BUCKET_1" in text
    assert "plan s, linked; host" in text
    assert "clever addon create fs-bucket uploads-mtl --region mtl --plan s --org orga_" in text
    assert f"CC_FS_BUCKET=/uploads:{OLD_HOST}:async" in text
    assert "clevercloud/buckets.json" in text and "--repo PATH" in text
    assert "www.shop.example" in text and "CNAME domain.mtl.clever-cloud.com." in text
    steps = text.split("Steps, in order:")[1]
    order = ["lower the DNS TTL", "with the Migration Tool", "re-create the PHP app",
             "DNS: www.shop.example. CNAME domain.mtl.clever-cloud.com."]
    positions = [steps.index(word) for word in order]
    assert positions == sorted(positions)
    assert "bucket-secret" not in out.output
    assert clever_world.emulator.mutations() == []
    assert clever_world.emulator.unknown == []
    argv = clever_world.child_argv()
    assert all("-F" in a and "json" in a for a in argv)
    assert all("--app" in a for a in argv if a[0] in ("service", "env", "domain"))


def test_plan_json_reads_buckets_json_from_the_repo(
    clever_world: CleverWorld, tmp_path: Path
) -> None:
    ids = _php_app(clever_world.emulator)
    repo = tmp_path / "repo"
    (repo / "clevercloud").mkdir(parents=True)
    (repo / "clevercloud" / "buckets.json").write_text(json.dumps(
        [{"bucket_host": OLD_HOST, "folder": "/uploads", "apps": ["shop"]}]))
    out = clever_world.fsmove("plan", "--app", ids["app"], "--to", "rbx", "--json",
                              "--repo", str(repo))
    assert out.exit_code == 0, out.output
    plan = json.loads(out.stdout)
    assert plan["app"]["is_php"] is True and plan["to_zone"] == "rbx"
    kinds = {a["name"]: a["kind"] for a in plan["addons"]}
    assert kinds["uploads"] == "fs-bucket" and kinds["postgresql"] == "migration-tool"
    assert kinds["jenkins"] == "support"
    assert plan["buckets_json"] == [{"bucket_host": OLD_HOST, "folder": "/uploads",
                                     "apps": ["shop"]}]
    assert any("buckets.json overrides" in w for w in plan["warnings"])
    assert [m["variable"] for m in plan["mounts"]] == ["CC_FS_BUCKET", "CC_FS_BUCKET_1"]
    assert clever_world.emulator.mutations() == []


def test_plan_bad_zone_and_unknown_app(clever_world: CleverWorld) -> None:
    bad = clever_world.fsmove("plan", "--app", "shop", "--to", "mars")
    assert bad.exit_code == 2 and "not a zone with FS Buckets" in bad.stderr
    assert clever_world.child_argv() == []  # refused before asking anything
    clever_world.emulator.add_app("other")
    missing = clever_world.fsmove("plan", "--app", "nope", "--to", "mtl")
    assert missing.exit_code in (1, 2), missing.output
    assert missing.stderr.startswith("fsmove: error: ") and missing.stderr.count("\n") == 1


def test_plan_shows_dns_and_ttl_from_the_given_nameserver(
    clever_world: CleverWorld, dnsmasq: DnsmasqServer
) -> None:
    _php_app(clever_world.emulator)
    out = clever_world.fsmove("plan", "--app", "shop", "--to", "mtl", "--json",
                              "--nameserver", dnsmasq.nameserver)
    assert out.exit_code == 0, out.output
    (record,) = json.loads(out.stdout)["dns"]
    assert record["name"] == "www.shop.example." and record["rtype"] == "CNAME"
    assert record["values"] == ["domain.par.clever-cloud.com."] and record["ttl"] == 3600
    assert "from 3600 s to 60 s" in record["advice"]
    bad = clever_world.fsmove("plan", "--app", "shop", "--to", "mtl",
                              "--nameserver", "not-an-address")
    assert bad.exit_code == 2, bad.output
    assert clever_world.emulator.mutations() == []


def test_plan_of_an_app_without_any_domain(clever_world: CleverWorld) -> None:
    """The API answers "no favourite vhost" (error id 4021) for an app without domains,
    which clever-tools takes as none. The emulator said 4004 "not found" before session
    32, and the CLI failed where the real one goes on: this plan was never tested."""
    emu = clever_world.emulator
    bucket = emu.add_addon("uploads", env={"BUCKET_HOST": OLD_HOST,
                                           "BUCKET_FTP_USERNAME": "u",
                                           "BUCKET_FTP_PASSWORD": "bucket-secret"})
    app = emu.add_app("worker", zone="par", variant="node",
                      env={"CC_FS_BUCKET": f"/data:{OLD_HOST}"})
    app.linked.append(bucket.id)
    out = clever_world.fsmove("plan", "--app", "worker", "--to", "mtl")
    assert out.exit_code == 0, out.output
    assert "uploads (FS Bucket, par" in out.stdout
    assert "CNAME" not in out.stdout  # no domain: no DNS step
    assert emu.mutations() == []


def test_plan_names_the_other_apps_that_use_a_bucket(clever_world: CleverWorld) -> None:
    """A worker linked to the bucket and a cron job mounting it by variable: the plan
    says they keep the old bucket and that migrate refuses without --split-shared."""
    emu = clever_world.emulator
    ids = _php_app(emu)
    worker = emu.add_app("worker", zone="par", variant="node")
    worker.linked.append(ids["bucket"])
    cron = emu.add_app("cron", zone="par", variant="node",
                       env={"CC_FS_BUCKET": f"/data:{OLD_HOST}"})
    out = clever_world.fsmove("plan", "--app", "shop", "--to", "mtl")
    assert out.exit_code == 0, out.output
    text = " ".join(out.stdout.split())
    assert (f"buckets used by other apps too (uploads: cron ({cron.id}, CC_FS_BUCKET), "
            f"worker ({worker.id}, linked)): they keep the old buckets (the re-created "
            "app gets its own)") in text, text  # shop is PHP: re-created, no refusal
    out = clever_world.fsmove("plan", "--app", "worker", "--to", "mtl")  # a node app
    assert out.exit_code == 0, out.output
    text = " ".join(out.stdout.split())
    assert (f"buckets used by other apps too (uploads: cron ({cron.id}, CC_FS_BUCKET), "
            f"shop ({ids['app']}, linked, CC_FS_BUCKET, CC_FS_BUCKET_1)): they keep the "
            "old buckets; fsmove migrate "
            "refuses unless --split-shared") in text, text
    # One app's variables refused: a warning about that read, not a login to redo.
    emu.fail_once("GET", rf"/applications/{cron.id}/env$", status=403)
    out = clever_world.fsmove("plan", "--app", "worker", "--to", "mtl")
    assert out.exit_code == 0, out.output
    text = " ".join(out.stdout.split())
    assert f"could not read the variables of cron ({cron.id})" in text, text
    assert "HTTP 403" in text, text
    assert ("cannot tell whether another app shares a bucket; fsmove migrate refuses until "
            "it can be read, unless --split-shared") in text, text
    assert "refused while other apps may use its buckets" in text, text
    assert "clever login" not in text
    assert emu.mutations() == [] and emu.unknown == []
