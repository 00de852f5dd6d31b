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
import shutil
import subprocess
import sys
import tempfile
from collections.abc import Callable
from dataclasses import replace
from pathlib import Path

import pytest

from tests.servers import RunningServer, make_tree, start_proftpd, start_pureftpd

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
    ("proftpd-tls", "accents"), ("pureftpd", "4k"), ("proftpd", "250"),
    ("pureftpd", "250")])
def test_longer_and_accented_paths_are_placed_at_once(
        own_server: Callable[..., RunningServer], tmp_path: Path, kind: str,
        shape: str) -> None:
    if kind == "pureftpd-tls":
        server = _pureftpd_tls(own_server, tmp_path)
    else:
        server = own_server(start_proftpd, tls=kind.endswith("-tls"))
    tls = kind.endswith("-tls")
    # A short source root: a 4k path under pytest's long tmp_path is over PATH_MAX.
    src = Path(tempfile.mkdtemp(prefix="fl", dir="/tmp"))
    try:
        _copy_and_check(server, src, tmp_path, shape, tls)
    finally:
        shutil.rmtree(src, ignore_errors=True)


def _read_deep(root: Path, parts: list[str]) -> bytes:
    """A file's bytes read folder by folder (its whole path may be over PATH_MAX)."""
    fd = os.open(root, os.O_RDONLY | os.O_DIRECTORY)
    try:
        for part in parts[:-1]:
            inner = os.open(part, os.O_RDONLY | os.O_DIRECTORY, dir_fd=fd)
            os.close(fd)
            fd = inner
        file_fd = os.open(parts[-1], os.O_RDONLY, dir_fd=fd)
        with os.fdopen(file_fd, "rb") as fh:
            return fh.read()
    finally:
        os.close(fd)


def _copy_and_check(server: RunningServer, src: Path, tmp_path: Path, shape: str,
                    tls: bool) -> None:
    # 2k: ~2,000 bytes; accents: 240 bytes, 120 characters a folder; 4k: ~4,030 bytes,
    # under the 4,060 fsmove allows (pure-ftpd's MLST line for it loses its LF).
    # 250: a name holding a reply code and a space on a long path (a first rule for
    # glued reply ends took it for one: session 36's second pass).
    folders = {"2k": [f"{i}" + "L" * 199 for i in range(10)], "accents": ["é" * 120] * 5,
               "4k": [f"{i:02d}" + "x" * 253 for i in range(15)],
               "250": [f"{i} 250 " + "S" * 190 for i in range(6)]}[shape]
    name = {"4k": "F" * 185 + ".txt", "250": "Invoice 250 EUR.pdf"}.get(shape, "f.txt")
    deep = src.joinpath(*folders)
    deep.mkdir(parents=True)
    (deep / name).write_bytes(b"hello\n")
    extra = ["--ca-file", str(server.ca_cert)] if tls else []
    env = {**os.environ, "FSMOVE_DST_PASSWORD": server.password}
    scheme = "ftps" if tls else "ftp"
    url = f"{scheme}://{server.user}@{server.host}:{server.port}/r"
    done = subprocess.run(
        [sys.executable, "-m", "fsmove.cli", "copy", str(src), url, "--json",
         "--retries", "0", "--timeout", "20", "--journal", str(tmp_path / "job.db"),
         *extra], env=env, capture_output=True, text=True, timeout=300, check=False)
    assert done.returncode == 0, done.stdout[-3000:] + done.stderr[-3000:]
    assert len(os.fsencode("/".join(["r", *folders, name]))) > {
        "2k": 2000, "accents": 1200, "4k": 4000, "250": 1100}[shape]
    assert _read_deep(server.root, ["r", *folders, name]) == b"hello\n"
    assert '"files_restarted": 0' in done.stdout and '"files_failed": 0' in done.stdout


def _deep_file(server: RunningServer, folders: list[str], name: str) -> None:
    """``r/<folders>/<name>`` (5 bytes) and ``r/short.txt`` (3) in the server's root, made
    folder by folder (the whole path is over PATH_MAX) and owned by its account: its
    uid and gid facts as long as an upload's."""
    fd = os.open(server.root, os.O_RDONLY | os.O_DIRECTORY)
    try:
        for part in ["r", *folders]:
            os.mkdir(part, dir_fd=fd)
            os.chown(part, *server.owner, dir_fd=fd)
            inner = os.open(part, os.O_RDONLY | os.O_DIRECTORY, dir_fd=fd)
            os.close(fd)
            fd = inner
        file_fd = os.open(name, os.O_WRONLY | os.O_CREAT, 0o644, dir_fd=fd)
        os.write(file_fd, b"12345")
        os.fchown(file_fd, *server.owner)
        os.close(file_fd)
    finally:
        os.close(fd)
    make_tree(server, {"r/short.txt": b"123"})


def test_a_reply_whose_last_line_the_server_glued_to_a_cut_line_ends_there(
        own_server: Callable[..., RunningServer]) -> None:
    """pure-ftpd cuts its MLST line for a ~4,030-byte path at its buffer, end of line
    included: "... /r/.../FFF.tx250 End." on one line. Before session 36 the reply did not
    end there: the next reply's first line was taken into it, so a placed file was
    failed as "session lost (ProtocolError)" when that reply had another code, and when
    it had the same code every later reply was read one late. Against the real server:
    the long file's size, then a short file's, each from its own reply."""
    import asyncio

    from fsmove.transfers.endpoint import parse_endpoint
    from fsmove.transfers.ftp import FtpStore

    server = own_server(start_pureftpd)
    folders = [f"{i:02d}" + "x" * 253 for i in range(15)]
    name = "F" * 185 + ".txt"
    _deep_file(server, folders, name)
    long_path = "/".join([*folders, name])

    async def check() -> tuple[int, int, str]:
        store = FtpStore(parse_endpoint(server.url("r", with_password=True)), timeout=10)
        session = await store.connect()
        try:
            # Every fact pure-ftpd has (its default; a session may have asked fewer):
            # the line is then past its buffer.
            await session.raw_command("OPTS MLST type;size;modify;UNIX.mode;UNIX.uid;"
                                      "UNIX.gid;unique;")
            deep = await session.raw_command(f"MLST {store.abs_path(long_path)}")
            short = await session.raw_command(f"SIZE {store.abs_path('short.txt')}")
            return deep.code, short.code, short.last.strip()
        finally:
            await session.close()

    assert asyncio.run(check()) == (250, 213, "3")


def test_a_name_ending_like_a_glued_reply_end_is_a_name(
        own_server: Callable[..., RunningServer]) -> None:
    """A file named "... 250 End." about 3,960 bytes deep on pure-ftpd: its MLST line is
    over 4,000 bytes but not cut, and ends like a glued reply end. A looser rule ended
    the reply at the name and read the server's real "250 End." as the next command's
    reply (an RMD of a full folder "succeeded"; session 36's third pass). Only a line of
    pure-ftpd's exact cut length is taken for glued."""
    import asyncio

    from fsmove.transfers.endpoint import parse_endpoint
    from fsmove.transfers.ftp import FtpStore

    server = own_server(start_pureftpd)
    folders = [f"{i:02d}" + "x" * 253 for i in range(15)]
    name = "N" * 90 + " 250 End."
    _deep_file(server, folders, name)

    async def check() -> tuple[int, int, int, str]:
        store = FtpStore(parse_endpoint(server.url("r", with_password=True)), timeout=10)
        session = await store.connect()
        try:
            await session.raw_command("OPTS MLST type;size;modify;UNIX.mode;UNIX.uid;"
                                      "UNIX.gid;unique;")
            deep = await session.raw_command(
                f"MLST {store.abs_path('/'.join([*folders, name]))}")
            line = next(x for x in deep.lines if "type=" in x)
            short = await session.raw_command(f"SIZE {store.abs_path('short.txt')}")
            return (deep.code, len(line.encode()), short.code, short.last.strip())
        finally:
            await session.close()

    code, length, short_code, short_size = asyncio.run(check())
    assert code == 250 and 4000 <= length < 4134, length
    assert (short_code, short_size) == (213, "3")
