"""Other apps of the owner that use a bucket a migration moves.

A bucket is shared when another app of the same owner links it (``GET
/v2/organisations/{owner}/addons/{addon}/applications``, what the Console's "linked
applications" shows) or mounts its host in one of its ``CC_FS_BUCKET*`` variables
(``GET …/applications/{app}/env`` for each of the owner's other apps: a mount needs no
link). Both are read through the API in this process, at once: an owner with dozens of
apps costs dozens of small requests, not a `clever` child each.

Why it matters: fsmove moves one app. Another app that shares the bucket keeps the old
one, so from the switch on the two apps write to two buckets and no longer see each
other's files (a web app and its worker sharing uploads, say). Before session 35 a
migration went ahead without a word; now ``fsmove migrate`` refuses before any change
and names the other apps, unless ``--split-shared`` says the split is wanted.

What cannot be read (an API error on one app, its variables refused) stops a migration
before the switch as a use does, unless ``--split-shared`` (then a warning): until
session 36 it was a warning promising a check at the next run, and the same run went on
to the switch, another app left on the old bucket. ``fsmove plan`` warns.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any

from . import children
from .api import CleverApi, segment
from .app import mounts_of
from .clever_tool import LOGIN_HINT


@dataclass(frozen=True)
class SharedUse:
    """Another app that uses one of the moved buckets."""

    bucket_name: str
    app_id: str
    app_name: str
    how: str  # "linked", or the variables that mount it ("CC_FS_BUCKET_1")
    bucket_id: str = ""


@dataclass(frozen=True)
class MovedBucket:
    addon_id: str
    name: str
    host: str


def host_key(host: str) -> str:
    """A bucket host as compared: case, spaces, a trailing dot and FTP's default port
    left out (``BUCKET_HOST`` and a variable written by hand may spell one host two
    ways: an exact match missed a worker mounting ``/d:BUCKET-….COM``, session 35)."""
    name = host.strip().lower()
    if name.endswith(":21"):
        name = name[:-3]
    return name.rstrip(".")


def _list(data: Any) -> list[dict[str, Any]]:
    return [x for x in data if isinstance(x, dict)] if isinstance(data, list) else []


def other_uses(api: CleverApi, owner: str, app_id: str,
               buckets: Sequence[MovedBucket]) -> tuple[list[SharedUse], list[str]]:
    """Every other app of ``owner`` that links or mounts one of ``buckets``, and a
    warning for each thing that could not be read."""
    if not buckets:
        return [], []
    warnings: list[str] = []
    org = f"/v2/organisations/{segment(owner)}"

    def read(path: str, what: Callable[[], str]) -> Any:
        try:
            return api.get(path)
        except Exception as exc:  # any failure is a warning (the docstring says why)
            # A refusal of one app's variables is that app's rights, not a login to
            # redo: the login hint is left out.
            why = " ".join(str(exc).split()).removesuffix(f"; {LOGIN_HINT}") \
                or type(exc).__name__
            warnings.append(f"could not read {what()} ({why})")
            return None

    found = children.parallel(
        [lambda b=b: read(f"{org}/addons/{segment(b.addon_id)}/applications",
                          lambda: f"the apps linked to {b.name}") for b in buckets]
        + [lambda: read(f"{org}/applications", lambda: "the owner's applications")])
    linked, apps = found[:-1], _list(found[-1])
    names = {str(a.get("id")): str(a.get("name") or a.get("id")) for a in apps}
    uses: dict[tuple[str, str], list[str]] = {}
    for bucket, answer in zip(buckets, linked, strict=True):
        for other in _list(answer):
            other_id = str(other.get("id"))
            if other_id and other_id != app_id:
                names.setdefault(other_id, str(other.get("name") or other_id))
                uses.setdefault((bucket.addon_id, other_id), []).append("linked")
    others = [i for i in names if i != app_id]
    envs = children.parallel([
        lambda i=i: read(f"{org}/applications/{segment(i)}/env",
                         lambda: f"the variables of {names[i]} ({i})")
        for i in others])
    by_host = {host_key(b.host): b for b in buckets}
    for other_id, env in zip(others, envs, strict=True):
        values = {str(v.get("name")): str(v.get("value", "")) for v in _list(env)}
        for mount in mounts_of(values):
            bucket = by_host.get(host_key(mount.host))
            if bucket is not None:
                uses.setdefault((bucket.addon_id, other_id), []).append(mount.variable)
    by_id = {b.addon_id: b for b in buckets}
    result = [SharedUse(bucket_name=by_id[bid].name, app_id=oid, app_name=names[oid],
                        how=", ".join(dict.fromkeys(hows)), bucket_id=bid)
              for (bid, oid), hows in sorted(uses.items(),
                                             key=lambda kv: (by_id[kv[0][0]].name,
                                                             names[kv[0][1]]))]
    return result, warnings


def describe(uses: Sequence[SharedUse]) -> str:
    """``uploads: worker (app_…, linked), cron (app_…, CC_FS_BUCKET_1)``, bucket by
    bucket."""
    parts: dict[str, list[str]] = {}
    for u in uses:
        parts.setdefault(u.bucket_name, []).append(f"{u.app_name} ({u.app_id}, {u.how})")
    return "; ".join(f"{bucket}: {', '.join(apps)}" for bucket, apps in parts.items())
