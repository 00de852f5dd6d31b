"""A destination never leads a write outside its root through a symbolic link (issue 14,
item 1): a folder of the destination that is a link to a folder outside it, and a link
planted at the name of fsmove's temporary file. Run against the local disk, OpenSSH's
sftp-server, vsftpd, proftpd and pure-ftpd (the FTP servers follow links in CWD, MKD and
STOR; vsftpd and proftpd list them as links, pure-ftpd too).

Each source file holds a unique token; after the run, no file outside the destination
root holds it, and a file the planted link points at is unchanged.
"""

from __future__ import annotations

import os
import secrets
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest

from fsmove.transfers.jobs import read_meta
from fsmove.transfers.tree import TempNames
from tests.faults.fsmove_run import FsmoveRunner, Run
from tests.faults.trees import FAST, write_local
from tests.servers import RunningServer
from tests.servers.catalog import SERVER_PROGRAMS

STORES = ("local", *SERVER_PROGRAMS)


@dataclass(frozen=True)
class Destination:
    """A destination root, a folder beside it (outside it), and how to reach it."""

    url: str
    root: Path
    outside: Path
    owner: tuple[int, int] | None
    options: tuple[str, ...]
    env: dict[str, str]

    def link(self, rel: str, target_in_outside: str) -> None:
        """A symlink at ``rel`` in the root to ``outside/target_in_outside``, written as
        a relative target so it resolves the same inside an FTP server's chroot."""
        where = self.root / rel
        depth = len(Path(rel).parts)
        target = Path(*([".."] * depth)) / self.outside.name / target_in_outside
        os.symlink(target, where)
        if self.owner is not None:
            os.lchown(where, *self.owner)

    def put_outside(self, name: str, data: bytes) -> None:
        path = self.outside / name
        path.write_bytes(data)
        if self.owner is not None:
            os.chown(path, *self.owner)


@pytest.fixture(params=STORES)
def destination(request: pytest.FixtureRequest, tmp_path: Path,
                fresh_subdir: Callable[[RunningServer], RunningServer]) -> Iterator[Destination]:
    if request.param == "local":
        root = tmp_path / "dst"
        root.mkdir()
        outside = tmp_path / "outside"
        outside.mkdir()
        yield Destination(str(root), root, outside, None, (), {})
        return
    server = fresh_subdir(request.getfixturevalue(request.param))
    outside = server.root.parent / f"{server.root.name}-outside"
    outside.mkdir()
    os.chown(outside, *server.owner)
    options: list[str] = []
    if server.known_hosts is not None:
        options += ["--known-hosts", str(server.known_hosts)]
    yield Destination(server.url(), server.root, outside, server.owner, tuple(options),
                      {"FSMOVE_DST_PASSWORD": server.password})


def _holding(root: Path, token: bytes) -> list[Path]:
    found = []
    for dirpath, _dirs, names in os.walk(root):
        for name in names:
            path = Path(dirpath) / name
            if not path.is_symlink() and path.is_file() and token in path.read_bytes():
                found.append(path)
    return found


def _copy(fsmove: FsmoveRunner, src: Path, dst: Destination, *,
          journal: Path | None = None) -> Run:
    extra = ("--journal", str(journal)) if journal is not None else ()
    return fsmove.run("copy", str(src), dst.url, *dst.options, "--retries", "1", *FAST,
                      *extra, env=dst.env)


def test_a_destination_folder_that_links_outside_is_refused(
    fsmove: FsmoveRunner, tmp_path: Path, destination: Destination
) -> None:
    token = b"fsmove-link-token-" + secrets.token_hex(8).encode()
    src = tmp_path / "src"
    write_local(src, {"sub/secret.txt": b"secret " + token, "sub/deeper/more.txt": token})
    destination.link("sub", "")
    run = _copy(fsmove, src, destination)
    assert run.code in (1, 3), str(run)
    assert "Traceback" not in run.stderr + run.stdout, str(run)
    assert "sub" in run.stderr + run.stdout and "link" in (run.stderr + run.stdout).lower()
    assert not _holding(destination.outside, token), str(run)
    assert list(destination.outside.iterdir()) == [], str(run)
    assert (destination.root / "sub").is_symlink()  # left as it was, never followed


def test_a_link_planted_at_the_temporary_name_is_replaced_not_followed(
    fsmove: FsmoveRunner, tmp_path: Path, destination: Destination
) -> None:
    token = b"fsmove-link-token-" + secrets.token_hex(8).encode()
    src = tmp_path / "src"
    content = b"the real file " + token
    # Temporary names are keyed by the job's secret: a first run makes the job (and
    # its key), as an attacker who read the journal would know it, then the link is
    # planted at the exact name the next run writes a.txt to.
    journal = tmp_path / "job.db"
    write_local(src, {"first.txt": b"first"})
    assert _copy(fsmove, src, destination, journal=journal).code == 0
    write_local(src, {"a.txt": content})
    destination.put_outside("victim", b"victim original")
    key = read_meta(journal)["temp_key"]
    destination.link(TempNames(key).for_path("a.txt"), "victim")
    run = _copy(fsmove, src, destination, journal=journal)
    assert run.code == 0, str(run)
    assert (destination.outside / "victim").read_bytes() == b"victim original"
    assert not _holding(destination.outside, token)
    assert (destination.root / "a.txt").read_bytes() == content
    assert not (destination.root / "a.txt").is_symlink()
