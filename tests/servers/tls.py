"""A self-signed certificate for an FTPS server, made with the openssl command."""

from __future__ import annotations

import ipaddress
import subprocess
from dataclasses import dataclass
from pathlib import Path

from .base import ServerStartError


@dataclass(frozen=True)
class TlsFiles:
    cert: Path  # PEM certificate, also the CA file clients verify against
    key: Path  # PEM private key, mode 0600


def self_signed(folder: Path, *, addresses: tuple[str, ...]) -> TlsFiles:
    """Write ``server.crt``/``server.key`` for ``addresses`` (IPs, plus "localhost").

    Made once per folder: a second call finds the files and reuses them.
    """
    tls = TlsFiles(cert=folder / "server.crt", key=folder / "server.key")
    if tls.cert.exists() and tls.key.exists():
        return tls
    folder.mkdir(parents=True, exist_ok=True)
    names = ["DNS:localhost"]
    for address in dict.fromkeys(addresses):
        ipaddress.ip_address(address)  # a typo here should fail loudly
        names.append(f"IP:{address}")
    argv = [
        "openssl", "req", "-x509", "-newkey", "rsa:2048", "-nodes", "-sha256",
        "-days", "30", "-subj", "/CN=fsmove test server",
        "-addext", "subjectAltName=" + ",".join(names),
        "-addext", "basicConstraints=critical,CA:TRUE",
        "-keyout", str(tls.key), "-out", str(tls.cert),
    ]  # fmt: skip
    result = subprocess.run(argv, capture_output=True, text=True, check=False)
    if result.returncode != 0:
        raise ServerStartError(f"openssl could not make a test certificate: {result.stderr}")
    tls.key.chmod(0o600)
    return tls
