"""pure-ftpd 1.0.50 (unpacked privately), virtual user in a PureDB mapped to the account."""

from __future__ import annotations

import os
import subprocess
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from pathlib import Path

from .account import ServerAccount, ensure_account, prepare_root
from .base import INSTALL_HINT, RunningServer, ServerNotInstalled, ServerStartError
from .ports import free_port_range, port_range_released
from .process import serve

PREFIX = Path(os.environ.get("FSMOVE_SERVERS_DIR", "/opt/fsmove-servers")) / "pure-ftpd"
BINARY = PREFIX / "usr/sbin/pure-ftpd"
PURE_PW = PREFIX / "usr/bin/pure-pw"
#: pure-ftpd's default (10000 files per listing) truncates LIST of a large folder.
LISTING_LIMIT = "2000000:16"
DEFAULT_MAX_CLIENTS = 200


def _user_db(workdir: Path, *, account: ServerAccount, root: Path) -> Path:
    """Write the pure-pw text file and compile it with ``pure-pw mkdb``.

    The password hash is the one /etc/shadow holds for the account (crypt(3) format,
    which pure-ftpd checks with the same libcrypt), so no password goes anywhere.
    """
    passwd = workdir / "pureftpd.passwd"
    pdb = workdir / "pureftpd.pdb"
    # Home "ROOT/./": chroot at ROOT (also forced for everyone with -A).
    fields = [account.name, account.password_hash, str(account.uid), str(account.gid), ""]
    fields += [f"{root}/./"] + [""] * 12
    fd = os.open(passwd, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "w") as out:
        out.write(":".join(fields) + "\n")
    result = subprocess.run(
        [str(PURE_PW), "mkdb", str(pdb), "-f", str(passwd)],
        capture_output=True,
        text=True,
        check=False,
    )
    if result.returncode != 0:
        raise ServerStartError(f"pure-pw mkdb failed: {result.stderr.strip()}")
    return pdb


@contextmanager
def start_pureftpd(
    workdir: Path,
    *,
    max_clients: int | None = None,
    pasv_address: str | None = None,
    listen_address: str = "127.0.0.1",
    listing_limit: str = LISTING_LIMIT,
    extra_args: Sequence[str] = (),
) -> Iterator[RunningServer]:
    """pure-ftpd serving ``workdir/root`` (chrooted, writable) to the test account.
    ``listing_limit``: ``--limitrecursion`` (files per listing:depth; pure-ftpd's own
    default is 10000:5, which cuts a bigger folder's listing short); ``extra_args``:
    more options (a hosting provider's, ``--quota 1000:20``...)."""
    if not BINARY.exists():
        raise ServerNotInstalled(f"pure-ftpd is not installed ({BINARY} missing): {INSTALL_HINT}")
    account = ensure_account()
    root = workdir / "root"
    prepare_root(root, account)
    pdb = _user_db(workdir, account=account, root=root)
    pasv_ports = free_port_range(listen_address)
    clients = max_clients or DEFAULT_MAX_CLIENTS

    def argv(port: int) -> list[str]:
        args = [
            str(BINARY),
            "--bind", f"{listen_address},{port}",
            "--login", f"puredb:{pdb}",
            "--chrooteveryone",
            "--noanonymous",
            "--dontresolve",
            "--displaydotfiles",
            "--passiveportrange", f"{pasv_ports[0]}:{pasv_ports[1]}",
            "--maxclientsnumber", str(clients),
            "--maxclientsperip", str(clients),
            "--limitrecursion", listing_limit,
            "--pidfile", str(workdir / "pure-ftpd.pid"),
            "--syslogfacility", "none",
            "--ipv4only",
        ]  # fmt: skip
        if pasv_address is not None:
            args += ["--forcepassiveip", pasv_address]
        return args + list(extra_args)

    with port_range_released(pasv_ports), serve(
        name="pure-ftpd",
        host=listen_address,
        make_argv=argv,
        log_path=workdir / "pure-ftpd.out",
    ) as port:
        yield RunningServer(
            kind="pure-ftpd",
            scheme="ftp",
            host=listen_address,
            port=port,
            user=account.name,
            password=account.password,
            root=root,
            url_path="/",
            pasv_ports=pasv_ports,
            owner=(account.uid, account.gid),
        )
