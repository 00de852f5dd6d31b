"""A folder listing the server cut short is never taken for the folder's whole content.

pure-ftpd stops every LIST, MLSD and NLST at 10,000 entries by default
(``--limitrecursion 10000:5``) and ends it with "226 Output truncated to 10000
matches". Before: the files past the cut were neither copied nor verified, ``--delete``
removed their copies at the destination, and the run said "ok" (here, with a limit of
100 and 150 files: 51 destination files deleted, verify "identical"). Now such a
listing fails its folder: the run is partial (exit 3), nothing is deleted, verify does
not say identical, and the message says what to change.

A real pure-ftpd 1.0.50 with its limit lowered to 100 (the same cut as 10,000, with a
folder small enough for a quick test).
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from collections.abc import Callable
from pathlib import Path

import pytest

from fsmove.transfers.ftp.folders import says_listing_cut
from tests.servers import RunningServer
from tests.servers.pureftpd import start_pureftpd

FILES = 150


@pytest.fixture
def cutting_server(own_server: Callable[..., RunningServer]) -> RunningServer:
    return own_server(start_pureftpd, listing_limit="100:5")


def _fsmove(*args: str, server: RunningServer, tmp_path: Path
            ) -> subprocess.CompletedProcess[str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("FSMOVE_")}
    env.update(FSMOVE_SRC_PASSWORD=server.password, FSMOVE_DST_PASSWORD=server.password,
               XDG_STATE_HOME=str(tmp_path / "state"))
    return subprocess.run([sys.executable, "-m", "fsmove", *args], env=env,
                          capture_output=True, text=True, timeout=300, check=False,
                          stdin=subprocess.DEVNULL)


def _fill(folder: Path, owner: tuple[int, int] | None = None) -> None:
    folder.mkdir(parents=True)
    for i in range(FILES):
        (folder / f"f{i:04d}.txt").write_bytes(b"file %d" % i)
    if owner is not None:
        for p in (folder, *folder.iterdir()):
            os.chown(p, *owner)


def test_a_cut_source_listing_fails_its_folder_and_deletes_nothing(
        cutting_server: RunningServer, tmp_path: Path) -> None:
    _fill(cutting_server.root / "uploads", cutting_server.owner)
    (cutting_server.root / "small.txt").write_bytes(b"s")
    dst = tmp_path / "dst"
    _fill(dst / "uploads")  # a copy made earlier, complete

    run = _fsmove("copy", cutting_server.url(), str(dst), "--delete", "--json",
                  server=cutting_server, tmp_path=tmp_path)
    assert run.returncode == 3, run.stderr
    assert "Traceback" not in run.stderr
    summary = next(json.loads(line) for line in run.stdout.splitlines()
                   if '"summary"' in line)
    assert summary["files_deleted"] == 0
    [(path, why)] = summary["failed"]
    assert path == "uploads"
    assert "the server cut this folder's listing short ('226 Output truncated to 100 " \
        "matches')" in why
    assert "--limitrecursion" in why
    assert len(list((dst / "uploads").iterdir())) == FILES  # nothing deleted
    assert (dst / "small.txt").read_bytes() == b"s"  # the rest of the tree copied

    verify = _fsmove("verify", cutting_server.url(), str(dst),
                     server=cutting_server, tmp_path=tmp_path)
    assert verify.returncode != 0, verify.stdout
    assert "cut this folder's listing short" in verify.stdout + verify.stderr


def test_a_cut_destination_listing_is_said_where_delete_needs_it(
        cutting_server: RunningServer, tmp_path: Path) -> None:
    """At the destination a cut listing hides files ``--delete`` should remove: the
    folder's files are copied again (taken as absent: nothing lost) and, with
    ``--delete``, the folder fails (exit 3) instead of a silent "ok" that left the
    extra files there. Without ``--delete`` there is nothing it could not do: exit 0."""
    src = tmp_path / "src"
    _fill(src / "uploads")
    there = cutting_server.root / "uploads"
    _fill(there, cutting_server.owner)
    (there / "old.txt").write_bytes(b"only at the destination")
    os.chown(there / "old.txt", *cutting_server.owner)

    run = _fsmove("copy", str(src), cutting_server.url(), "--delete", "--json",
                  server=cutting_server, tmp_path=tmp_path)
    assert run.returncode == 3, run.stderr
    summary = next(json.loads(line) for line in run.stdout.splitlines()
                   if '"summary"' in line)
    assert summary["files_copied"] == FILES
    [(path, why)] = summary["failed"]
    assert path == "uploads"
    assert why.startswith("could not list this folder at the destination, so --delete "
                          "cannot clean it: "), why
    assert "Output truncated to 100 matches" in why
    assert (there / "old.txt").exists()
    # A dry run says so too (as a failure to come), and writes nothing.
    dry = _fsmove("copy", str(src), cutting_server.url(), "--delete", "--dry-run",
                  server=cutting_server, tmp_path=tmp_path)
    assert dry.returncode == 0, dry.stderr
    assert "  would fail: 1 file (the real run stops at them too)\n    uploads: could " \
        "not list this folder at the destination, so --delete cannot clean it" in dry.stderr
    plain = _fsmove("copy", str(src), cutting_server.url(), "-q",
                    server=cutting_server, tmp_path=tmp_path)
    assert plain.returncode == 0, plain.stderr


def test_a_folder_under_the_limit_is_copied_whole(
        cutting_server: RunningServer, tmp_path: Path) -> None:
    """The check reads the listing's final reply only: a folder the server lists whole
    (its reply says nothing of a cut) copies as ever, to and from the same server."""
    src = tmp_path / "src"
    src.mkdir()
    for i in range(90):
        (src / f"g{i:03d}.txt").write_bytes(b"%d" % i)
    up = _fsmove("copy", str(src), cutting_server.url("in/"), "-q",
                 server=cutting_server, tmp_path=tmp_path)
    assert up.returncode == 0, up.stderr
    down = _fsmove("copy", cutting_server.url("in/"), str(tmp_path / "back"), "-q",
                   server=cutting_server, tmp_path=tmp_path)
    assert down.returncode == 0, down.stderr
    assert sorted(p.name for p in (tmp_path / "back").iterdir()) == sorted(
        p.name for p in src.iterdir())


@pytest.mark.parametrize(("reply", "cut"), [
    ("226 Output truncated to 10000 matches", True),  # pure-ftpd 1.0.50, as measured
    ("226-Options: -a -l \n226 Output truncated to 100 matches", True),
    ("226 Listing truncated", True),
    # pure-ftpd 1.0.50's 2xx for a listing it could not make at all (seen for a glob).
    ('226-Out of memory during globbing of /big/f00*\n226-(This probably means '
     '"Permission denied")\n226-Options: -a -l \n226 0 matches total', True),
    ("226 Directory send OK.", False),  # vsftpd
    ("226 Transfer complete", False),  # proftpd
    ("226 150 matches total", False),  # pure-ftpd, whole
    # A server that quotes the path (FileZilla Server): a folder's name is not news.
    ('226 Successfully transferred "/logs/output truncated to 5"', False),
    ('226 Successfully transferred "/truncated"', False),
])
def test_what_says_a_listing_was_cut(reply: str, cut: bool) -> None:
    """The words of a cut, not any mention of one: a false "cut" fails a whole folder."""
    assert says_listing_cut(reply) is cut
