"""What every step of a PHP app's re-creation (fsmove/clever/php.py) shares: the request,
the run's journal and the old app as surveyed, and small helpers."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from fsmove.clever import php_state
from fsmove.clever.api import CleverApi
from fsmove.clever.clever_tool import CleverCli
from fsmove.clever.php_state import PhpState
from fsmove.clever.php_survey import OldApp
from fsmove.endpoint_access import ConnectOptions
from fsmove.errors import UsageError
from fsmove.transfers.copy import CopyOptions

#: How long a rerun waits for a deployment it finds still running, and how often it looks.
DEPLOY_WAIT = 1800.0
DEPLOY_POLL = 5.0
#: How long the new FTP app's own bucket may take to appear after the creation.
BUCKET_WAIT = 60.0
BUCKET_POLL = 2.0
SECRET_WORDS = ("PASSWORD", "SECRET", "TOKEN", "KEY", "PASS", "CREDENTIAL")
FINAL_FAILURES = ("FAIL", "FAILED", "CANCELLED", "CANCELED", "ERROR")


@dataclass(frozen=True)
class PhpMigrationRequest:
    app: str  # as the user spelled it: a name or app_…
    zone: str
    yes: bool = False
    dry_run: bool = False
    #: The owner id when the caller already resolved the app (else looked up).
    owner: str | None = None
    connect: ConnectOptions = field(default_factory=ConnectOptions)
    quiet: bool = False
    #: The copy options of `fsmove migrate`'s flags (fsmove/commands/options.py builds
    #: them once): the code copy and the catch-up use them, ``delete`` turned on.
    copy: CopyOptions = field(default_factory=CopyOptions)
    src_connections: int | None = None
    dst_connections: int | None = None


def is_secret_name(name: str) -> bool:
    return any(word in name.upper() for word in SECRET_WORDS)


def deployment_id(d: dict[str, Any]) -> str:
    return str(d.get("uuid") or d.get("id"))


def deployment_state(d: dict[str, Any]) -> str:
    return str(d.get("state") or "").upper()


class PhpRun:
    """One re-creation: the request, the API and CLI, the journal."""

    def __init__(self, req: PhpMigrationRequest, api: CleverApi, cli: CleverCli,
                 say: Callable[[str], None]) -> None:
        self.req, self.api, self.cli, self.say = req, api, cli, say
        self.zone = req.zone.strip().lower()
        if not self.zone or not self.zone.isalnum():
            raise UsageError(f"--to {req.zone!r}: give a zone name like par, mtl, rbx")
        self.path: Path | None = None
        self.lock_path: Path | None = None  # statefile.app_lock, held while it runs
        self.state: PhpState | None = None
        self.old: OldApp | None = None

    def _save(self, state: PhpState) -> None:
        self.state = state
        if not self.req.dry_run and self.path is not None:
            php_state.save(self.path, state)

    def _snapshot_path(self) -> Path:
        """The catch-up's reference, saved by the code copy."""
        return php_state.snapshot_path(self.st.old_app, self.st.zone)

    @property
    def st(self) -> PhpState:
        assert self.state is not None
        return self.state

    @property
    def new_app(self) -> str:
        """The new app's id (a placeholder in a dry run before it exists)."""
        return self.st.new_app or "<new app>"

    @property
    def owner(self) -> str:
        return self.st.owner
