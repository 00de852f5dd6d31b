"""dnsmasq 2.90 in the foreground on 127.0.0.1 and a free port, answering only our records.

Records come from a config file written here: ``cname=NAME,TARGET[,TTL]``,
``host-record=NAME,IP[,TTL]`` (one line per address: a second IPv4 on the same line
replaces the first) and ``txt-record=NAME,"TEXT"`` (TTL of local records otherwise: 0).
``local=/#/`` makes every other name NXDOMAIN, answered locally (never forwarded:
``--no-resolv`` and no ``server=``), so a test never reaches real DNS.

Changing records needs a restart: SIGHUP re-reads hosts files (``--addn-hosts``,
``--hostsdir``) but "does NOT re-read the configuration file" (dnsmasq(8), SIGNALS), and
CNAMEs exist only in the configuration. ``set_records`` therefore stops dnsmasq and starts
it again on the same port (a few tens of ms during which queries are refused).

Readiness: a TXT query for a probe name whose value is a token new for every start
(connecting is harmless here: dnsmasq has no client limit). The token proves that the
answer comes from this instance with its latest records, not from another program that
took the port. dnsmasq drops root for ``nobody`` after reading its config.
"""

from __future__ import annotations

import secrets
import socket
import subprocess
import time
from collections.abc import Iterable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

import dns.exception
import dns.message
import dns.query
import dns.rdatatype

from .base import INSTALL_HINT, ServerNotInstalled, ServerStartError
from .ports import free_port
from .process import START_TIMEOUT, stop_tree

BINARY = Path("/usr/sbin/dnsmasq")
PROBE_NAME = "ready.fsmove-dnsmasq.test"
PORT_ATTEMPTS = 3
_POLL_INTERVAL = 0.02
_PROBE_TIMEOUT = 0.2
_KINDS = ("CNAME", "A", "AAAA", "TXT")


@dataclass(frozen=True)
class Record:
    """One record dnsmasq serves: ``Record("www.example.test", "CNAME", "x.test", 3600)``."""

    name: str
    rtype: str  # "CNAME" | "A" | "AAAA" | "TXT"
    value: str
    ttl: int | None = None  # None: dnsmasq's local TTL (0); not settable for TXT


def _config_line(record: Record) -> str:
    name = record.name.rstrip(".")
    value = record.value.rstrip(".") if record.rtype == "CNAME" else record.value
    kind = record.rtype.upper()
    if kind not in _KINDS:
        raise ValueError(f"dnsmasq.py serves {', '.join(_KINDS)} records, not {record.rtype}")
    if any(c in name + value for c in ",\n") and kind != "TXT":
        raise ValueError(f"no commas or newlines in a record: {record}")
    ttl = "" if record.ttl is None else f",{int(record.ttl)}"
    if kind == "CNAME":
        return f"cname={name},{value}{ttl}"
    if kind == "TXT":
        if record.ttl is not None or '"' in value or "\n" in value:
            raise ValueError(f"TXT records take no TTL, quotes or newlines here: {record}")
        return f'txt-record={name},"{value}"'
    return f"host-record={name},{value}{ttl}"


def _config(records: Iterable[Record], token: str, zones: Iterable[str] = (),
            host: str = "127.0.0.1") -> str:
    lines = ["local=/#/", f'txt-record={PROBE_NAME},"{token}"']
    zones = list(zones)
    if zones:
        # Authoritative for these zones (queries arriving on ``host``): each answers its
        # SOA at its apex, and names below it get the SOA in the authority section. In
        # that mode a name outside every zone is REFUSED: the readiness probe's name
        # gets a zone of its own, and the caller lists every zone its records need.
        lines += [f"auth-server=ns.fsmove-dnsmasq.test,{host}",
                  "auth-soa=1,hostmaster.fsmove-dnsmasq.test"]
        lines += [f"auth-zone={zone.rstrip('.')}"
                  for zone in dict.fromkeys([*zones, PROBE_NAME.split(".", 1)[1]])]
    lines += [_config_line(r) for r in records]
    return "\n".join(lines) + "\n"


def _answers_token(host: str, port: int, token: str) -> bool:
    query = dns.message.make_query(PROBE_NAME, dns.rdatatype.TXT)
    # Connected, so that "nobody listens yet" is an immediate ECONNREFUSED, not a timeout.
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as sock:
        sock.setblocking(False)
        sock.connect((host, port))
        try:
            reply = dns.query.udp(query, host, port=port, timeout=_PROBE_TIMEOUT, sock=sock)
        except (OSError, dns.exception.DNSException):
            return False
    return any(
        b"".join(rdata.strings) == token.encode()
        for rrset in reply.answer
        for rdata in rrset
        if rrset.rdtype == dns.rdatatype.TXT
    )


class DnsmasqServer:
    """A running dnsmasq; ``nameserver`` is what ``--nameserver`` / DnsChecker take."""

    def __init__(self, workdir: Path, *, host: str, zones: Iterable[str] = ()) -> None:
        self.workdir = workdir
        self.host = host
        #: The zones it is authoritative for (``auth-zone``): their apexes have an SOA.
        self.zones = tuple(zones)
        self.port = 0
        self.config = workdir / "dnsmasq.conf"
        self.log = workdir / "dnsmasq.out"
        self._proc: subprocess.Popen[bytes] | None = None

    @property
    def nameserver(self) -> str:
        return f"{self.host}:{self.port}"

    def _argv(self, port: int) -> list[str]:
        return [
            str(BINARY),
            "--keep-in-foreground",
            "--log-facility=-",
            "--log-queries",
            "--pid-file=",
            f"--conf-file={self.config}",
            "--no-resolv",
            "--no-hosts",
            "--bind-interfaces",
            f"--listen-address={self.host}",
            f"--port={port}",
        ]

    def _launch(self, port: int, records: list[Record]) -> str | None:
        """Start on ``port``; None once it answers with the new token, else why not."""
        token = secrets.token_hex(8)
        self.config.write_text(_config(records, token, self.zones, self.host))
        argv = self._argv(port)
        with self.log.open("ab") as log:
            proc = subprocess.Popen(
                argv,
                stdin=subprocess.DEVNULL,
                stdout=log,
                stderr=subprocess.STDOUT,
                start_new_session=True,
            )
        self._proc = proc
        deadline = time.monotonic() + START_TIMEOUT
        while time.monotonic() < deadline:
            if proc.poll() is not None:
                return f"exited with code {proc.returncode}"
            if _answers_token(self.host, port, token):
                self.port = port
                return None
            time.sleep(_POLL_INTERVAL)
        return f"did not answer in {START_TIMEOUT:.0f} s"

    def _fail(self, port: int, why: str) -> ServerStartError:
        output = self.log.read_text(errors="replace")[-4000:].strip() or "(no output)"
        return ServerStartError(
            f"dnsmasq did not come up on {self.host}:{port} ({why}); command: "
            f"{' '.join(self._argv(port))}; its output ({self.log}):\n{output}"
        )

    def start(self, records: Iterable[Record]) -> None:
        wanted = list(records)
        for attempt in range(1, PORT_ATTEMPTS + 1):
            port = free_port(self.host)  # a free TCP port; dnsmasq also binds its UDP twin
            logged = self.log.stat().st_size if self.log.exists() else 0
            why = self._launch(port, wanted)
            if why is None:
                return
            self.stop()
            with self.log.open("rb") as log:
                log.seek(logged)
                in_use = b"address already in use" in log.read().lower()
            if attempt == PORT_ATTEMPTS or not in_use:
                raise self._fail(port, why)
        raise AssertionError("unreachable")

    def set_records(self, records: Iterable[Record]) -> None:
        """Serve ``records`` instead (all of them: nothing is kept), on the same port."""
        self.stop()
        why = self._launch(self.port, list(records))
        if why is not None:
            self.stop()
            raise self._fail(self.port, why)

    def stop(self) -> None:
        if self._proc is not None:
            stop_tree(self._proc)
            self._proc = None


@contextmanager
def start_dnsmasq(
    workdir: Path, records: Iterable[Record] = (), *, listen_address: str = "127.0.0.1",
    zones: Iterable[str] = (),
) -> Iterator[DnsmasqServer]:
    """dnsmasq serving ``records`` (and NXDOMAIN for every other name) until exit;
    authoritative for ``zones`` (their apexes answer an SOA query)."""
    if not BINARY.exists():
        raise ServerNotInstalled(
            f"dnsmasq is not installed ({BINARY} missing, Debian package dnsmasq-base): "
            f"{INSTALL_HINT}"
        )
    workdir.mkdir(parents=True, exist_ok=True)
    server = DnsmasqServer(workdir, host=listen_address, zones=zones)
    try:
        server.start(records)
        yield server
    finally:
        server.stop()
