"""Files whose server path is long (~1,200 bytes, far below the 4,096 the README allows)
placed on proftpd, plain and over TLS. Before session 35: proftpd cuts an MLST reply
line at ~1,024 bytes, so the check of a placed file read "no file at that name" and
the file was sent again six times and failed (exit 3) though it was there; over TLS
the placing batch of six long commands (one write, ~4.4 KiB) was never answered
(proftpd reads 4 KiB of a TLS record and waits on the socket) and every retry waited
for the timeout. Session 36's adversarial pass found two more: a transfer's own batch
(``DELE`` of the temporary name, ``EPSV``, ``STOR``) was written whole, so a ~2,000-byte
path stalled proftpd and pure-ftpd over TLS at every attempt; and the cut line was
measured in characters, not bytes, so accented names were "not at that name"."""

from __future__ import annotations

import os
import subprocess
import sys
from collections.abc import Callable
from dataclasses import replace
from pathlib import Path

import pytest

from tests.servers import RunningServer, start_proftpd, start_pureftpd

pytestmark = pytest.mark.interop


@pytest.mark.parametrize("tls", [False, True], ids=["ftp", "ftps"])
def test_a_long_path_is_placed_and_said_copied_at_once(
        own_server: Callable[..., RunningServer], tmp_path: Path, tls: bool) -> None:
    server = own_server(start_proftpd, tls=tls)
    src = tmp_path / "src"
    deep = src
    for i in range(6):
        deep = deep / (f"{i}" + "D" * 199)
    deep.mkdir(parents=True)
    (deep / "deep.txt").write_bytes(b"at the end of a long path\n")
    (src / "short.txt").write_bytes(b"short\n")
    extra = ["--ca-file", str(server.ca_cert)] if tls else []
    env = {**os.environ, "FSMOVE_DST_PASSWORD": server.password}
    done = subprocess.run(
        [sys.executable, "-m", "fsmove.cli", "copy", str(src), server.url("r"), "--json",
         "--retries", "0", "--timeout", "60", "--journal", str(tmp_path / "job.db"),
         *extra], env=env, capture_output=True, text=True, timeout=300, check=False)
    assert done.returncode == 0, done.stdout[-3000:] + done.stderr[-3000:]
    placed = server.root / "r" / deep.relative_to(src) / "deep.txt"
    assert len(str(placed.relative_to(server.root))) > 1200
    assert placed.read_bytes() == b"at the end of a long path\n"
    assert '"files_restarted": 0' in done.stdout and '"files_failed": 0' in done.stdout


def _pureftpd_tls(own_server: Callable[..., RunningServer], tmp_path: Path) -> RunningServer:
    """pure-ftpd with TLS required (``--tls 2``), a self-signed certificate for
    127.0.0.1 (its one PEM file: key, then certificate)."""
    from tests.servers.tls import self_signed

    made = self_signed(tmp_path / "tls", addresses=("127.0.0.1",))
    pem = tmp_path / "tls" / "both.pem"
    pem.write_bytes(made.key.read_bytes() + made.cert.read_bytes())
    pem.chmod(0o600)
    server = own_server(start_pureftpd, extra_args=["--tls", "2", "--certfile", str(pem)])
    return replace(server, ca_cert=made.cert, scheme="ftps")


@pytest.mark.parametrize(("kind", "shape"), [
    ("proftpd-tls", "2k"), ("pureftpd-tls", "2k"), ("proftpd", "accents"),
    ("proftpd-tls", "accents")])
def test_longer_and_accented_paths_are_placed_at_once(
        own_server: Callable[..., RunningServer], tmp_path: Path, kind: str,
        shape: str) -> None:
    if kind == "pureftpd-tls":
        server = _pureftpd_tls(own_server, tmp_path)
    else:
        server = own_server(start_proftpd, tls=kind.endswith("-tls"))
    tls = kind.endswith("-tls")
    src = tmp_path / "src"
    folders = ([f"{i}" + "L" * 199 for i in range(10)] if shape == "2k"
               else ["é" * 120] * 5)  # 240 bytes, 120 characters each
    deep = src.joinpath(*folders)
    deep.mkdir(parents=True)
    (deep / "f.txt").write_bytes(b"hello\n")
    extra = ["--ca-file", str(server.ca_cert)] if tls else []
    env = {**os.environ, "FSMOVE_DST_PASSWORD": server.password}
    scheme = "ftps" if tls else "ftp"
    url = f"{scheme}://{server.user}@{server.host}:{server.port}/r"
    done = subprocess.run(
        [sys.executable, "-m", "fsmove.cli", "copy", str(src), url, "--json",
         "--retries", "0", "--timeout", "20", "--journal", str(tmp_path / "job.db"),
         *extra], env=env, capture_output=True, text=True, timeout=300, check=False)
    assert done.returncode == 0, done.stdout[-3000:] + done.stderr[-3000:]
    placed = server.root / "r" / deep.relative_to(src) / "f.txt"
    assert len(os.fsencode(placed.relative_to(server.root))) > (2000 if shape == "2k" else 1200)
    assert placed.read_bytes() == b"hello\n"
    assert '"files_restarted": 0' in done.stdout and '"files_failed": 0' in done.stdout
