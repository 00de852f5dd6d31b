"""An application wherever it lives (personal space or organisation), and its bucket mounts.

`clever applications list` lists organisations only, never the personal space, so the
app is found through the API's ``/v2/summary`` (what the CLI resolves ``--app`` against)
and read with ``GET /v2/organisations/{owner}/applications/{id}`` (the personal space's
owner id is the user's ``user_…`` id there, as in the CLI).

A mount is a ``CC_FS_BUCKET`` / ``CC_FS_BUCKET_<n>`` variable:
``/folder:bucket-….services.clever-cloud.com[:async]``. The host part is compared with an
add-on's BUCKET_HOST as a string, ``:port`` included (see bucket.py).
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Any

from fsmove.errors import UsageError

from .api import CleverApi

MOUNT_VAR = re.compile(r"^CC_FS_BUCKET(?:_\d+)?$")
ASYNC_SUFFIX = ":async"


@dataclass(frozen=True)
class AppInfo:
    id: str
    name: str
    owner_id: str  # "user_…" for the personal space, else "orga_…"
    zone: str
    instance_type: str  # "php", "node", "docker", ...
    owner_name: str = ""

    @property
    def org_id(self) -> str:
        """The owner id, as the API's /v2/organisations/{o} paths and `--org` take it
        (the personal space is the user's id there)."""
        return self.owner_id

    @property
    def is_personal(self) -> bool:
        return self.owner_id.startswith("user_")

    @property
    def owner_text(self) -> str:
        kind = "personal space" if self.is_personal else "organisation"
        return f"{kind} {self.owner_name} ({self.owner_id})" if self.owner_name else \
            f"{kind} {self.owner_id}"

    @property
    def is_php(self) -> bool:
        return self.instance_type.lower().startswith("php")


@dataclass(frozen=True)
class Mount:
    """One ``CC_FS_BUCKET*`` variable, parsed."""

    variable: str
    folder: str
    host: str
    is_async: bool

    @property
    def value(self) -> str:
        return f"{self.folder}:{self.host}{ASYNC_SUFFIX if self.is_async else ''}"

    def moved_to(self, host: str) -> Mount:
        return Mount(variable=self.variable, folder=self.folder, host=host,
                     is_async=self.is_async)


def parse_mount(variable: str, value: str) -> Mount | None:
    """``/folder:host[:async]`` → Mount; None when the value has no host part."""
    folder, sep, rest = value.strip().partition(":")
    if not sep or not rest:
        return None
    is_async = rest.endswith(ASYNC_SUFFIX)
    host = rest[: -len(ASYNC_SUFFIX)] if is_async else rest
    return Mount(variable=variable, folder=folder, host=host, is_async=is_async) if host else None


def mounts_of(env: dict[str, str]) -> list[Mount]:
    """Every bucket mount among an app's variables, in variable-name order."""
    found = [parse_mount(name, value) for name, value in sorted(env.items())
             if MOUNT_VAR.match(name)]
    return [m for m in found if m is not None]


def find_app(api: CleverApi, app: str) -> AppInfo:
    """The application whose id or name is ``app``, in the personal space or any
    organisation: ``GET /v2/summary`` (the very list the CLI resolves ``--app`` against,
    so fsmove and every `clever --app` agree), then the app itself for its zone and
    type. No owner has it, or two have that name: usage error naming them."""
    summary = api.get("/v2/summary")
    owners: list[dict[str, Any]] = []
    if isinstance(summary, dict):
        user = summary.get("user")
        owners = ([user] if isinstance(user, dict) else []) + [
            o for o in summary.get("organisations") or [] if isinstance(o, dict)]
    found = [(o, a) for o in owners for a in o.get("applications") or []
             if isinstance(a, dict) and app in (a.get("id"), a.get("name"))]
    if not found:
        raise UsageError(
            f"no application {app!r} in your personal space or your organisations; give "
            "its id app_… or its exact name"
        )
    if len(found) > 1:
        where = "; ".join(f"{a.get('id')} in {_owner_text(o)}" for o, a in found)
        raise UsageError(
            f"{len(found)} applications are named {app!r} ({where}); give the id app_… of "
            "the one you mean"
        )
    owner, entry = found[0]
    owner_id, app_id = str(owner.get("id")), str(entry.get("id"))
    data = api.application(owner_id, app_id)
    instance = data.get("instance") if isinstance(data.get("instance"), dict) else {}
    variant = instance.get("variant") if isinstance(instance.get("variant"), dict) else {}
    kind = variant.get("slug") or instance.get("type") or entry.get("variantSlug") or "?"
    return AppInfo(id=app_id, name=str(data.get("name") or entry.get("name")),
                   owner_id=owner_id, owner_name=str(owner.get("name") or ""),
                   zone=str(data.get("zone") or "?"), instance_type=str(kind))


def _owner_text(owner: dict[str, Any]) -> str:
    oid = str(owner.get("id"))
    kind = "personal space" if oid.startswith("user_") else "organisation"
    return f"{kind} {owner.get('name') or oid} ({oid})"
