"""fsmove/clever/api.py: signed requests to the API emulator over real HTTP, the signature
checked by the emulator as the real API does (tests/clever_oauth.py), the credentials
found where the `clever` CLI finds them."""

from __future__ import annotations

import json
import socket
import subprocess
from collections.abc import Iterator
from pathlib import Path

import pytest
from oauthlib.oauth1 import SIGNATURE_HMAC_SHA512, SIGNATURE_PLAINTEXT, Client

from fsmove.clever.api import CLI_CONSUMER_KEY, CleverApi, Credentials, config_file_path
from fsmove.clever.clever_tool import CleverAuthError, CleverError
from fsmove.errors import UsageError
from tests.clever_api import Emulator, serve_emulator
from tests.clever_oauth import CLI_CONSUMER_SECRET, OAuthCheck
from tests.clever_world import CleverWorld, clever_world_fixture  # noqa: F401

TOKEN = "tok-0123456789abcdef"
SECRET = "sec-fedcba9876543210"


@pytest.fixture
def emulator() -> Iterator[tuple[Emulator, str]]:
    with serve_emulator(token=TOKEN, secret=SECRET) as served:
        yield served


def _env(url: str, **more: str) -> dict[str, str]:
    return {"API_HOST": url, "CLEVER_TOKEN": TOKEN, "CLEVER_SECRET": SECRET, **more}


def test_signed_request_is_accepted_and_json_parsed(emulator: tuple[Emulator, str]) -> None:
    emu, url = emulator
    app = emu.add_app("legacy-php", zone="par")
    api = CleverApi.from_cli_environment(_env(url))
    assert api.owner_of_app("legacy-php") == emu.org_id
    assert api.owner_of_app(app.id) == emu.org_id
    got = api.application(emu.org_id, app.id)
    assert got["zone"] == "par" and got["id"] == app.id
    # PLAINTEXT, as the CLI signs, by oauthlib: the header says so.
    assert [r.path for r in emu.requests] == [
        "/v2/summary", "/v2/summary", f"/v2/organisations/{emu.org_id}/applications/{app.id}"]


def test_wrong_secret_is_refused_in_one_line_without_secrets(
        emulator: tuple[Emulator, str]) -> None:
    _emu, url = emulator
    api = CleverApi.from_cli_environment({**_env(url), "CLEVER_SECRET": "not-the-secret"})
    with pytest.raises(CleverAuthError) as caught:
        api.get("/v2/summary")
    text = str(caught.value)
    assert "HTTP 401" in text and "invalid signature" in text and "\n" not in text
    assert "not-the-secret" not in text and TOKEN not in text


def test_zone_move_puts_the_zone_and_reads_it_back(emulator: tuple[Emulator, str]) -> None:
    emu, url = emulator
    app = emu.add_app("shop", zone="par", variant="node")
    api = CleverApi.from_cli_environment(_env(url))
    moved = api.move_application(emu.org_id, app.id, "mtl")
    assert moved["zone"] == "mtl" and app.zone == "mtl"
    assert [(r.method, r.path, json.loads(r.body)) for r in emu.mutations()] == [
        ("PUT", f"/v2/organisations/{emu.org_id}/applications/{app.id}", {"zone": "mtl"})]


def test_zone_move_refused_names_the_console_step(emulator: tuple[Emulator, str]) -> None:
    emu, url = emulator
    app = emu.add_app("shop", zone="par", variant="node")
    emu.fail_once("PUT", r"/applications/[^/]+$")
    api = CleverApi.from_cli_environment(_env(url))
    with pytest.raises(CleverError) as caught:
        api.move_application(emu.org_id, app.id, "mtl")
    text = str(caught.value)
    assert "HTTP 500" in text and "injected failure" in text and "Zone, Save" in text
    assert "\n" not in text and app.zone == "par"


def test_credentials_from_the_cli_config_file(tmp_path: Path,
                                              emulator: tuple[Emulator, str]) -> None:
    emu, url = emulator
    emu.add_app("shop", variant="node")
    config = tmp_path / "xdg" / "clever-cloud" / "clever-tools.json"
    config.parent.mkdir(parents=True)
    # The current form: the first profile is the active one, its overrides apply.
    config.write_text(json.dumps({"version": 1, "profiles": [
        {"alias": "me", "token": TOKEN, "secret": SECRET, "overrides": {"API_HOST": url}},
        {"alias": "other", "token": "t2", "secret": "s2"}]}))
    env = {"XDG_CONFIG_HOME": str(tmp_path / "xdg"), "HOME": str(tmp_path)}
    assert config_file_path(env) == config
    api = CleverApi.from_cli_environment(env)
    assert api.api_host == url and api.owner_of_app("shop") == emu.org_id
    # The legacy form {"token", "secret"}, named by CONFIGURATION_FILE; API_HOST from env.
    legacy = tmp_path / "legacy.json"
    legacy.write_text(json.dumps({"token": TOKEN, "secret": SECRET}))
    api = CleverApi.from_cli_environment({"CONFIGURATION_FILE": str(legacy), "API_HOST": url})
    assert api.owner_of_app("shop") == emu.org_id


def test_no_credentials_is_an_auth_error(tmp_path: Path) -> None:
    with pytest.raises(CleverAuthError, match="clever login"):
        CleverApi.from_cli_environment({"HOME": str(tmp_path)})
    bad = tmp_path / "bad.json"
    bad.write_text("{not json")
    with pytest.raises(CleverAuthError, match="cannot read the clever-tools configuration"):
        CleverApi.from_cli_environment({"CONFIGURATION_FILE": str(bad)})


def test_credentials_repr_hides_secrets() -> None:
    text = repr(Credentials(token=TOKEN, secret=SECRET, source="env"))
    assert TOKEN not in text and SECRET not in text and CLI_CONSUMER_SECRET not in text


def test_unknown_app_and_ambiguous_name(emulator: tuple[Emulator, str]) -> None:
    emu, url = emulator
    emu.add_app("twin", variant="node")
    emu.add_app("twin", variant="node")
    api = CleverApi.from_cli_environment(_env(url))
    with pytest.raises(UsageError, match="no application 'nope'"):
        api.owner_of_app("nope")
    with pytest.raises(UsageError, match="2 applications are named 'twin'"):
        api.owner_of_app("twin")


def test_unreachable_and_silent_api_are_one_line_errors() -> None:
    with socket.socket() as closed:
        closed.bind(("127.0.0.1", 0))
        port = closed.getsockname()[1]
    api = CleverApi(f"http://127.0.0.1:{port}", Credentials(token=TOKEN, secret=SECRET))
    with pytest.raises(CleverError, match="cannot be reached") as caught:
        api.get("/v2/summary")
    assert "\n" not in str(caught.value)
    # A server that accepts the connection and never answers: the timeout ends it.
    with socket.socket() as silent:
        silent.bind(("127.0.0.1", 0))
        silent.listen(1)
        api = CleverApi(f"http://127.0.0.1:{silent.getsockname()[1]}",
                        Credentials(token=TOKEN, secret=SECRET), timeout=0.5)
        with pytest.raises(CleverError, match="did not answer within"):
            api.get("/v2/summary")


def test_emulator_check_is_the_real_verification() -> None:
    """PLAINTEXT and HMAC-SHA512 signed by oauthlib pass; any wrong part fails."""
    check = OAuthCheck(token=TOKEN, secret=SECRET)
    url = "http://127.0.0.1:1/v2/organisations/o/applications/a?x=1"
    for method in (SIGNATURE_PLAINTEXT, SIGNATURE_HMAC_SHA512):
        client = Client(CLI_CONSUMER_KEY, client_secret=CLI_CONSUMER_SECRET,
                        resource_owner_key=TOKEN, resource_owner_secret=SECRET,
                        signature_method=method)
        body = '{"zone": "mtl"}'
        _u, headers, _b = client.sign(url, http_method="PUT", body=body,
                                      headers={"Content-Type": "application/json"})
        auth = headers["Authorization"]
        assert check.refusal(method="PUT", url=url, body=body, authorization=auth) is None
        assert check.refusal(method="PUT", url=url, body='{"zone": "par"}',
                             authorization=auth) is not None  # body hash
        wrong = OAuthCheck(token=TOKEN, secret="other")
        assert wrong.refusal(method="PUT", url=url, body=body, authorization=auth) == (
            "invalid signature")
    # The real CLI's header shape: no method (PLAINTEXT), no nonce, no timestamp.
    cli_header = (f'OAuth oauth_consumer_key="{CLI_CONSUMER_KEY}", oauth_token="{TOKEN}", '
                  f'oauth_signature="{CLI_CONSUMER_SECRET}%26{SECRET}"')
    assert check.refusal(method="GET", url=url, body="", authorization=cli_header) is None
    forged = cli_header.replace(SECRET, "guess")
    assert check.refusal(method="GET", url=url, body="", authorization=forged) == (
        "invalid signature")


def test_real_cli_with_a_wrong_secret_is_refused(clever_world: CleverWorld) -> None:
    """The emulator verifies the real CLI's signature too: the right secret passes, a
    wrong one is 'not logged in'."""
    clever_world.emulator.add_app("shop", variant="node")
    launcher = clever_world.env["FSMOVE_CLEVER"]
    assert launcher is not None
    env = {k: v for k, v in clever_world.env.items() if v is not None}
    ok = subprocess.run([launcher, "env", "--app", "shop", "-F", "json"], env=env,
                        capture_output=True, text=True, stdin=subprocess.DEVNULL, check=False)
    assert ok.returncode == 0, ok.stderr
    env["CLEVER_SECRET"] = "wrong"
    bad = subprocess.run([launcher, "env", "--app", "shop", "-F", "json"], env=env,
                         capture_output=True, text=True, stdin=subprocess.DEVNULL, check=False)
    assert bad.returncode != 0 and "not logged in" in bad.stderr
