"""Putting a relay in front of a test server, and cutting every connection through it.

FTP: the relay listens on another loopback address for the control port and the whole
passive range (fsmove opens data connections to the control connection's peer, so they
go through the relay too). SFTP: one port, with a known_hosts file naming it."""

from __future__ import annotations

import threading
from contextlib import AbstractContextManager
from pathlib import Path

from .base import RunningServer
from .ports import free_port
from .relay import Relay, start_relay


class Cutter:
    """Cuts every connection through ``relay`` every ``every`` seconds, ``times`` times."""

    def __init__(self, relay: Relay, *, every: float, times: int) -> None:
        self.relay = relay
        self.every = every
        self.times = times
        self.done = 0
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)

    def _run(self) -> None:
        while self.done < self.times and not self._stop.wait(self.every):
            self.relay.cut_all()
            self.done += 1

    def __enter__(self) -> Cutter:
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._stop.set()
        self._thread.join(timeout=30)


def ftp_relay(server: RunningServer, *, listen_host: str = "127.0.0.31"
              ) -> AbstractContextManager[Relay]:
    assert server.pasv_ports is not None
    low, high = server.pasv_ports
    return start_relay(listen_host=listen_host, target_host=server.host,
                       ports=[server.port, *range(low, high + 1)])


def ftp_url_via(server: RunningServer, listen_host: str) -> str:
    return server.url().replace(f"@{server.host}:", f"@{listen_host}:", 1)


def sftp_relay(server: RunningServer) -> tuple[int, AbstractContextManager[Relay]]:
    port = free_port()
    return port, start_relay(listen_host=server.host, target_host=server.host,
                             ports={port: server.port})


def relay_known_hosts(server: RunningServer, port: int, path: Path) -> Path:
    """A known_hosts file with the server's keys under the relay's ``[host]:port``."""
    assert server.known_hosts is not None
    keys = [ln.split(None, 1)[1] for ln in server.known_hosts.read_text().splitlines()
            if ln.startswith(f"{server.host} ")]
    path.write_text("".join(f"[{server.host}]:{port} {k}\n" for k in keys))
    return path


def sftp_url_via(server: RunningServer, port: int) -> str:
    return server.url().replace(f":{server.port}/", f":{port}/", 1)
