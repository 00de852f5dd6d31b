"""asyncssh's own SFTP server, as a program of its own (a child process on a free port).

A second SFTP implementation beside OpenSSH's sftp-server, the kind of server a Python
test rig starts: it allows READ and WRITE requests of 4 MiB (OpenSSH: 255 KiB), answers
requests concurrently rather than strictly in order, and serves ``workdir/root`` as its
chroot ("/" in URLs). Before session 31 fsmove took its 4 MiB at its word: 12 requests
in flight held 48 MiB per stream and journaled no block until the window was full, so
a copy killed after 45 MiB restarted from its first byte. Password and key logins; the
password reaches the child in its environment, never on its command line;
``process.serve`` starts and stops it.
"""

from __future__ import annotations

import os
import secrets
import sys
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

from .base import RunningServer
from .process import serve

USER = "fsmovetest"

_SERVE = """
import asyncio, os, sys
import asyncssh
root, host, port, workdir = sys.argv[1:5]
user, password = os.environ["SFTPD_USER"], os.environ.pop("SFTPD_PASSWORD")
host_key = asyncssh.generate_private_key("ssh-ed25519")
host_key.write_public_key(os.path.join(workdir, "host_ed25519.pub"))
client_key = asyncssh.generate_private_key("ssh-ed25519")
client_key.write_private_key(os.path.join(workdir, "client_ed25519"))
os.chmod(os.path.join(workdir, "client_ed25519"), 0o600)

class Server(asyncssh.SSHServer):
    def begin_auth(self, username):
        return True
    def password_auth_supported(self):
        return True
    def validate_password(self, username, given):
        return username == user and given == password

class Sftp(asyncssh.SFTPServer):
    def __init__(self, chan):
        super().__init__(chan, chroot=root)

async def main():
    await asyncssh.listen(
        host, int(port), server_host_keys=[host_key], server_factory=Server,
        sftp_factory=Sftp, authorized_client_keys=asyncssh.import_authorized_keys(
            client_key.export_public_key().decode()))
    await asyncio.Event().wait()

asyncio.run(main())
"""


@contextmanager
def start_asyncssh_sftpd(workdir: Path, *,
                         listen_address: str = "127.0.0.1") -> Iterator[RunningServer]:
    """asyncssh's SFTP server chrooted to ``workdir/root``, one account (password or the
    generated client key)."""
    root = workdir / "root"
    root.mkdir(parents=True, exist_ok=True)
    password = secrets.token_urlsafe(18)
    env = {**os.environ, "SFTPD_USER": USER, "SFTPD_PASSWORD": password,
           "PYTHONWARNINGS": "ignore"}

    def argv(port: int) -> list[str]:
        return [sys.executable, "-c", _SERVE, str(root), listen_address, str(port),
                str(workdir)]

    with serve(name="asyncssh-sftpd", host=listen_address, make_argv=argv, env=env,
               log_path=workdir / "asyncssh-sftpd.log") as port:
        # The child wrote its host key before it listened.
        algorithm, blob = (workdir / "host_ed25519.pub").read_text().split()[:2]
        known_hosts = workdir / "known_hosts"
        known_hosts.write_text("".join(f"{name} {algorithm} {blob}\n" for name in (
            listen_address, f"[{listen_address}]:{port}")))
        yield RunningServer(
            kind="asyncssh-sftpd",
            scheme="sftp",
            host=listen_address,
            port=port,
            user=USER,
            password=password,
            root=root,
            url_path="/",
            known_hosts=known_hosts,
            client_key=workdir / "client_ed25519",
            owner=(os.geteuid(), os.getegid()),
        )
