"""A small typed wrapper over Clever Cloud's own CLI, `clever` (npm clever-tools >= 4.11).

Every call is one child process:

- the executable is ``$FSMOVE_CLEVER`` when set, else ``clever`` on PATH;
- stdin is closed (``/dev/null``): a prompt can never hang a run, it fails instead;
- ``-F json`` is passed to every command that has it, ``--app`` to every command about
  an application, ``--yes`` to every command that would ask for a confirmation (none of
  those fsmove runs asks; the ``addon create`` command the plan prints carries it);
- ``NO_UPDATE_NOTIFIER=1``: the CLI would otherwise ask the internet for a newer version;
- a timeout (default 120 s) ends it;
- a failure becomes one line: "not logged in" (the CLI's answer to a missing login *and*
  to an API 401) is ``CleverAuthError`` (exit 5); anything else is ``CleverError``
  (exit 1) carrying the CLI's own first error line, with every secret scrubbed.

Secrets never go into a child's argv: the CLI takes its credentials from CLEVER_TOKEN /
CLEVER_SECRET in the environment (inherited) or from its own config file, and no command
fsmove runs has a secret argument (a bucket mount value like ``/data:bucket-….com`` is
not one).

``dry_run=True`` runs the read-only commands (a plan needs their answers) but only
records and prints the commands that change something; ``recorded`` lists them.
"""

from __future__ import annotations

import json
import os
import re
import shlex
import shutil
import subprocess
import sys
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Any

from fsmove.errors import ConfigError, FsmoveError

from . import children

EXECUTABLE_ENV = "FSMOVE_CLEVER"
DEFAULT_TIMEOUT = 120.0
INSTALL_HINT = (
    "install clever-tools (`npm install -g clever-tools`, it needs Node >= 22) or set "
    f"{EXECUTABLE_ENV} to the path of its `clever` executable"
)
LOGIN_HINT = "run `clever login` or set CLEVER_TOKEN and CLEVER_SECRET"
_NOT_LOGGED_IN = re.compile(r"not logged in|\bunauthori[sz]ed\b", re.IGNORECASE)
#: Shapes of secrets the CLI could echo in an error: KEY=value / "KEY": "value" pairs
#: whose key names a password, token or secret, and OAuth header fields.
_SECRET_PAIR = re.compile(
    r"""((?:PASSWORD|SECRET|TOKEN)[A-Z_]*["']?\s*[=:]\s*["']?)[^\s"',}]+""", re.IGNORECASE
)
_FSMOVE_PASSWORD = re.compile(r"^FSMOVE_[A-Z]+_PASSWORD$")
_OAUTH_FIELD = re.compile(r'(oauth_(?:token|signature|consumer_key)=")[^"]*', re.IGNORECASE)


class CleverError(FsmoveError):
    """The `clever` CLI failed (API error, unknown app or add-on, timeout): exit 1."""


class CleverAuthError(ConfigError):
    """The `clever` CLI is not logged in, or the API refused its credentials: exit 5."""


class CleverNotInstalled(ConfigError):
    """No `clever` executable: exit 5."""


@dataclass(frozen=True)
class CleverCommand:
    """One `clever` command line (never holding a secret) and whether it changes state."""

    args: tuple[str, ...]
    mutating: bool

    @property
    def display(self) -> str:
        return shlex.join(["clever", *self.args])


def find_executable() -> str:
    """``$FSMOVE_CLEVER`` or `clever` on PATH; ``CleverNotInstalled`` when neither exists."""
    named = os.environ.get(EXECUTABLE_ENV)
    if named:
        found = shutil.which(named)
        if found is None:
            raise CleverNotInstalled(
                f"{EXECUTABLE_ENV}={named} is not an executable file: {INSTALL_HINT}"
            )
        return found
    found = shutil.which("clever")
    if found is None:
        raise CleverNotInstalled(f"the `clever` command is not on PATH: {INSTALL_HINT}")
    return found


#: What Node's fetch says when the API cannot be reached at all.
_UNREACHABLE = re.compile(
    r"fetch failed|ECONNREFUSED|ENOTFOUND|EAI_AGAIN|ETIMEDOUT|ECONNRESET", re.IGNORECASE
)


def scrub(text: str, secrets: Sequence[str] = ()) -> str:
    """``text`` with every known secret value and every secret-looking pair masked.

    A value of 6 characters or more is masked wherever it appears; a shorter one (no
    real token is that short, but a test or a typo may be) only as a whole word, so
    that a secret "a" does not turn "failed" into "f***iled"."""
    for value in sorted((s for s in secrets if s), key=len, reverse=True):
        if len(value) >= 6:
            text = text.replace(value, "***")
        else:
            text = re.sub(rf"(?<![\w]){re.escape(value)}(?![\w])", "***", text)
    text = _SECRET_PAIR.sub(r"\1***", text)
    return _OAUTH_FIELD.sub(r"\1***", text)


def _error_line(stderr: str, stdout: str) -> str:
    """The CLI's own first error line ("[ERROR] …" without the tag), else its last words."""
    lines = [line.strip() for line in stderr.splitlines() if line.strip()]
    for line in lines:
        if line.startswith("[ERROR]"):
            return line[len("[ERROR]") :].strip()
    tail = lines or [line.strip() for line in stdout.splitlines() if line.strip()]
    return tail[0] if tail else "no error message"


@dataclass(frozen=True)
class AppEnv:
    """An application's variables: its own, and its linked add-ons' (no secrets kept)."""

    own: dict[str, str]
    addons: dict[str, dict[str, str]]
    #: Per linked add-on, its variables whose names say password/secret/token/key: kept
    #: in memory only (a linked bucket's FTP password spares an `addon env` call).
    addon_secrets: dict[str, dict[str, str]] = field(default_factory=dict, repr=False)


@dataclass(frozen=True)
class Domain:
    hostname: str  # "www.example.org"
    path_prefix: str  # "/" unless the domain routes a path prefix to the app
    is_apex: bool  # a zone apex cannot hold a CNAME

    @property
    def display(self) -> str:
        return self.hostname + (self.path_prefix if self.path_prefix != "/" else "")


def _is_secret_name(name: str) -> bool:
    upper = name.upper()
    return any(word in upper for word in ("PASSWORD", "SECRET", "TOKEN", "KEY"))


def _pairs(items: Any) -> dict[str, str]:
    """``[{"name": …, "value": …}, …]`` → a dict."""
    if not isinstance(items, list):
        return {}
    return {str(p["name"]): str(p.get("value", "")) for p in items
            if isinstance(p, dict) and "name" in p}


class CleverCli:
    """Runs `clever` commands; the typed methods below are the ones fsmove needs."""

    def __init__(
        self,
        *,
        executable: str | None = None,
        timeout: float = DEFAULT_TIMEOUT,
        dry_run: bool = False,
        echo: Callable[[str], None] | None = None,
    ) -> None:
        self._executable = executable
        self.timeout = timeout
        self.dry_run = dry_run
        self._echo = echo or (lambda line: print(line, file=sys.stdout, flush=True))
        #: The mutating commands a dry run did not run, in order.
        self.recorded: list[CleverCommand] = []
        #: Values to mask in any error (e.g. bucket passwords read through this wrapper).
        self._secrets: list[str] = [
            v for v in (os.environ.get("CLEVER_TOKEN"), os.environ.get("CLEVER_SECRET")) if v
        ]

    @property
    def executable(self) -> str:
        if self._executable is None:
            self._executable = find_executable()
        return self._executable

    def remember_secret(self, value: str) -> None:
        if value:
            self._secrets.append(value)

    # -- running ----------------------------------------------------------------------
    def run(self, command: CleverCommand, *, parse_json: bool, input_text: str | None = None,
            cwd: str | None = None) -> Any:
        """Run ``command``; its stdout parsed as JSON when ``parse_json``, else the text.

        ``input_text`` is its stdin (else stdin is /dev/null): how a secret reaches the
        CLI without being in its argv (`clever env import`). ``cwd``: its working folder
        (`clever create` writes .clever.json there).
        In a dry run a mutating command is printed and recorded instead, and gives None.
        """
        if command.mutating and self.dry_run:
            self.recorded.append(command)
            self._echo(f"would run: {command.display}")
            return None
        executable = self.executable
        # The CLI needs CLEVER_TOKEN/CLEVER_SECRET (or its config); it never needs fsmove's
        # own bucket passwords, so they stay out of its environment.
        env = {k: v for k, v in os.environ.items() if not _FSMOVE_PASSWORD.match(k)}
        env["NO_UPDATE_NOTIFIER"] = "1"
        try:
            proc = children.run([executable, *command.args], env=env, timeout=self.timeout,
                                input_text=input_text, cwd=cwd)
        except subprocess.TimeoutExpired:
            raise CleverError(
                f"`{command.display}` did not finish within {self.timeout:.0f} s; check the "
                "network or the Clever Cloud status page, then rerun"
            ) from None
        except OSError as exc:
            raise CleverNotInstalled(
                f"cannot run {executable}: {exc.strerror or exc}; {INSTALL_HINT}"
            ) from None
        if proc.returncode != 0:
            line = scrub(_error_line(proc.stderr, proc.stdout), self._secrets)
            if _NOT_LOGGED_IN.search(line):
                raise CleverAuthError(
                    f"`{command.display}`: Clever Cloud refused the request ({line}); "
                    f"{LOGIN_HINT}"
                )
            if _UNREACHABLE.search(line):
                api = os.environ.get("API_HOST") or "https://api.clever-cloud.com"
                raise CleverError(
                    f"`{command.display}` failed: {line} (the Clever Cloud API at {api} "
                    "cannot be reached: check the network, a proxy, or API_HOST, then rerun)"
                )
            raise CleverError(f"`{command.display}` failed: {line}")
        if not parse_json:
            return proc.stdout
        try:
            return json.loads(proc.stdout)
        except json.JSONDecodeError:
            raise CleverError(
                f"`{command.display}` did not print JSON (is `clever` clever-tools >= 4.11? "
                f"`clever version` tells)"
            ) from None

    def _read(self, *args: str) -> Any:
        return self.run(CleverCommand((*args, "-F", "json"), mutating=False), parse_json=True)

    def _change(self, *args: str) -> None:
        self.run(CleverCommand(tuple(args), mutating=True), parse_json=False)

    # -- read-only --------------------------------------------------------------------
    def addon_env(self, addon: str) -> dict[str, str]:
        """``clever addon env ADDON -F json``: the add-on's variables (ADDON: id or real id)."""
        data = self._read("addon", "env", addon)
        if not isinstance(data, dict):
            raise CleverError(f"`clever addon env {addon}` printed no JSON object")
        env = {str(k): str(v) for k, v in data.items()}
        for key, value in env.items():
            if _is_secret_name(key):
                self.remember_secret(value)
        return env

    def addon_list(self, org: str | None = None) -> list[dict[str, Any]]:
        """``clever addon list [--org ORG] -F json``: the owner's add-ons."""
        data = self._read("addon", "list", *(("--org", org) if org else ()))
        return [d for d in data if isinstance(d, dict)] if isinstance(data, list) else []

    def applications(self) -> list[dict[str, Any]]:
        """``clever applications list -F json``: organisations, each with its applications."""
        data = self._read("applications", "list")
        return [d for d in data if isinstance(d, dict)] if isinstance(data, list) else []

    def linked_addons(self, app: str) -> list[dict[str, Any]]:
        """``clever service --app APP --only-addons -F json``: add-ons linked to APP."""
        data = self._read("service", "--app", app, "--only-addons")
        addons = data.get("addons", []) if isinstance(data, dict) else []
        return [d for d in addons if isinstance(d, dict)]

    def app_env(self, app: str) -> AppEnv:
        """``clever env --app APP -F json``: the app's own variables and, per linked
        add-on, the add-on's variables minus passwords and secrets."""
        data = self._read("env", "--app", app)
        if not isinstance(data, dict):
            raise CleverError(f"`clever env --app {app}` printed no JSON object")
        own = _pairs(data.get("env"))
        addons: dict[str, dict[str, str]] = {}
        secrets: dict[str, dict[str, str]] = {}
        for entry in data.get("fromAddons") or []:
            if not isinstance(entry, dict) or not entry.get("addonId"):
                continue
            env = _pairs(entry.get("env"))
            for key, value in env.items():
                if _is_secret_name(key):
                    self.remember_secret(value)
            addons[str(entry["addonId"])] = {
                k: v for k, v in env.items() if not _is_secret_name(k)
            }
            secrets[str(entry["addonId"])] = {
                k: v for k, v in env.items() if _is_secret_name(k)
            }
        return AppEnv(own=own, addons=addons, addon_secrets=secrets)

    def domains(self, app: str) -> list[Domain]:
        """``clever domain --app APP -F json``: the app's domains."""
        data = self._read("domain", "--app", app)
        if not isinstance(data, list):
            return []
        return [
            Domain(hostname=str(d.get("hostname") or d.get("domainWithPathPrefix")),
                   path_prefix=str(d.get("pathPrefix") or "/"), is_apex=bool(d.get("isApex")))
            for d in data if isinstance(d, dict)
        ]

    # -- changes ----------------------------------------------------------------------
    def link_addon(self, app: str, addon: str) -> None:
        self._change("service", "link-addon", addon, "--app", app)

    def unlink_addon(self, app: str, addon: str) -> None:
        self._change("service", "unlink-addon", addon, "--app", app)

    def env_set(self, app: str, name: str, value: str) -> None:
        """Set one variable (``value`` must not be a secret: it is in the CLI's argv)."""
        self._change("env", "set", name, value, "--app", app)

    def addon_create_fs_bucket(self, name: str, *, zone: str, plan: str,
                               owner: str) -> dict[str, Any] | None:
        """``clever addon create fs-bucket NAME --region ZONE --plan PLAN --org OWNER --yes
        -F json``: ``{id, realId, name, env}`` (None in a dry run). OWNER may be a
        ``user_…`` id: the CLI then creates it in that personal space."""
        command = CleverCommand(("addon", "create", "fs-bucket", name, "--region", zone,
                                 "--plan", plan, "--org", owner, "--yes", "-F", "json"),
                                mutating=True)
        data = self.run(command, parse_json=True)
        if data is None:
            return None
        if not isinstance(data, dict) or not data.get("id"):
            raise CleverError(f"`{command.display}` printed no add-on; look for {name} in "
                              "`clever addon list` before rerunning")
        for pair in data.get("env") or []:
            if isinstance(pair, dict) and _is_secret_name(str(pair.get("name", ""))):
                self.remember_secret(str(pair.get("value", "")))
        return data

    def restart(self, app: str) -> None:
        """``clever restart --app APP -q``: redeploys the app (there is no "redeploy")."""
        self._change("restart", "--app", app, "-q")
