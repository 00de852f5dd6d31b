"""The Clever Cloud test world: the API emulator, the real `clever` CLI, fsmove in-process.

``clever_world`` (a pytest fixture; test modules import ``clever_world_fixture``) starts
an emulator (tests/clever_api.py) and an environment for fsmove and its `clever`
children: API_HOST pointing at the emulator,
CLEVER_TOKEN / CLEVER_SECRET it accepts, HOME, XDG_CONFIG_HOME, CONFIGURATION_FILE and
XDG_STATE_HOME in the test's own folder (never the user's), NO_UPDATE_NOTIFIER, and
FSMOVE_CLEVER naming a launcher that records each child's argv before running the real
CLI. ``world.fsmove(*args)`` runs fsmove through Typer's CliRunner in that environment.
"""

from __future__ import annotations

import os
import secrets
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

import pytest
from typer.testing import CliRunner

from fsmove.cli import app as fsmove_app
from tests.clever_api import Emulator, serve_emulator
from tests.servers.base import RunningServer, ServerNotInstalled
from tests.servers.clever import recorded_argv, recording_launcher
from tests.servers.dnsmasq import DnsmasqServer, Record, start_dnsmasq


@dataclass(frozen=True)
class Outcome:
    exit_code: int
    stdout: str
    stderr: str

    @property
    def output(self) -> str:
        return self.stdout + self.stderr


def bucket_env(server: RunningServer) -> dict[str, str]:
    """The BUCKET_* variables of a bucket that ``server`` (host:port) stands in for."""
    return {"BUCKET_HOST": f"{server.host}:{server.port}",
            "BUCKET_FTP_USERNAME": server.user, "BUCKET_FTP_PASSWORD": server.password}


@dataclass
class CleverWorld:
    emulator: Emulator
    env: dict[str, str | None]
    argv_log: Path
    state_home: Path

    def fsmove(self, *args: str, **env: str | None) -> Outcome:
        result = CliRunner().invoke(fsmove_app, list(args), env={**self.env, **env},
                                    catch_exceptions=False)
        return Outcome(result.exit_code, result.stdout, result.stderr)

    def child_argv(self) -> list[list[str]]:
        return recorded_argv(self.argv_log)

    def bucket(self, name: str, server: RunningServer, *, region: str = "par",
               plan: str = "s", personal: bool = False) -> str:
        """An FS Bucket add-on whose BUCKET_HOST is ``server`` (host:port); its id."""
        addon = self.emulator.add_addon(name, region=region, env=bucket_env(server),
                                        plan=plan, personal=personal)
        return addon.id

    def subprocess_env(self) -> dict[str, str]:
        """The world's environment for fsmove run as a child process."""
        env = {k: v for k, v in os.environ.items() if not k.startswith("FSMOVE_")}
        env.update({k: v for k, v in self.env.items() if v is not None})
        return env


@contextmanager
def open_world(folder: Path) -> Iterator[CleverWorld]:
    """An emulator and the environment around it, everything under ``folder``."""
    try:
        launcher, argv_log = recording_launcher(folder / "bin")
    except ServerNotInstalled as exc:
        pytest.skip(str(exc))
    token, secret = secrets.token_hex(16), secrets.token_hex(16)
    with serve_emulator(token=token, secret=secret) as (emulator, url):
        config = folder / "config"
        env: dict[str, str | None] = {
            "API_HOST": url,
            "CLEVER_TOKEN": token,
            "CLEVER_SECRET": secret,
            "HOME": str(folder / "home"),
            "XDG_CONFIG_HOME": str(config),
            "CONFIGURATION_FILE": str(config / "clever-tools.json"),
            "XDG_STATE_HOME": str(folder / "state"),
            "NO_UPDATE_NOTIFIER": "1",
            # Node 22 keeps compiled modules there: each `clever` start is ~15% faster.
            "NODE_COMPILE_CACHE": "/tmp/fsmove-tests-clever-compile-cache",
            "FSMOVE_CLEVER": str(launcher),
            "FSMOVE_SRC_PASSWORD": None,
            "FSMOVE_DST_PASSWORD": None,
        }
        yield CleverWorld(emulator=emulator, env=env, argv_log=argv_log,
                          state_home=folder / "state")


@pytest.fixture(name="clever_world")
def clever_world_fixture(tmp_path: Path) -> Iterator[CleverWorld]:
    with open_world(tmp_path) as world:
        yield world


@pytest.fixture(name="module_world", scope="module")
def module_world_fixture(tmp_path_factory: pytest.TempPathFactory) -> Iterator[CleverWorld]:
    """One emulator for a whole test module (each test makes its own apps and add-ons)."""
    with open_world(tmp_path_factory.mktemp("clever-world")) as world:
        yield world


@pytest.fixture(name="dnsmasq")
def shop_dns_fixture(tmp_path: Path) -> Iterator[DnsmasqServer]:
    """A real dnsmasq on loopback where the test app's domain, www.shop.example, is a
    CNAME to the Paris zone with a TTL of 3600 s (test modules import this fixture)."""
    records = [Record("www.shop.example", "CNAME", "domain.par.clever-cloud.com", 3600)]
    try:
        with start_dnsmasq(tmp_path / "dnsmasq", records) as server:
            yield server
    except ServerNotInstalled as exc:
        pytest.skip(str(exc))
