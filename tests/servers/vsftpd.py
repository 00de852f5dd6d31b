"""vsftpd 3.0.3 in the foreground, one config per instance, PAM login of the test account."""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from pathlib import Path

from .account import ensure_account, prepare_root
from .base import INSTALL_HINT, RunningServer, ServerNotInstalled
from .ports import free_port_range, port_range_released
from .process import serve
from .tls import self_signed

BINARY = Path("/usr/sbin/vsftpd")
PAM_SERVICE = Path("/etc/pam.d/vsftpd")
#: Seconds a session waits for a data connection (``accept_timeout``; see the config).
ACCEPT_TIMEOUT = 10


def _config(
    *,
    port: int,
    root: Path,
    empty: Path,
    log: Path,
    listen_address: str,
    pasv_ports: tuple[int, int],
    pasv_address: str | None,
    max_clients: int | None,
    tls_files: tuple[Path, Path] | None,
    refused_users: Path | None = None,
    accept_timeout: int = ACCEPT_TIMEOUT,
    extra: Sequence[str] = (),
) -> str:
    lines = [
        "listen=YES",
        "listen_ipv6=NO",
        "background=NO",
        f"listen_address={listen_address}",
        f"listen_port={port}",
        "anonymous_enable=NO",
        "local_enable=YES",
        "write_enable=YES",
        "local_umask=022",
        "chmod_enable=YES",
        f"local_root={root}",
        "chroot_local_user=YES",
        "allow_writeable_chroot=YES",
        f"pam_service_name={PAM_SERVICE.name}",
        # No seccomp or namespaces: they fail in containers and gain nothing on loopback.
        "seccomp_sandbox=NO",
        "isolate=NO",
        "isolate_network=NO",
        f"secure_chroot_dir={empty}",
        "connect_from_port_20=NO",
        "pasv_enable=YES",
        f"pasv_min_port={pasv_ports[0]}",
        f"pasv_max_port={pasv_ports[1]}",
        "mdtm_write=YES",
        "utf8_filesystem=YES",
        "force_dot_files=YES",
        f"max_clients={max_clients or 0}",
        "max_per_ip=0",
        "delay_failed_login=0",
        "syslog_enable=NO",
        "xferlog_enable=YES",
        f"vsftpd_log_file={log}",
        "dual_log_enable=NO",
        "use_localtime=NO",
        # How long a session waits for the client's data connection after a STOR or
        # RETR (vsftpd's default 60 s). A client killed between its STOR and that
        # connection leaves the session waiting, holding its write lock on the file
        # (lock_upload_files): the resumed run's STOR of that file waits behind it, and
        # tests that wait for the server to settle after a kill wait all of it (seen:
        # test_kill9_resume[sftp-to-vsftpd] 70 s instead of 13 in one run in three;
        # strace: the new session in fcntl(F_SETLKW), the old one's parent in
        # accept's wait). 10 s is still far beyond any connect on loopback under load.
        f"accept_timeout={accept_timeout}",
    ]
    if pasv_address is not None:
        lines += [f"pasv_address={pasv_address}", "pasv_addr_resolve=NO"]
    if tls_files is not None:
        cert, key = tls_files
        lines += [
            "ssl_enable=YES",
            f"rsa_cert_file={cert}",
            f"rsa_private_key_file={key}",
            # vsftpd 3.0.3's default list (DES-CBC3-SHA) is refused by OpenSSL 3 clients.
            "ssl_ciphers=HIGH",
            "allow_anon_ssl=NO",
            "force_local_logins_ssl=YES",
            "force_local_data_ssl=YES",
            # require_ssl_reuse=YES stays the default: that is what users meet.
        ]
    if refused_users is not None:
        # Users in this file are refused at USER ("530 Permission denied."), and vsftpd
        # closes the connection: a login that ends before PASS is read.
        lines += ["userlist_enable=YES", "userlist_deny=YES", f"userlist_file={refused_users}"]
    lines += extra
    return "\n".join(lines) + "\n"


@contextmanager
def start_vsftpd(
    workdir: Path,
    *,
    tls: bool = False,
    max_clients: int | None = None,
    pasv_address: str | None = None,
    listen_address: str = "127.0.0.1",
    refuse_user: bool = False,
    accept_timeout: int = ACCEPT_TIMEOUT,
    extra_config: Sequence[str] = (),
) -> Iterator[RunningServer]:
    """vsftpd serving ``workdir/root`` (chrooted, writable) to the test account;
    ``accept_timeout``: seconds a session waits for a data connection; ``extra_config``:
    lines appended to its configuration (a hosting provider's settings)."""
    for needed in (BINARY, PAM_SERVICE):
        if not needed.exists():
            raise ServerNotInstalled(f"vsftpd is not installed ({needed} missing): {INSTALL_HINT}")
    account = ensure_account()
    root = workdir / "root"
    empty = workdir / "empty"  # secure_chroot_dir: root-owned, not writable by the user
    prepare_root(root, account)
    empty.mkdir(mode=0o755, exist_ok=True)
    pasv_ports = free_port_range(listen_address)
    tls_files = None
    if tls:
        addresses = (listen_address, pasv_address or listen_address)
        files = self_signed(workdir / "tls", addresses=addresses)
        tls_files = (files.cert, files.key)
    config = workdir / "vsftpd.conf"
    refused_users = None
    if refuse_user:
        refused_users = workdir / "user_list"
        refused_users.write_text(account.name + "\n")

    def argv(port: int) -> list[str]:
        config.write_text(
            _config(
                port=port,
                root=root,
                empty=empty,
                log=workdir / "vsftpd.log",
                listen_address=listen_address,
                pasv_ports=pasv_ports,
                pasv_address=pasv_address,
                max_clients=max_clients,
                tls_files=tls_files,
                refused_users=refused_users,
                accept_timeout=accept_timeout,
                extra=extra_config,
            )
        )
        return [str(BINARY), str(config)]

    with port_range_released(pasv_ports), serve(
        name="vsftpd", host=listen_address, make_argv=argv, log_path=workdir / "vsftpd.out"
    ) as port:
        yield RunningServer(
            kind="vsftpd",
            scheme="ftps" if tls else "ftp",
            host=listen_address,
            port=port,
            user=account.name,
            password=account.password,
            root=root,
            url_path="/",
            pasv_ports=pasv_ports,
            ca_cert=tls_files[0] if tls_files else None,
            owner=(account.uid, account.gid),
        )
