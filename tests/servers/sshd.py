"""OpenSSH's sshd in the foreground with its own host keys; SFTP by internal-sftp.

The test account logs in by password (checked against /etc/shadow: ``UsePAM no`` works
when sshd runs as root) or by the client key this module generates.
"""

from __future__ import annotations

import subprocess
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

from .account import ServerAccount, ensure_account, prepare_root
from .base import INSTALL_HINT, RunningServer, ServerNotInstalled, ServerStartError
from .process import serve

BINARY = Path("/usr/sbin/sshd")  # sshd re-executes itself: it needs an absolute path
KEYGEN = Path("/usr/bin/ssh-keygen")
PRIVSEP_DIR = Path("/run/sshd")
HOST_KEY_TYPES = ("ed25519", "rsa")


def _keygen(path: Path, key_type: str) -> None:
    """An OpenSSH key pair at ``path`` / ``path.pub`` (kept if it already exists)."""
    if path.exists():
        return
    bits = ["-b", "2048"] if key_type == "rsa" else []
    argv = [str(KEYGEN), "-q", "-t", key_type, *bits, "-N", "", "-C", "fsmove-test"]
    argv += ["-f", str(path)]
    result = subprocess.run(argv, capture_output=True, text=True, check=False)
    if result.returncode != 0:
        raise ServerStartError(f"ssh-keygen -t {key_type} failed: {result.stderr.strip()}")


def _known_hosts(path: Path, *, host: str, port: int, host_keys: list[Path]) -> None:
    lines = []
    for key in host_keys:
        algorithm, blob = Path(f"{key}.pub").read_text().split()[:2]
        for name in (host, f"[{host}]:{port}"):
            lines.append(f"{name} {algorithm} {blob}")
    path.write_text("\n".join(lines) + "\n")


def _config(
    *, workdir: Path, port: int, host: str, host_keys: list[Path], account: ServerAccount,
    password_auth: bool = True, subsystem: str = "internal-sftp",
) -> str:
    lines = [
        f"ListenAddress {host}",
        f"Port {port}",
        *(f"HostKey {key}" for key in host_keys),
        f"PidFile {workdir / 'sshd.pid'}",
        "UsePAM no",
        f"PasswordAuthentication {'yes' if password_auth else 'no'}",
        "PermitEmptyPasswords no",
        "KbdInteractiveAuthentication no",
        "PubkeyAuthentication yes",
        f"AuthorizedKeysFile {workdir / 'authorized_keys'}",
        "StrictModes no",
        "PermitRootLogin no",
        f"AllowUsers {account.name}",
        f"Subsystem sftp {subsystem}",
        "MaxSessions 100",
        "MaxStartups 200",
        "MaxAuthTries 10",
        "LoginGraceTime 30",
        "UseDNS no",
        "PrintMotd no",
        "X11Forwarding no",
        "AllowTcpForwarding no",
        "AllowAgentForwarding no",
        "PermitTunnel no",
        "LogLevel INFO",
    ]
    return "\n".join(lines) + "\n"


@contextmanager
def start_sshd(
    workdir: Path, *, listen_address: str = "127.0.0.1", password_auth: bool = True,
    subsystem: str = "internal-sftp",
) -> Iterator[RunningServer]:
    """sshd serving SFTP; the account's files live in ``workdir/root`` (not chrooted).
    ``password_auth=False``: only the client key logs in (``PasswordAuthentication no``).
    ``subsystem``: the SFTP server's command line (``internal-sftp -P setstat``...)."""
    if not BINARY.exists() or not KEYGEN.exists():
        raise ServerNotInstalled(f"openssh-server is not installed: {INSTALL_HINT}")
    account = ensure_account()
    root = workdir / "root"
    prepare_root(root, account)
    PRIVSEP_DIR.mkdir(mode=0o755, exist_ok=True)
    host_keys = [workdir / f"ssh_host_{kind}_key" for kind in HOST_KEY_TYPES]
    for key, kind in zip(host_keys, HOST_KEY_TYPES, strict=True):
        _keygen(key, kind)
    client_key = workdir / "client_ed25519"
    _keygen(client_key, "ed25519")
    authorized = workdir / "authorized_keys"
    # sshd reads it as the account: it must be readable by it.
    authorized.write_text(Path(f"{client_key}.pub").read_text())
    authorized.chmod(0o644)
    known_hosts = workdir / "known_hosts"
    config = workdir / "sshd_config"

    def argv(port: int) -> list[str]:
        config.write_text(
            _config(
                workdir=workdir, port=port, host=listen_address, host_keys=host_keys,
                account=account, password_auth=password_auth, subsystem=subsystem,
            )
        )  # fmt: skip
        _known_hosts(known_hosts, host=listen_address, port=port, host_keys=host_keys)
        # -D: foreground; -e: log to stderr.
        return [str(BINARY), "-D", "-e", "-f", str(config)]

    with serve(
        name="sshd", host=listen_address, make_argv=argv, log_path=workdir / "sshd.out"
    ) as port:
        yield RunningServer(
            kind="sshd",
            scheme="sftp",
            host=listen_address,
            port=port,
            user=account.name,
            password=account.password,
            root=root,
            url_path=str(root),
            known_hosts=known_hosts,
            client_key=client_key,
            owner=(account.uid, account.gid),
        )
