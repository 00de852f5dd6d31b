"""The value every server fixture yields, and the errors a start can end in."""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from urllib.parse import quote

#: Where .ci/install-servers.sh unpacks the servers that conflict with vsftpd in Debian.
INSTALL_HINT = "run `bash .ci/install-servers.sh` as root"


class ServerNotInstalled(RuntimeError):
    """The server's binary is missing: the install script was not run (tests skip)."""


class ServerStartError(RuntimeError):
    """The server is installed but did not come up (tests error, never skip)."""


@dataclass(frozen=True)
class RunningServer:
    """A live server on 127.0.0.x and the one account tests use on it."""

    #: "vsftpd" | "pure-ftpd" | "proftpd" | "pyftpdlib" | "sshd" | "asyncssh-sftpd" | "aioftp"
    kind: str
    scheme: str  # "ftp" | "ftps" | "sftp"
    host: str
    port: int
    user: str
    password: str = field(repr=False)
    #: The local directory the account sees at ``url_path``.
    root: Path
    #: The path to put in a URL to reach ``root``: "/" for chrooted FTP, the absolute
    #: local path for sshd.
    url_path: str
    #: sftp: a known_hosts file with the server's host keys for both ``127.0.0.1`` and
    #: ``[127.0.0.1]:port``.
    known_hosts: Path | None = None
    #: The FTP passive port range this instance was configured with.
    pasv_ports: tuple[int, int] | None = None
    #: ftps: the server's self-signed certificate, to verify it (its SAN holds ``host``).
    ca_cert: Path | None = None
    #: sftp: a private key (OpenSSH format, no passphrase) the server accepts.
    client_key: Path | None = None
    #: uid and gid owning the files the account creates; files put into ``root`` by
    #: tests must belong to them (see ``make_tree``) or the server cannot change them.
    owner: tuple[int, int] = (0, 0)

    def url(self, subpath: str = "", *, with_password: bool = False) -> str:
        """``scheme://user@host:port/url_path/subpath`` with the path percent-quoted."""
        user = quote(self.user, safe="")
        if with_password:
            user += ":" + quote(self.password, safe="")
        path = self.path(subpath)
        return f"{self.scheme}://{user}@{self.host}:{self.port}{quote(path, safe='/')}"

    def path(self, subpath: str = "") -> str:
        """The server-side path of ``root / subpath`` (not quoted)."""
        base = self.url_path.rstrip("/")
        tail = subpath.strip("/")
        if not tail:
            return base or "/"
        return f"{base}/{tail}"
