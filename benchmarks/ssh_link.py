"""The test sshd behind a latency relay, for the SFTP profiles (``profile_ssh_login``,
``profile_sftp_timeline``): one place that starts both and stops both."""

from __future__ import annotations

import contextlib
import os
import tempfile
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

from tests.servers.base import RunningServer
from tests.servers.ports import free_port
from tests.servers.relay import start_relay
from tests.servers.sshd import start_sshd


@dataclass(frozen=True)
class SshLink:
    folder: Path  # a scratch folder that lives as long as the link
    server: RunningServer
    relay_port: int  # the relay's port on 127.0.0.1, in front of the server


@contextlib.contextmanager
def sshd_behind_relay(one_way_ms: float) -> Iterator[SshLink]:
    with tempfile.TemporaryDirectory() as tmp:
        os.chmod(tmp, 0o711)  # the server's account must reach its root below it
        with start_sshd(Path(tmp)) as server:
            listen = free_port()
            with start_relay(listen_host="127.0.0.1", target_host=server.host,
                             ports={listen: server.port}, one_way_delay=one_way_ms / 1000):
                yield SshLink(Path(tmp), server, listen)
