"""Real servers for tests and benchmarks, each with its own config and root on 127.0.0.x.

Every ``start_*`` is a context manager yielding a ``RunningServer``; see README.md here.
"""

from .aioftpd import start_aioftp
from .base import RunningServer, ServerNotInstalled, ServerStartError
from .proftpd import start_proftpd
from .pureftpd import start_pureftpd
from .sshd import start_sshd
from .tree import make_tree, new_subdir
from .vsftpd import start_vsftpd
from .workdir import servers_workdir

__all__ = [
    "RunningServer",
    "ServerNotInstalled",
    "ServerStartError",
    "make_tree",
    "new_subdir",
    "servers_workdir",
    "start_aioftp",
    "start_proftpd",
    "start_pureftpd",
    "start_sshd",
    "start_vsftpd",
]
