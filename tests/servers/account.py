"""The one system account (``fsmovetest``) that vsftpd, pure-ftpd, proftpd and sshd serve.

Created on first use with a random password kept in a root-only file, so that every test
session on the machine (several may run at once) uses the same password: resetting it per
session would break the servers another session is using. The password is set with
``chpasswd`` through stdin, never on a command line.
"""

from __future__ import annotations

import fcntl
import os
import pwd
import secrets
import subprocess
from dataclasses import dataclass, field
from pathlib import Path

from .base import ServerStartError

ACCOUNT_NAME = "fsmovetest"
STATE_DIR = Path(os.environ.get("FSMOVE_SERVERS_STATE", "/var/lib/fsmove-servers"))


@dataclass(frozen=True)
class ServerAccount:
    name: str
    uid: int
    gid: int
    password: str = field(repr=False)
    #: The crypt(3) hash /etc/shadow holds, reused in pure-ftpd's and proftpd's own
    #: user files so all servers accept the same password.
    password_hash: str = field(repr=False)


def _shadow_hash(name: str) -> str | None:
    for line in Path("/etc/shadow").read_text().splitlines():
        fields = line.split(":")
        if fields[0] == name:
            return fields[1]
    return None


def _run(argv: list[str], *, stdin: str | None = None) -> None:
    result = subprocess.run(argv, input=stdin, capture_output=True, text=True, check=False)
    if result.returncode != 0:
        raise ServerStartError(
            f"{argv[0]} failed (code {result.returncode}): {result.stderr.strip()}"
        )


def ensure_account() -> ServerAccount:
    """Create or repair the account; return its name, ids and password."""
    if os.geteuid() != 0:
        raise ServerStartError(
            "the real-server fixtures run as root (they create the system account "
            f"{ACCOUNT_NAME!r} and start servers that switch users)"
        )
    STATE_DIR.mkdir(mode=0o700, parents=True, exist_ok=True)
    secret_file = STATE_DIR / f"{ACCOUNT_NAME}.password"
    hash_file = STATE_DIR / f"{ACCOUNT_NAME}.hash"
    with (STATE_DIR / "account.lock").open("w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        try:
            pwd.getpwnam(ACCOUNT_NAME)
        except KeyError:
            # A real login shell: vsftpd's PAM stack (pam_shells) wants one from /etc/shells.
            _run(["useradd", "--create-home", "--shell", "/bin/bash", ACCOUNT_NAME])
        if not secret_file.exists():
            fd = os.open(secret_file, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
            with os.fdopen(fd, "w") as out:
                out.write(secrets.token_urlsafe(18))
        password = secret_file.read_text().strip()
        current = _shadow_hash(ACCOUNT_NAME)
        if not hash_file.exists() or hash_file.read_text().strip() != current:
            _run(["chpasswd"], stdin=f"{ACCOUNT_NAME}:{password}\n")
            current = _shadow_hash(ACCOUNT_NAME)
            hash_file.write_text(f"{current}\n")
            hash_file.chmod(0o600)
    if not current or current[0] in "!*":
        raise ServerStartError(f"account {ACCOUNT_NAME!r} has no usable password hash")
    entry = pwd.getpwnam(ACCOUNT_NAME)
    return ServerAccount(
        name=ACCOUNT_NAME,
        uid=entry.pw_uid,
        gid=entry.pw_gid,
        password=password,
        password_hash=current,
    )


def check_reachable(path: Path, account: ServerAccount) -> None:
    """Raise unless ``account`` can traverse every folder down to ``path``.

    pytest's own temp base (/tmp/pytest-of-root) is mode 0700: a server root below it
    is out of reach of the account the servers switch to.
    """
    groups = set(os.getgrouplist(account.name, account.gid))
    for folder in [*reversed(path.parents), path]:
        info = folder.stat()
        if info.st_uid == account.uid:
            ok = info.st_mode & 0o100
        elif info.st_gid in groups:
            ok = info.st_mode & 0o010
        else:
            ok = info.st_mode & 0o001
        if not ok:
            raise ServerStartError(
                f"{folder} (mode {info.st_mode & 0o7777:o}) cannot be traversed by "
                f"{account.name}: put the server's workdir under a folder it can reach "
                "(e.g. one made with tempfile.mkdtemp() and chmod 0o711)"
            )


def prepare_root(root: Path, account: ServerAccount) -> None:
    """Make ``root`` a folder the account owns and can reach."""
    root.mkdir(parents=True, exist_ok=True)
    root.chmod(0o755)
    check_reachable(root, account)
    os.chown(root, account.uid, account.gid)
