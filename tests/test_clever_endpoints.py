"""clever://ADDON endpoints and the `clever` wrapper's errors, with the real CLI against the
API emulator (tests/clever_api.py) and real FTP servers on 127.0.0.1."""

from __future__ import annotations

import os
from collections.abc import Callable
from pathlib import Path

import pytest

from fsmove.clever.bucket import resolve_clever_endpoint, split_bucket_host
from fsmove.clever.clever_tool import CleverCli
from tests.clever_world import CleverWorld, clever_world_fixture  # noqa: F401
from tests.servers import RunningServer, make_tree


def _one_line_error(text: str) -> None:
    assert text.startswith("fsmove: error: "), text
    assert text.count("\n") == 1 and "Traceback" not in text, text


@pytest.fixture
def world_env(clever_world: CleverWorld, monkeypatch: pytest.MonkeyPatch) -> CleverWorld:
    """The world's environment in os.environ, for calling fsmove's functions directly."""
    for key, value in clever_world.env.items():
        if value is None:
            monkeypatch.delenv(key, raising=False)
        else:
            monkeypatch.setenv(key, value)
    return clever_world


def test_bucket_host_port_is_the_ftp_port() -> None:
    assert split_bucket_host("bucket-x-fsbucket.services.clever-cloud.com") == (
        "bucket-x-fsbucket.services.clever-cloud.com", None)
    assert split_bucket_host("127.0.0.1:2121") == ("127.0.0.1", 2121)


def test_resolve_by_id_real_id_and_name(world_env: CleverWorld) -> None:
    emu = world_env.emulator
    addon = emu.add_addon("photos", env={"BUCKET_HOST": "127.0.0.1:2121",
                                         "BUCKET_FTP_USERNAME": "u1",
                                         "BUCKET_FTP_PASSWORD": "pw-photos"})
    cli = CleverCli(executable=world_env.env["FSMOVE_CLEVER"])
    by_id = resolve_clever_endpoint(f"clever://{addon.id}", cli=cli)
    assert (by_id.scheme, by_id.host, by_id.port, by_id.user, by_id.path) == (
        "ftp", "127.0.0.1", 2121, "u1", "/")
    assert by_id.password is not None and by_id.password.reveal() == "pw-photos"
    assert "pw-photos" not in repr(by_id) and "pw-photos" not in by_id.display
    by_real = resolve_clever_endpoint(f"clever://{addon.real_id}/sub/dir/", cli=cli)
    assert (by_real.host, by_real.path) == ("127.0.0.1", "/sub/dir")
    by_name = resolve_clever_endpoint("clever://photos/a", cli=cli)
    assert (by_name.port, by_name.path) == (2121, "/a")
    assert emu.mutations() == [] and emu.unknown == []


def test_copy_and_verify_between_two_clever_buckets(
    clever_world: CleverWorld,
    vsftpd_server: RunningServer,
    aioftp_server: RunningServer,
    fresh_subdir: Callable[[RunningServer], RunningServer],
) -> None:
    src, dst = fresh_subdir(vsftpd_server), fresh_subdir(aioftp_server)
    files = {"index.html": b"<h1>hi</h1>", "img/a.bin": os.urandom(300_000),
             "img/deep/b.txt": b"b" * 1000}
    make_tree(src, files)
    old = clever_world.bucket("old-bucket", src)
    new = clever_world.bucket("new-bucket", dst, region="mtl")
    src_url, dst_url = f"clever://{old}{src.url_path}", f"clever://{new}{dst.url_path}"

    copied = clever_world.fsmove("copy", src_url, dst_url, "--quiet")
    assert copied.exit_code == 0, copied.output
    for rel, content in files.items():
        assert (dst.root / rel).read_bytes() == content
    verified = clever_world.fsmove("verify", src_url, dst_url, "--quiet")
    assert verified.exit_code == 0, verified.output

    for out in (copied, verified):
        assert src.password not in out.output and dst.password not in out.output
    argv = clever_world.child_argv()
    assert [a[:2] for a in argv].count(["addon", "env"]) == 4  # two sides, two commands
    assert all(a[-2:] == ["-F", "json"] for a in argv)
    flat = "\n".join(" ".join(a) for a in argv)
    for secret in (src.password, dst.password, clever_world.env["CLEVER_TOKEN"],
                   clever_world.env["CLEVER_SECRET"]):
        assert secret and secret not in flat
    assert clever_world.emulator.mutations() == []


def test_an_addon_that_is_not_a_bucket_is_a_usage_error(
    clever_world: CleverWorld, tmp_path: Path
) -> None:
    pg = clever_world.emulator.add_addon("db", provider_id="postgresql-addon",
                                         provider_name="PostgreSQL",
                                         env={"POSTGRESQL_ADDON_PASSWORD": "pg-secret"})
    for ref in (pg.id, "db"):
        out = clever_world.fsmove("copy", f"clever://{ref}", str(tmp_path / "here"))
        assert out.exit_code == 2, out.output
        _one_line_error(out.stderr)
        assert "is not an FS Bucket" in out.stderr and "pg-secret" not in out.output


def test_unknown_addon_is_one_line_error(clever_world: CleverWorld, tmp_path: Path) -> None:
    out = clever_world.fsmove("copy", "clever://addon_00000000-0000-0000-0000-000000000000",
                              str(tmp_path / "here"))
    assert out.exit_code == 1, out.output
    _one_line_error(out.stderr)
    assert "does not exist" in out.stderr


def test_clever_not_installed_exits_5(clever_world: CleverWorld, tmp_path: Path) -> None:
    out = clever_world.fsmove("copy", "clever://anything", str(tmp_path / "x"),
                              FSMOVE_CLEVER=str(tmp_path / "no-such-clever"))
    assert out.exit_code == 5, out.output
    _one_line_error(out.stderr)
    assert "install clever-tools" in out.stderr
    empty = tmp_path / "empty-bin"
    empty.mkdir()
    out = clever_world.fsmove("plan", "--app", "a", "--to", "mtl",
                              FSMOVE_CLEVER=None, PATH=str(empty))
    assert out.exit_code == 5, out.output
    _one_line_error(out.stderr)
    assert "`clever` command is not on PATH" in out.stderr


def test_not_logged_in_and_refused_token_exit_5(clever_world: CleverWorld) -> None:
    addon = clever_world.emulator.add_addon("b", env={"BUCKET_HOST": "h",
                                                      "BUCKET_FTP_USERNAME": "u",
                                                      "BUCKET_FTP_PASSWORD": "p"})
    no_login = clever_world.fsmove("verify", f"clever://{addon.id}", "/tmp",
                                   CLEVER_TOKEN=None, CLEVER_SECRET=None)
    assert no_login.exit_code == 5, no_login.output
    _one_line_error(no_login.stderr)
    assert "run `clever login` or set CLEVER_TOKEN and CLEVER_SECRET" in no_login.stderr
    bad_secret = "wrong-" + "9" * 20
    refused = clever_world.fsmove("verify", f"clever://{addon.id}", "/tmp",
                                  CLEVER_TOKEN=bad_secret)
    assert refused.exit_code == 5, refused.output
    _one_line_error(refused.stderr)
    assert bad_secret not in refused.output
    assert any(r.path == "/v2/summary" for r in clever_world.emulator.requests)


def test_an_unreachable_api_is_one_line_naming_it(clever_world: CleverWorld) -> None:
    from tests.servers.ports import free_port

    dead = f"http://127.0.0.1:{free_port()}"  # nobody listens there
    out = clever_world.fsmove("plan", "--app", "a", "--to", "mtl", API_HOST=dead)
    assert out.exit_code == 1, out.output
    _one_line_error(out.stderr)
    assert f"the Clever Cloud API at {dead} cannot be reached" in out.stderr


def test_scrub_masks_known_values_and_secret_shapes() -> None:
    from fsmove.clever.clever_tool import scrub

    line = ('BUCKET_FTP_PASSWORD=hunter2 "CLEVER_SECRET": "qwzx" oauth_token="zzyy", '
            "and a known value s3cr3t-value")
    masked = scrub(line, ["s3cr3t-value"])
    for secret in ("hunter2", "qwzx", "zzyy", "s3cr3t-value"):
        assert secret not in masked.replace("***", "")
    # A very short secret is masked as a word, not inside other words.
    assert scrub("fetch failed, token a refused", ["a"]) == "fetch failed, token *** refused"


def test_a_silent_clever_times_out_in_one_line(tmp_path: Path) -> None:
    from fsmove.clever.clever_tool import CleverCli, CleverError

    hung = tmp_path / "clever"
    hung.write_text("#!/bin/sh\nexec sleep 30\n")
    hung.chmod(0o755)
    with pytest.raises(CleverError) as caught:
        CleverCli(executable=str(hung), timeout=0.5).addon_env("addon_x")
    assert "did not finish within" in str(caught.value) and "\n" not in str(caught.value)
