"""An application as `clever applications list -F json` describes it, and its bucket mounts.

A mount is a ``CC_FS_BUCKET`` / ``CC_FS_BUCKET_<n>`` variable:
``/folder:bucket-….services.clever-cloud.com[:async]``. The host part is compared with an
add-on's BUCKET_HOST as a string, ``:port`` included (see bucket.py).
"""

from __future__ import annotations

import re
from dataclasses import dataclass

from fsmove.errors import UsageError

from .cli import CleverCli

MOUNT_VAR = re.compile(r"^CC_FS_BUCKET(?:_\d+)?$")
ASYNC_SUFFIX = ":async"


@dataclass(frozen=True)
class AppInfo:
    id: str
    name: str
    org_id: str
    zone: str
    instance_type: str  # "php", "node", "docker", ...

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


def find_app(cli: CleverCli, app: str) -> AppInfo:
    """The application whose id or name is ``app`` (usage error when none or several)."""
    matches = [
        AppInfo(id=str(a.get("app_id")), name=str(a.get("name")),
                org_id=str(a.get("org_id") or org.get("id")), zone=str(a.get("zone") or "?"),
                instance_type=str(a.get("type") or "?"))
        for org in cli.applications()
        for a in org.get("applications") or []
        if isinstance(a, dict) and app in (a.get("app_id"), a.get("name"))
    ]
    if not matches:
        raise UsageError(
            f"no application {app!r} in your organisations (`clever applications list` "
            "shows them); give its id app_… or its exact name"
        )
    if len(matches) > 1:
        raise UsageError(
            f"{len(matches)} applications are named {app!r} "
            f"({', '.join(m.id for m in matches)}); give the id of the one you mean"
        )
    return matches[0]
