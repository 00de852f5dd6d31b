"""proftpd 1.3.8 (unpacked privately), an AuthUserFile user mapped to the test account."""

from __future__ import annotations

import os
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

from .account import ServerAccount, ensure_account, prepare_root
from .base import INSTALL_HINT, RunningServer, ServerNotInstalled
from .ports import free_port_range, port_range_released
from .process import serve
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
    return "\n".join(lines) + "\n"


@contextmanager
def start_proftpd(
    workdir: Path,
    *,
    tls: bool = False,
    max_clients: int | None = None,
    pasv_address: str | None = None,
    listen_address: str = "127.0.0.1",
) -> Iterator[RunningServer]:
    """proftpd serving ``workdir/root`` (chrooted, writable) to the test account."""
    if not BINARY.exists() or (tls and not (MODULES / "mod_tls.so").exists()):
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
    config = workdir / "proftpd.conf"

    def argv(port: int) -> list[str]:
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
            )
        )
        # --nodaemon: stay in the foreground and log to stderr.
        return [str(BINARY), "--nodaemon", "--config", str(config)]

    with port_range_released(pasv_ports), serve(
        name="proftpd", host=listen_address, make_argv=argv, log_path=workdir / "proftpd.out"
    ) as port:
        yield RunningServer(
            kind="proftpd",
            scheme="ftps" if tls else "ftp",
            host=listen_address,
            port=port,
            user=account.name,
            password=account.password,
            root=root,
            url_path="/",
            pasv_ports=pasv_ports,
            ca_cert=tls_files.cert if tls_files else None,
            owner=(account.uid, account.gid),
        )
