"""The benchmark's servers and simulated links, all on 127.77.0.0/24.

Two FTP "buckets" (vsftpd: a source and a destination) and one SFTP server (sshd: the
source and destination folders both live on it). At RTT 0 clients talk to the servers
directly. For a WAN cell, a latency relay sits in front of the server: for FTP a second
vsftpd instance serves the same folder and advertises the relay's address in its PASV
replies, and the relay forwards its control port and whole passive range. Servers and
relays start on first use and stop when the ``Sites`` context ends.

On disk (``bench_dir``, traversable by the servers' account)::

    corpora/<name>/...   the corpora (the FTP source root: /small, /large, ...)
    dst/run/             the destination of the current run (the FTP destination root
                         is dst/, so the run lands in /run)
    servers/<name>/      each server's workdir (an FTP server's ``root`` links to
                         corpora/ or dst/; sshd is not chrooted: SFTP paths are absolute)
"""

from __future__ import annotations

import asyncio
import contextlib
import os
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path

from tests.servers.account import ensure_account
from tests.servers.base import RunningServer
from tests.servers.relay import Relay, start_relay
from tests.servers.sshd import start_sshd
from tests.servers.vsftpd import start_vsftpd

NET = "127.77.0."
_ADDR = {
    ("ftp-src", False): NET + "10",
    ("ftp-src", True): NET + "11",
    ("ftp-dst", False): NET + "12",
    ("ftp-dst", True): NET + "13",
    ("sftp", False): NET + "14",
}
_RELAY_ADDR = {"ftp-src": NET + "21", "ftp-dst": NET + "23", "sftp": NET + "24"}
COUNTING_RELAY_ADDR = NET + "25"


@dataclass(frozen=True)
class Location:
    """One end of a copy, as every client is told about it."""

    scheme: str  # "file" | "ftp" | "sftp"
    #: the path to put in the URL (server side), or the local path for "file"
    path: str
    #: where the files are on this machine (to verify and to empty them)
    local: Path
    host: str = ""
    port: int = 0
    user: str = ""
    password: str = field(default="", repr=False)
    #: sftp: a known_hosts file naming ``host`` and ``[host]:port``
    known_hosts: Path | None = None
    client_key: Path | None = None

    def sub(self, name: str) -> Location:
        """The same end, one folder further down."""
        path = self.path.rstrip("/") + "/" + name
        return Location(
            scheme=self.scheme,
            path=path,
            local=self.local / name,
            host=self.host,
            port=self.port,
            user=self.user,
            password=self.password,
            known_hosts=self.known_hosts,
            client_key=self.client_key,
        )


@dataclass(frozen=True)
class Route:
    """Where a cell copies from and to, and the links in between."""

    name: str  # "ftp" | "sftp" | "local-sftp" | "sftp-ftp" | "ftp-sftp"
    rtt_ms: int
    src: Location
    dst: Location


def relay_loop_factory() -> Callable[[], asyncio.AbstractEventLoop]:
    """uvloop's event loop for the relays when it is installed (the ``bench`` extra), else
    asyncio's. The relays run as threads of this harness, sharing one interpreter lock:
    at 60 ms with many small files they cost more CPU than the client they carry
    (benchmarks/README.md), and uvloop's C loop and transports cut that cost per chunk.
    The link they model (delay, window, handshake) is the same either way."""
    try:
        import uvloop
    except ImportError:
        return asyncio.new_event_loop
    return uvloop.new_event_loop


def _known_hosts_for(server: RunningServer, *, host: str, port: int, out: Path) -> Path:
    """A known_hosts file for ``server``'s keys under another name (a relay's address)."""
    assert server.known_hosts is not None
    lines = []
    for line in server.known_hosts.read_text().splitlines():
        parts = line.split()
        if len(parts) >= 3 and parts[0] == server.host:
            lines.append(f"{host} {parts[1]} {parts[2]}")
            lines.append(f"[{host}]:{port} {parts[1]} {parts[2]}")
    out.write_text("\n".join(lines) + "\n")
    return out


class Sites:
    """Starts servers and relays on demand; hands out ``Route``s for the cells."""

    def __init__(self, bench_dir: Path, stack: contextlib.ExitStack) -> None:
        self.bench_dir = bench_dir
        self.corpora_dir = bench_dir / "corpora"
        self.dst_dir = bench_dir / "dst"
        self._stack = stack
        self._servers: dict[str, RunningServer] = {}
        self._relays: dict[str, Relay] = {}
        for d in (bench_dir, self.corpora_dir, self.dst_dir, bench_dir / "servers"):
            d.mkdir(parents=True, exist_ok=True)
            os.chmod(d, 0o755 if d != bench_dir else 0o711)

        account = ensure_account()
        #: the servers' account: it must own what the servers write into
        self.owner = (account.uid, account.gid)
        for d in (self.corpora_dir, self.dst_dir):
            os.chown(d, *self.owner)

    # -- servers ------------------------------------------------------------------------
    def _workdir(self, name: str, root_target: Path) -> Path:
        workdir = self.bench_dir / "servers" / name
        workdir.mkdir(parents=True, exist_ok=True)
        os.chmod(workdir, 0o755)
        root = workdir / "root"
        if root.is_symlink() and root.resolve() != root_target.resolve():
            root.unlink()
        if not root.is_symlink():
            if root.exists():
                root.rmdir()
            root.symlink_to(root_target)
        return workdir

    def _start(
        self, key: str, factory: Callable[[], contextlib.AbstractContextManager[RunningServer]]
    ) -> RunningServer:
        if key not in self._servers:
            self._servers[key] = self._stack.enter_context(factory())
        return self._servers[key]

    def _vsftpd(self, side: str, *, wan: bool) -> RunningServer:
        name = f"ftp-{side}" + ("-wan" if wan else "")
        target = self.corpora_dir if side == "src" else self.dst_dir
        listen = _ADDR[(f"ftp-{side}", wan)]
        pasv = _RELAY_ADDR[f"ftp-{side}"] if wan else None
        return self._start(
            name,
            lambda: start_vsftpd(
                self._workdir(name, target), listen_address=listen, pasv_address=pasv
            ),
        )

    def _sshd(self) -> RunningServer:
        workdir = self.bench_dir / "servers" / "sftp"
        workdir.mkdir(parents=True, exist_ok=True)
        os.chmod(workdir, 0o755)
        return self._start(
            "sftp", lambda: start_sshd(workdir, listen_address=_ADDR[("sftp", False)])
        )

    def _relay(self, key: str, *, server: RunningServer, ports: list[int], delay: float,
               listen: str) -> Relay:  # fmt: skip
        if key not in self._relays:
            self._relays[key] = self._stack.enter_context(
                start_relay(
                    listen_host=listen, target_host=server.host, ports=ports, one_way_delay=delay,
                    loop_factory=relay_loop_factory(),
                )
            )
        return self._relays[key]

    # -- locations ----------------------------------------------------------------------
    def _ftp(self, side: str, rtt_ms: int) -> Location:
        server = self._vsftpd(side, wan=rtt_ms > 0)
        host = server.host
        if rtt_ms > 0:
            assert server.pasv_ports is not None
            low, high = server.pasv_ports
            host = _RELAY_ADDR[f"ftp-{side}"]
            self._relay(
                f"ftp-{side}-{rtt_ms}",
                server=server,
                ports=[server.port, *range(low, high + 1)],
                delay=rtt_ms / 2000,
                listen=host,
            )
        return Location(
            scheme="ftp",
            path="/",
            local=self.corpora_dir if side == "src" else self.dst_dir,
            host=host,
            port=server.port,
            user=server.user,
            password=server.password,
        )

    def _sftp(self, local: Path, *, rtt_ms: int, relay_host: str | None = None) -> Location:
        server = self._sshd()
        host, known = server.host, server.known_hosts
        if rtt_ms > 0 or relay_host is not None:
            host = relay_host or _RELAY_ADDR["sftp"]
            self._relay(
                f"sftp-{host}-{rtt_ms}",
                server=server,
                ports=[server.port],
                delay=rtt_ms / 2000,
                listen=host,
            )
            known = _known_hosts_for(
                server,
                host=host,
                port=server.port,
                out=self.bench_dir / "servers" / f"known_hosts-{host}",
            )
        return Location(
            scheme="sftp",
            path=str(local),
            local=local,
            host=host,
            port=server.port,
            user=server.user,
            password=server.password,
            known_hosts=known,
            client_key=server.client_key,
        )

    def route(self, name: str, rtt_ms: int) -> Route:
        """The source root and destination root of a route (corpus names go below)."""
        if name == "ftp":
            return Route(name, rtt_ms, self._ftp("src", rtt_ms), self._ftp("dst", rtt_ms))
        if name == "sftp":
            src = self._sftp(self.corpora_dir, rtt_ms=rtt_ms)
            return Route(name, rtt_ms, src, self._sftp(self.dst_dir, rtt_ms=rtt_ms))
        if name == "local-sftp":
            src = Location(scheme="file", path=str(self.corpora_dir), local=self.corpora_dir)
            return Route(name, rtt_ms, src, self._sftp(self.dst_dir, rtt_ms=rtt_ms))
        if name == "sftp-ftp":
            src = self._sftp(self.corpora_dir, rtt_ms=rtt_ms)
            return Route(name, rtt_ms, src, self._ftp("dst", rtt_ms))
        raise ValueError(f"unknown route {name!r}")

    def counted_route(self) -> tuple[Route, Relay]:
        """FTP -> SFTP at RTT 0 with a zero-delay relay counting what reaches the SFTP side."""
        src = self._ftp("src", 0)
        dst = self._sftp(self.dst_dir, rtt_ms=0, relay_host=COUNTING_RELAY_ADDR)
        return Route("ftp-sftp", 0, src, dst), self._relays[f"sftp-{COUNTING_RELAY_ADDR}-0"]


@contextlib.contextmanager
def open_sites(bench_dir: Path) -> Iterator[Sites]:
    with contextlib.ExitStack() as stack:
        yield Sites(bench_dir, stack)
