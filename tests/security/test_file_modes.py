"""Permission bits are kept where the destination can set them, and never widened
(issue 14, item 13): a 0600 ``.env`` must never arrive readable by others. Local disk
(chmod), OpenSSH (SETSTAT), and the FTP servers through ``SITE CHMOD`` (vsftpd, proftpd
and pure-ftpd list it in ``SITE HELP``); an FTP source gives the bits from its listing
(``UNIX.mode`` facts, or ``LIST``'s ``rw-------``)."""

from __future__ import annotations

import os
import stat
from collections.abc import Callable
from pathlib import Path

import pytest

from tests.faults.fsmove_run import FsmoveRunner
from tests.faults.trees import FAST, write_local
from tests.servers import RunningServer, make_tree
from tests.servers.catalog import SERVER_PROGRAMS

DESTINATIONS = ("local", *SERVER_PROGRAMS)
MODES = {".env": 0o600, "run.sh": 0o755, "pub.txt": 0o644, "group/shared.txt": 0o640}


def _mode(path: Path) -> int:
    return stat.S_IMODE(os.stat(path).st_mode)


def _source(tmp_path: Path) -> Path:
    src = tmp_path / "src"
    write_local(src, {rel: f"content of {rel}".encode() for rel in MODES})
    for rel, mode in MODES.items():
        (src / rel).chmod(mode)
    return src


def _destination(name: str, request: pytest.FixtureRequest, tmp_path: Path,
                 fresh_subdir: Callable[[RunningServer], RunningServer]
                 ) -> tuple[str, Path, tuple[str, ...], dict[str, str]]:
    if name == "local":
        return str(tmp_path / "dst"), tmp_path / "dst", (), {}
    server = fresh_subdir(request.getfixturevalue(name))
    options = ("--known-hosts", str(server.known_hosts)) if server.known_hosts else ()
    return server.url(), server.root, options, {"FSMOVE_DST_PASSWORD": server.password}


@pytest.mark.parametrize("name", DESTINATIONS)
def test_permission_bits_are_kept(
    name: str, fsmove: FsmoveRunner, tmp_path: Path, request: pytest.FixtureRequest,
    fresh_subdir: Callable[[RunningServer], RunningServer],
) -> None:
    src = _source(tmp_path)
    url, root, options, env = _destination(name, request, tmp_path, fresh_subdir)
    run = fsmove.run("copy", str(src), url, *options, *FAST, env=env)
    assert run.code == 0, str(run)
    assert {rel: _mode(root / rel) for rel in MODES} == MODES


@pytest.mark.parametrize("name", ("local", "sshd_server", "vsftpd_server"))
def test_no_perms_never_widens(
    name: str, fsmove: FsmoveRunner, tmp_path: Path, request: pytest.FixtureRequest,
    fresh_subdir: Callable[[RunningServer], RunningServer],
) -> None:
    src = _source(tmp_path)
    url, root, options, env = _destination(name, request, tmp_path, fresh_subdir)
    run = fsmove.run("copy", str(src), url, "--no-perms", *options, *FAST, env=env)
    assert run.code == 0, str(run)
    got = {rel: _mode(root / rel) for rel in MODES}
    assert got == {".env": 0o600, "run.sh": 0o644, "pub.txt": 0o644,
                   "group/shared.txt": 0o640}


@pytest.mark.parametrize("name", ("vsftpd_server", "pureftpd_server", "proftpd_server"))
def test_an_ftp_source_gives_its_listed_bits(
    name: str, fsmove: FsmoveRunner, tmp_path: Path, request: pytest.FixtureRequest,
    fresh_subdir: Callable[[RunningServer], RunningServer],
) -> None:
    server = fresh_subdir(request.getfixturevalue(name))
    make_tree(server, {rel: b"x" for rel in MODES})
    for rel, mode in MODES.items():
        (server.root / rel).chmod(mode)
    dst = tmp_path / "dst"
    run = fsmove.run("copy", server.url(), str(dst), *FAST,
                     env={"FSMOVE_SRC_PASSWORD": server.password})
    assert run.code == 0, str(run)
    assert {rel: _mode(dst / rel) for rel in MODES} == MODES
