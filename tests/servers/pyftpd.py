"""pyftpdlib's FTP server, as a program of its own (a child process on a free port).

A fourth FTP implementation beside vsftpd, pure-ftpd and proftpd, with its own habits:
MLSD, MFMT and REST+STOR, one process serving every session from one event loop, and
a new ``PASV``/``EPSV`` that closes a running data connection without answering its
transfer (session 31: fsmove's early passive command cost a 30 s timeout per upload
there). The password reaches the child in its environment, never on its command line;
its log goes to ``workdir/pyftpdlib.log``; ``process.serve`` starts and stops it.
"""

from __future__ import annotations

import os
import secrets
import sys
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

from .base import RunningServer
from .ports import free_port_range, port_range_released
from .process import serve

USER = "fsmovetest"

_SERVE = """
import logging, os, sys
from pyftpdlib.authorizers import DummyAuthorizer
from pyftpdlib.handlers import FTPHandler
from pyftpdlib.servers import FTPServer
root, host, port, low, high = sys.argv[1:6]
logging.basicConfig(level=logging.INFO)
users = DummyAuthorizer()
users.add_user(os.environ["PYFTPD_USER"], os.environ.pop("PYFTPD_PASSWORD"), root,
               perm="elradfmwMT")
handler = type("Handler", (FTPHandler,), {})
handler.authorizer = users
handler.passive_ports = range(int(low), int(high) + 1)
handler.permit_foreign_addresses = False
server = FTPServer((host, int(port)), handler)
server.max_cons = server.max_cons_per_ip = 512
server.serve_forever(handle_exit=True)
"""


@contextmanager
def start_pyftpdlib(workdir: Path, *, listen_address: str = "127.0.0.1") -> Iterator[RunningServer]:
    """A pyftpdlib server serving ``workdir/root`` read-write to one account."""
    root = workdir / "root"
    root.mkdir(parents=True, exist_ok=True)
    password = secrets.token_urlsafe(18)
    pasv_ports = free_port_range(listen_address)
    env = {**os.environ, "PYFTPD_USER": USER, "PYFTPD_PASSWORD": password}

    def argv(port: int) -> list[str]:
        return [sys.executable, "-c", _SERVE, str(root), listen_address, str(port),
                str(pasv_ports[0]), str(pasv_ports[1])]

    with port_range_released(pasv_ports), serve(
            name="pyftpdlib", host=listen_address, make_argv=argv, env=env,
            log_path=workdir / "pyftpdlib.log") as port:
        yield RunningServer(
            kind="pyftpdlib",
            scheme="ftp",
            host=listen_address,
            port=port,
            user=USER,
            password=password,
            root=root,
            url_path="/",
            pasv_ports=pasv_ports,
            owner=(os.geteuid(), os.getegid()),
        )
