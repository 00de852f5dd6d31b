"""proftpd 1.3.8 (unpacked privately), an AuthUserFile user mapped to the test account."""

from __future__ import annotations

import os
import subprocess
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

from .account import ServerAccount, ensure_account, prepare_root
from .base import INSTALL_HINT, RunningServer, ServerNotInstalled
from .ports import free_port_range, port_range_released
from .process import serve
from .sshd import KEYGEN
from .tls import TlsFiles, self_signed

PREFIX = Path(os.environ.get("FSMOVE_SERVERS_DIR", "/opt/fsmove-servers")) / "proftpd"
BINARY = PREFIX / "usr/sbin/proftpd"
MODULES = PREFIX / "usr/lib/proftpd"
#: proftpd's default MaxInstances (30) refuses the 31st concurrent connection.
MAX_INSTANCES = 500


def _auth_file(workdir: Path, *, account: ServerAccount, root: Path) -> Path:
    """A passwd-format file: the account's name, shadow hash and ids, home = root."""
    path = workdir / "ftpd.passwd"
    line = ":".join(
        [account.name, account.password_hash, str(account.uid), str(account.gid), "",
         str(root), "/bin/false"]
    )  # fmt: skip
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "w") as out:
        out.write(line + "\n")
    return path


def _config(
    *,
    workdir: Path,
    port: int,
    auth_file: Path,
    listen_address: str,
    pasv_ports: tuple[int, int],
    pasv_address: str | None,
    max_clients: int | None,
    tls: TlsFiles | None,
    sftp: SftpFiles | None = None,
    extra: Sequence[str] = (),
) -> str:
    lines = [
        f'ModulePath "{MODULES}"',
        'ServerName "fsmove test proftpd"',
        "ServerType standalone",
        "UseIPv6 off",
        f"DefaultAddress {listen_address}",
        "SocketBindTight on",
        f"Port {port}",
        "User nobody",
        "Group nogroup",
        f'PidFile "{workdir / "proftpd.pid"}"',
        f'ScoreboardFile "{workdir / "proftpd.scoreboard"}"',
        "WtmpLog off",
        "TransferLog NONE",
        "UseReverseDNS off",
        # mod_delay pads every login to hide timing; it only slows tests down.
        "DelayEngine off",
        f'AuthUserFile "{auth_file}"',
        "AuthOrder mod_auth_file.c",
        "AuthPAM off",
        "RequireValidShell off",
        "RootLogin off",
        "DefaultRoot ~",
        "Umask 022",
        "AllowOverwrite on",
        "AllowStoreRestart on",
        "AllowRetrieveRestart on",
        'ListOptions "-a"',
        f"PassivePorts {pasv_ports[0]} {pasv_ports[1]}",
        f"MaxInstances {MAX_INSTANCES}",
        "TimeoutIdle 600",
    ]
    if pasv_address is not None:
        lines.append(f"MasqueradeAddress {pasv_address}")
    if max_clients is not None:
        lines.append(f'MaxClients {max_clients} "Too many users: %m at most"')
    if sftp is not None:
        lines += [
            "LoadModule mod_sftp.c",
            "SFTPEngine on",
            f'SFTPHostKey "{sftp.host_key}"',
            "SFTPAuthMethods password publickey",
            f'SFTPAuthorizedUserKeys file:"{sftp.authorized_keys}"',
            f'SFTPLog "{workdir / "sftp.log"}"',
            # Compression and the like stay at their defaults, as a stock install has.
        ]
    if tls is not None:
        lines += [
            "LoadModule mod_tls.c",
            "TLSEngine on",
            "TLSRequired on",
            f'TLSRSACertificateFile "{tls.cert}"',
            f'TLSRSACertificateKeyFile "{tls.key}"',
            "TLSProtocol TLSv1.2 TLSv1.3",
            "TLSVerifyClient off",
            f'TLSLog "{workdir / "tls.log"}"',
            # TLSOptions NoSessionReuseRequired stays unset: data TLS must resume the
            # control session, as users of a stock proftpd meet it.
        ]
    lines += extra
    return "\n".join(lines) + "\n"


@dataclass(frozen=True)
class SftpFiles:
    host_key: Path
    authorized_keys: Path
    client_key: Path


def _sftp_files(workdir: Path, *, account: ServerAccount) -> SftpFiles:
    """An RSA host key, a client key and its RFC 4716 form (what mod_sftp reads)."""
    workdir.mkdir(parents=True, exist_ok=True)
    host_key = workdir / "ssh_host_rsa_key"
    client_key = workdir / "client_ed25519"
    for path, kind in ((host_key, "rsa"), (client_key, "ed25519")):
        if not path.exists():
            bits = ["-b", "2048"] if kind == "rsa" else []
            subprocess.run([str(KEYGEN), "-q", "-t", kind, *bits, "-N", "", "-m", "PEM",
                            "-f", str(path)], check=True, capture_output=True)
    os.chmod(host_key, 0o600)
    rfc4716 = subprocess.run([str(KEYGEN), "-e", "-f", f"{client_key}.pub"], check=True,
                             capture_output=True, text=True).stdout
    authorized = workdir / "authorized_keys"
    authorized.write_text(rfc4716)
    authorized.chmod(0o644)
    return SftpFiles(host_key, authorized, client_key)


@contextmanager
def start_proftpd(
    workdir: Path,
    *,
    tls: bool = False,
    sftp: bool = False,
    max_clients: int | None = None,
    pasv_address: str | None = None,
    listen_address: str = "127.0.0.1",
    extra_config: Sequence[str] = (),
) -> Iterator[RunningServer]:
    """proftpd serving ``workdir/root`` (chrooted, writable) to the test account; with
    ``sftp``, over SFTP (mod_sftp: a third SFTP implementation, beside OpenSSH's and
    asyncssh's) instead of FTP. ``extra_config``: lines appended to its configuration
    (a hosting provider's settings)."""
    if not BINARY.exists() or (tls and not (MODULES / "mod_tls.so").exists()) or (
            sftp and not (MODULES / "mod_sftp.so").exists()):
        raise ServerNotInstalled(f"proftpd is not installed under {PREFIX}: {INSTALL_HINT}")
    account = ensure_account()
    root = workdir / "root"
    prepare_root(root, account)
    auth_file = _auth_file(workdir, account=account, root=root)
    pasv_ports = free_port_range(listen_address)
    tls_files = None
    if tls:
        addresses = (listen_address, pasv_address or listen_address)
        tls_files = self_signed(workdir / "tls", addresses=addresses)
    sftp_files = _sftp_files(workdir / "ssh", account=account) if sftp else None
    config = workdir / "proftpd.conf"
    known_hosts = workdir / "known_hosts"

    def argv(port: int) -> list[str]:
        if sftp_files is not None:
            algorithm, blob = Path(f"{sftp_files.host_key}.pub").read_text().split()[:2]
            known_hosts.write_text("".join(f"{name} {algorithm} {blob}\n" for name in (
                listen_address, f"[{listen_address}]:{port}")))
        config.write_text(
            _config(
                workdir=workdir,
                port=port,
                auth_file=auth_file,
                listen_address=listen_address,
                pasv_ports=pasv_ports,
                pasv_address=pasv_address,
                max_clients=max_clients,
                tls=tls_files,
                sftp=sftp_files,
                extra=extra_config,
            )
        )
        # --nodaemon: stay in the foreground and log to stderr.
        return [str(BINARY), "--nodaemon", "--config", str(config)]

    with port_range_released(pasv_ports), serve(
        name="proftpd", host=listen_address, make_argv=argv, log_path=workdir / "proftpd.out"
    ) as port:
        yield RunningServer(
            kind="proftpd",
            scheme="sftp" if sftp else "ftps" if tls else "ftp",
            host=listen_address,
            port=port,
            user=account.name,
            password=account.password,
            root=root,
            url_path="/",
            pasv_ports=pasv_ports,
            ca_cert=tls_files.cert if tls_files else None,
            known_hosts=known_hosts if sftp_files else None,
            client_key=sftp_files.client_key if sftp_files else None,
            owner=(account.uid, account.gid),
        )
