"""FS Bucket add-ons as fsmove sees them, and ``clever://ADDON[/path]`` endpoints.

``clever://ADDON`` names an FS Bucket add-on by its id (``addon_…``), its real id
(``bucket_…``) or its name. It resolves, through ``clever addon env ADDON -F json``, to
``ftp://BUCKET_FTP_USERNAME@BUCKET_HOST/path`` with BUCKET_FTP_PASSWORD held in a
``Secret`` (never printed, never in argv, never in the journal: the journal keys jobs by
the ``ftp://user@host/path`` display form). A path after the add-on is kept.

Decisions:

- **BUCKET_HOST with a ``:port``** (``host:2121``) is taken as the FTP control port. Clever
  Cloud's buckets never carry one (plain FTP on 21, FACTS.md); honouring it lets a test
  or a self-hosted stand-in point an add-on at a local FTP server. The same value, port
  included, is what ``CC_FS_BUCKET`` mounts name, so cut-over matches hosts as strings.
- **Plain FTP**, as Clever documents for buckets (FTPS is not documented there; SFTP
  needs pinned host keys, left to an explicit ``sftp://`` URL).
- **Names** cost more than ids: the CLI's ``addon env`` takes ids only, so a name is
  looked up in ``clever addon list`` of the personal space and of every organisation
  (``clever applications list`` names them). Two add-ons with one name → usage error
  asking for the id.
- An add-on that is not an FS Bucket (its env has no BUCKET_HOST, or its provider is
  not ``fs-bucket``) is a usage error (exit 2).
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from fsmove.errors import UsageError
from fsmove.transfers.endpoint import Endpoint, Secret

if TYPE_CHECKING:  # the Clever clients: imported when a clever:// endpoint is resolved
    from .api import CleverApi
    from .clever_tool import CleverCli

SCHEME = "clever://"
FS_BUCKET_PROVIDER = "fs-bucket"
_ID = re.compile(r"^[a-z][a-z0-9-]*_[0-9a-fA-F]{8}-[0-9a-fA-F-]{27}$")


def is_clever_url(text: str) -> bool:
    return text[: len(SCHEME)].lower() == SCHEME


@dataclass(frozen=True)
class Bucket:
    """An FS Bucket add-on's FTP access, read from its env."""

    addon: str  # as the user named it
    host: str  # BUCKET_HOST exactly, ":port" included when there is one
    user: str
    password: Secret = field(repr=False)

    def endpoint(self, path: str = "/") -> Endpoint:
        host, port = split_bucket_host(self.host)
        return Endpoint(scheme="ftp", host=host, port=port, user=self.user,
                        password=self.password, path=path)


def split_bucket_host(value: str) -> tuple[str, int | None]:
    """``host`` or ``host:port`` (the module docstring says why a port is honoured)."""
    host, sep, port = value.rpartition(":")
    if sep and port.isdigit() and 0 < int(port) < 65536 and host:
        return host, int(port)
    return value, None


def parse_clever_url(text: str) -> tuple[str, str]:
    """``clever://ADDON/sub/dir`` → ("ADDON", "/sub/dir")."""
    rest = text[len(SCHEME) :]
    addon, slash, path = rest.partition("/")
    if not addon:
        raise UsageError(
            f"malformed endpoint {text!r}: write clever://ADDON (an add-on id addon_…, "
            "a real id bucket_… or a name)"
        )
    clean = "/" + path.strip("/") if path.strip("/") else "/"
    return addon, clean if slash else "/"


def looks_like_id(addon: str) -> bool:
    return bool(_ID.match(addon))


def find_addon_id(cli: CleverCli, name: str) -> dict[str, Any]:
    """The add-on (an entry of ``clever addon list``) whose name or real id is ``name``."""
    with ThreadPoolExecutor(max_workers=4) as pool:
        personal = pool.submit(cli.addon_list, None)  # meanwhile, the organisations
        orgs = [str(o["id"]) for o in cli.applications() if o.get("id")]
        listed = [personal.result(), *pool.map(cli.addon_list, orgs)]
    found = {a["addonId"]: a for lst in listed for a in lst
             if name in (a.get("name"), a.get("realId"), a.get("addonId"))}
    if not found:
        raise UsageError(
            f"no add-on named {name!r} in your personal space or organisations "
            "(`clever addon list` shows them); give its id addon_…"
        )
    if len(found) > 1:
        raise UsageError(
            f"{len(found)} add-ons are named {name!r} ({', '.join(sorted(found))}); "
            "give the id of the one you mean"
        )
    return next(iter(found.values()))


def bucket_from_env(addon: str, env: Mapping[str, str]) -> Bucket | None:
    """The bucket whose variables are ``env`` (BUCKET_HOST, BUCKET_FTP_USERNAME,
    BUCKET_FTP_PASSWORD), or None when they are not a bucket's."""
    if not env.get("BUCKET_HOST") or not env.get("BUCKET_FTP_PASSWORD"):
        return None
    return Bucket(addon=addon, host=env["BUCKET_HOST"], user=env.get("BUCKET_FTP_USERNAME", ""),
                  password=Secret(env["BUCKET_FTP_PASSWORD"]))


def _bucket_or_refusal(addon: str, env: Mapping[str, str]) -> Bucket:
    missing = [k for k in ("BUCKET_HOST", "BUCKET_FTP_USERNAME", "BUCKET_FTP_PASSWORD")
               if not env.get(k)]
    bucket = None if missing else bucket_from_env(addon, env)
    if bucket is None:
        raise not_a_bucket(addon, f"its env has no {', '.join(missing)}")
    return bucket


def read_bucket(cli: CleverCli, addon: str) -> Bucket:
    """The FTP access of the FS Bucket ``addon`` (id, real id or name), through the
    `clever` CLI (which finds the add-on's owner itself)."""
    addon_id = addon
    if not looks_like_id(addon):
        entry = find_addon_id(cli, addon)
        if entry.get("providerId") not in (None, FS_BUCKET_PROVIDER):
            raise not_a_bucket(addon, f"it is a {entry.get('type') or entry['providerId']}")
        addon_id = str(entry["addonId"])
    return _bucket_or_refusal(addon, cli.addon_env(addon_id))


def read_owned_bucket(api: CleverApi, owner: str, addon_id: str) -> Bucket:
    """The FTP access of the FS Bucket ``addon_id`` of ``owner``, read through the API in
    this process (no `clever` child): how `fsmove migrate` reads each bucket once, then
    carries it through its phases."""
    return _bucket_or_refusal(addon_id, api.addon_env(owner, addon_id))


def not_a_bucket(addon: str, why: str) -> UsageError:
    return UsageError(
        f"add-on {addon} is not an FS Bucket ({why}); give an FS Bucket add-on "
        "(`clever addon list` shows each add-on's type)"
    )


def resolve_clever_endpoint(text: str, *, cli: CleverCli | None = None) -> Endpoint:
    """``clever://ADDON[/path]`` → the bucket's ``ftp://`` endpoint with its password."""
    addon, path = parse_clever_url(text)
    if cli is None:
        from .clever_tool import CleverCli

        cli = CleverCli()
    return read_bucket(cli, addon).endpoint(path)
