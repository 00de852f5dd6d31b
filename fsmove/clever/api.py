"""Signed requests to the Clever Cloud API, made in this process.

For the few calls clever-tools 4.11 has no command for: moving an application to another
zone (``PUT /v2/organisations/{owner}/applications/{app}`` with ``{"zone": …}``, the
console's Information pane → Zone → Save) and creating an FTP-deployed application
(``POST /v2/organisations/{owner}/applications`` with ``"deploy": "ftp"``).

Why not ``clever curl``: it spawns the system ``curl`` with the ``Authorization`` header
on curl's command line, so the user's token and the signature that carries the secret are
visible to every local user in ``ps``; it also exits 0 whatever the HTTP status.

**The credentials and the signature are exactly the CLI's** (read in clever-tools 4.11,
``src/config/config.js`` and ``@clevercloud/client``'s ``oauth.js``), so whatever the CLI
can do, this can:

- token and secret: ``CLEVER_TOKEN`` and ``CLEVER_SECRET`` when both are set; else the
  first profile of the CLI's config file (``clever login`` writes it), the file being
  ``$CONFIGURATION_FILE``, else ``$XDG_CONFIG_HOME/clever-cloud/clever-tools.json``
  (``~/.config`` when unset); its current form ``{"version": 1, "profiles": [{token,
  secret, overrides?}]}`` and the legacy ``{"token", "secret"}`` are both read;
- ``API_HOST``, ``OAUTH_CONSUMER_KEY``, ``OAUTH_CONSUMER_SECRET``: the environment, else
  the active profile's ``overrides``, else the CLI's defaults (the consumer pair is
  public: clever-tools ships it in its source);
- OAuth 1.0a, signature method **PLAINTEXT** (the CLI's: ``consumer_secret&token_secret``),
  in the ``Authorization`` header, signed by ``oauthlib`` (never by hand). oauthlib adds
  the optional nonce, timestamp, version and, for a JSON body, ``oauth_body_hash``.
  PLAINTEXT relies on TLS: the default API_HOST is https; an ``http://`` API_HOST that is
  not a loopback address gets a warning (the CLI would send the same header in clear).

Errors are one line: ``CleverAuthError`` (exit 5) for a 401/403 or missing credentials,
``CleverError`` (exit 1) with the HTTP status and the API's own message otherwise, or
what went wrong on the way (unreachable, timeout). Neither the token nor the secret is
ever in an argv, a log line or an exception: error texts are scrubbed of both.
"""

from __future__ import annotations

import ipaddress
import json
import os
import sys
import urllib.error
import urllib.parse
import urllib.request
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from oauthlib.oauth1 import SIGNATURE_PLAINTEXT, SIGNATURE_TYPE_AUTH_HEADER, Client

from fsmove.errors import UsageError

from .clever_tool import LOGIN_HINT, CleverAuthError, CleverError, scrub

DEFAULT_API_HOST = "https://api.clever-cloud.com"
# clever-tools 4.11 src/config/config.js: "The disclosure of these tokens is not
# considered as a vulnerability." They identify the CLI as an OAuth consumer.
CLI_CONSUMER_KEY = "T5nFjKeHH4AIlEveuGhB5S3xg8T19e"
CLI_CONSUMER_SECRET = "MgVMqTr6fWlf2M0tkC2MXOnhfqBWDT"
DEFAULT_TIMEOUT = 60.0
#: The console step to do by hand when the API refuses to move an application.
CONSOLE_ZONE_STEP = ("in the Console: the application's Information pane, Zone, Save; "
                     "then rerun")


@dataclass(frozen=True)
class Credentials:
    """What signs a request. ``repr`` shows neither the token nor either secret."""

    token: str = field(repr=False)
    secret: str = field(repr=False)
    consumer_key: str = CLI_CONSUMER_KEY
    consumer_secret: str = field(default=CLI_CONSUMER_SECRET, repr=False)
    #: Where they came from ("CLEVER_TOKEN/CLEVER_SECRET" or the config file's path).
    source: str = ""


def config_file_path(env: Mapping[str, str]) -> Path:
    """The CLI's config file: $CONFIGURATION_FILE, else $XDG_CONFIG_HOME (or ~/.config)
    /clever-cloud/clever-tools.json (clever-tools src/config/paths.js, the xdg package)."""
    named = env.get("CONFIGURATION_FILE")
    if named:
        return Path(named)
    base = env.get("XDG_CONFIG_HOME") or str(Path(env.get("HOME") or Path.home()) / ".config")
    return Path(base) / "clever-cloud" / "clever-tools.json"


def _active_profile(path: Path) -> dict[str, Any] | None:
    """The first profile of the CLI's config file (its active one), or None."""
    try:
        data = json.loads(path.read_text())
    except FileNotFoundError:
        return None
    except (OSError, ValueError) as exc:
        raise CleverAuthError(
            f"cannot read the clever-tools configuration {path} "
            f"({exc.__class__.__name__}); {LOGIN_HINT}"
        ) from None
    if not isinstance(data, dict):
        return None
    profiles = data.get("profiles")
    if data.get("version") == 1 and isinstance(profiles, list):
        first = profiles[0] if profiles else None
        return first if isinstance(first, dict) else None
    if isinstance(data.get("token"), str) and isinstance(data.get("secret"), str):
        return data  # the legacy form {"token", "secret", "expirationDate"?}
    return None


def _is_loopback(host: str) -> bool:
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


def _message_of(body: bytes) -> str:
    """The API's own message in an error body ({"message": …}), else its first line."""
    text = body.decode("utf-8", "replace").strip()
    try:
        data = json.loads(text)
    except ValueError:
        return text.splitlines()[0][:200] if text else "no message"
    if isinstance(data, dict) and data.get("message"):
        return str(data["message"]).splitlines()[0][:200]
    return text.splitlines()[0][:200] if text else "no message"


class CleverApi:
    """Signed JSON requests to the Clever Cloud API."""

    def __init__(self, api_host: str, credentials: Credentials, *,
                 timeout: float = DEFAULT_TIMEOUT) -> None:
        parsed = urllib.parse.urlsplit(api_host)
        if parsed.scheme not in ("http", "https") or not parsed.hostname:
            raise UsageError(f"API_HOST={api_host!r} is not an http(s) URL")
        self.api_host = api_host.rstrip("/")
        self.timeout = timeout
        self._credentials = credentials
        self._client = Client(
            credentials.consumer_key,
            client_secret=credentials.consumer_secret,
            resource_owner_key=credentials.token,
            resource_owner_secret=credentials.secret,
            signature_method=SIGNATURE_PLAINTEXT,
            signature_type=SIGNATURE_TYPE_AUTH_HEADER,
        )
        self._secrets = [credentials.token, credentials.secret, credentials.consumer_secret]
        if parsed.scheme == "http" and not _is_loopback(parsed.hostname):
            print(f"fsmove: warning: API_HOST {self.api_host} is plain http: the Clever "
                  "Cloud credentials cross the network unencrypted", file=sys.stderr)

    @classmethod
    def from_cli_environment(cls, env: Mapping[str, str] | None = None, *,
                             timeout: float = DEFAULT_TIMEOUT) -> CleverApi:
        """The API host and credentials the `clever` CLI itself would use (see the module
        docstring for the order); ``CleverAuthError`` (exit 5) when there are none."""
        env = os.environ if env is None else env
        token, secret = env.get("CLEVER_TOKEN"), env.get("CLEVER_SECRET")
        overrides: dict[str, Any] = {}
        if token is not None and secret is not None:
            # Both set: the CLI's "$env" profile, whatever the config file says.
            if not token or not secret:
                raise CleverAuthError(f"CLEVER_TOKEN or CLEVER_SECRET is empty; {LOGIN_HINT}")
            source = "CLEVER_TOKEN/CLEVER_SECRET"
        else:
            path = config_file_path(env)
            profile = _active_profile(path)
            if profile is None or not profile.get("token") or not profile.get("secret"):
                raise CleverAuthError(f"no Clever Cloud credentials (neither CLEVER_TOKEN "
                                      f"and CLEVER_SECRET nor a login in {path}); {LOGIN_HINT}")
            token, secret = str(profile["token"]), str(profile["secret"])
            found = profile.get("overrides")
            overrides = found if isinstance(found, dict) else {}
            source = str(path)

        def setting(name: str, default: str) -> str:
            return env.get(name) or str(overrides.get(name) or "") or default

        credentials = Credentials(
            token=token, secret=secret,
            consumer_key=setting("OAUTH_CONSUMER_KEY", CLI_CONSUMER_KEY),
            consumer_secret=setting("OAUTH_CONSUMER_SECRET", CLI_CONSUMER_SECRET),
            source=source,
        )
        return cls(setting("API_HOST", DEFAULT_API_HOST), credentials, timeout=timeout)

    # -- requests ----------------------------------------------------------------------
    def request(self, method: str, path: str, *, json_body: Any = None) -> Any:
        """``method path`` with ``json_body`` (JSON-encoded when not None); the answer's
        JSON (None when empty). ``path`` starts with "/" (ids in it: see ``segment``)."""
        if not path.startswith("/"):
            raise ValueError(f"an API path starts with '/': {path!r}")
        method = method.upper()
        url = self.api_host + path
        what = f"{method} {path}"
        body = None if json_body is None else json.dumps(json_body)
        headers = {"Accept": "application/json"}
        if body is not None:
            headers["Content-Type"] = "application/json"
        try:
            _uri, signed_headers, _body = self._client.sign(url, http_method=method,
                                                            body=body, headers=headers)
        except ValueError as exc:  # oauthlib's own complaint names no secret, but be sure
            raise CleverError(f"cannot sign {what}: {scrub(str(exc), self._secrets)}") from None
        req = urllib.request.Request(url, data=None if body is None else body.encode(),
                                     headers=dict(signed_headers), method=method)
        try:
            with urllib.request.urlopen(req, timeout=self.timeout) as resp:
                raw = resp.read()
        except urllib.error.HTTPError as exc:
            status = exc.code
            message = scrub(_message_of(exc.read() or b""), self._secrets)
            exc.close()
            if status in (401, 403):
                raise CleverAuthError(
                    f"the Clever Cloud API refused {what} (HTTP {status}: {message}); "
                    f"{LOGIN_HINT}") from None
            raise CleverError(f"the Clever Cloud API answered {what} with HTTP {status}: "
                              f"{message}") from None
        except (urllib.error.URLError, OSError) as exc:
            reason = getattr(exc, "reason", exc)
            if isinstance(reason, TimeoutError):  # while connecting (URLError) or reading
                raise CleverError(f"{what}: the Clever Cloud API at {self.api_host} did not "
                                  f"answer within {self.timeout:.0f} s; rerun") from None
            raise CleverError(
                f"{what}: the Clever Cloud API at {self.api_host} cannot be reached "
                f"({scrub(str(reason), self._secrets)}): check the network, a proxy, or "
                "API_HOST, then rerun") from None
        if not raw.strip():
            return None
        try:
            return json.loads(raw)
        except ValueError:
            raise CleverError(f"the Clever Cloud API answered {what} with no JSON") from None

    def get(self, path: str) -> Any:
        return self.request("GET", path)

    # -- the calls fsmove needs ---------------------------------------------------------
    def application_path(self, owner: str, app_id: str) -> str:
        return f"/v2/organisations/{segment(owner)}/applications/{segment(app_id)}"

    def application(self, owner: str, app_id: str) -> dict[str, Any]:
        data = self.get(self.application_path(owner, app_id))
        if not isinstance(data, dict):
            raise CleverError(f"the Clever Cloud API described application {app_id} "
                              "with no JSON object")
        return data

    def owner_of_app(self, app: str) -> str:
        """The owner id (``user_…`` for the personal space, else ``orga_…``) of the
        application whose id or name is ``app``: see ``locate_app``."""
        return self.locate_app(app)[0]

    def locate_app(self, app: str) -> tuple[str, str]:
        """(owner id, application id) of the application whose id or name is ``app``,
        from ``GET /v2/summary`` (what the CLI resolves ``--app`` against too). Usage
        error when no owner has it, or two have that name."""
        summary = self.get("/v2/summary")
        owners: list[dict[str, Any]] = []
        if isinstance(summary, dict):
            user = summary.get("user")
            owners = ([user] if isinstance(user, dict) else []) + [
                o for o in summary.get("organisations") or [] if isinstance(o, dict)]
        found = [(str(o.get("id")), str(o.get("name") or o.get("id")), str(a.get("id")))
                 for o in owners for a in o.get("applications") or []
                 if isinstance(a, dict) and app in (a.get("id"), a.get("name"))]
        if not found:
            raise UsageError(f"no application {app!r} in your personal space or your "
                             "organisations; give its id app_… or its exact name")
        if len(found) > 1:
            raise UsageError(f"{len(found)} applications are named {app!r} "
                             f"({'; '.join(f'{aid} in {name} ({oid})' for oid, name, aid in found)}"
                             "); give the id app_… of the one you mean")
        return found[0][0], found[0][2]

    def addon_env(self, owner: str, addon_id: str) -> dict[str, str]:
        """``GET /v2/organisations/{owner}/addons/{addon}/env``: the add-on's variables,
        what `clever addon env` prints, read in this process (milliseconds, where a
        `clever` child costs a Node start)."""
        path = f"/v2/organisations/{segment(owner)}/addons/{segment(addon_id)}/env"
        data = self.get(path)
        if not isinstance(data, list):
            raise CleverError(f"the Clever Cloud API answered GET {path} with no list")
        return {str(p["name"]): str(p.get("value", "")) for p in data
                if isinstance(p, dict) and "name" in p}

    def create_application(self, owner: str, body: Mapping[str, Any]) -> dict[str, Any]:
        """``POST /v2/organisations/{owner}/applications``: the new application."""
        data = self.request("POST", f"/v2/organisations/{segment(owner)}/applications",
                            json_body=dict(body))
        if not isinstance(data, dict) or not data.get("id"):
            raise CleverError("the Clever Cloud API created an application but did not "
                              "describe it; look for it in the Console before rerunning")
        return data

    def move_application(self, owner: str, app_id: str, zone: str) -> dict[str, Any]:
        """Move the application to ``zone``: the PUT of ``{"zone": zone}`` (the console's
        Save), then the application read back, which must say ``zone``. Nothing is
        deployed: the next deployment runs in the new zone. Raises (one line naming the
        console step) when the API refuses or the zone did not change."""
        path = self.application_path(owner, app_id)
        try:
            self.request("PUT", path, json_body={"zone": zone})
        except CleverAuthError:
            raise
        except CleverError as exc:
            raise CleverError(f"{exc}; the application was not moved to {zone}: move it "
                              f"{CONSOLE_ZONE_STEP}") from None
        app = self.application(owner, app_id)
        if app.get("zone") != zone:
            raise CleverError(
                f"the Clever Cloud API accepted the move of {app_id} to {zone} but the "
                f"application is still in {app.get('zone')!r}: move it {CONSOLE_ZONE_STEP}")
        return app


def segment(value: str) -> str:
    """One path segment (an owner or application id, a domain): percent-encoded."""
    return urllib.parse.quote(value, safe="")
