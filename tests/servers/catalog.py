"""The test servers, listed once: each pytest fixture's name, how it starts, and what it
speaks. tests/conftest.py makes one session fixture per entry; every test that runs
over several servers picks its list here (a server added to ``SERVERS`` reaches every
test that runs over "all FTP servers", "all stores"...)."""

from __future__ import annotations

from collections.abc import Callable, Mapping
from contextlib import AbstractContextManager
from dataclasses import dataclass, field
from typing import Literal

from .aioftpd import start_aioftp
from .asyncssh_sftpd import start_asyncssh_sftpd
from .base import RunningServer
from .proftpd import start_proftpd
from .pureftpd import start_pureftpd
from .pyftpd import start_pyftpdlib
from .sshd import start_sshd
from .vsftpd import start_vsftpd


@dataclass(frozen=True)
class ServerKind:
    #: The session fixture's name (and the test id where tests run over servers).
    fixture: str
    start: Callable[..., AbstractContextManager[RunningServer]]
    #: Its folder in the session's scratch folder.
    workdir: str
    protocol: Literal["ftp", "ftps", "sftp"]
    #: A server program of its own (aioftp runs in this process, from fsmove's own
    #: FTP dependency: it tests little about interoperability).
    third_party: bool = True
    options: Mapping[str, object] = field(default_factory=dict)


SERVERS: tuple[ServerKind, ...] = (
    ServerKind("vsftpd_server", start_vsftpd, "vsftpd", "ftp"),
    ServerKind("vsftpd_tls_server", start_vsftpd, "vsftpd-tls", "ftps", options={"tls": True}),
    ServerKind("pureftpd_server", start_pureftpd, "pure-ftpd", "ftp"),
    ServerKind("proftpd_server", start_proftpd, "proftpd", "ftp"),
    ServerKind("proftpd_tls_server", start_proftpd, "proftpd-tls", "ftps",
               options={"tls": True}),
    ServerKind("pyftpdlib_server", start_pyftpdlib, "pyftpdlib", "ftp"),
    ServerKind("sshd_server", start_sshd, "sshd", "sftp"),
    ServerKind("asyncssh_sftp_server", start_asyncssh_sftpd, "asyncssh-sftpd", "sftp"),
    ServerKind("proftpd_sftp_server", start_proftpd, "proftpd-sftp", "sftp",
               options={"sftp": True}),
    ServerKind("aioftp_server", start_aioftp, "aioftp", "ftp", third_party=False),
)

#: Every server fixture.
SERVER_FIXTURES = tuple(k.fixture for k in SERVERS)
#: Every store a copy can use: a local folder ("local") and every server.
STORES = ("local", *SERVER_FIXTURES)
#: Plain FTP servers (aioftp included).
FTP_SERVERS = tuple(k.fixture for k in SERVERS if k.protocol == "ftp")
#: FTPS servers.
FTPS_SERVERS = tuple(k.fixture for k in SERVERS if k.protocol == "ftps")
#: FTP and FTPS server programs (not aioftp).
THIRD_PARTY_FTP_SERVERS = tuple(k.fixture for k in SERVERS
                                if k.protocol != "sftp" and k.third_party)
#: One of each server program, plain (no TLS twin, not aioftp).
SERVER_PROGRAMS = tuple(k.fixture for k in SERVERS if k.third_party and k.protocol != "ftps")
