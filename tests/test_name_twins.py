"""A destination that holds twins as one name (``transfers/name_twins.py``,
``copy/name_gate.py``).

An FTP server on Windows, or a macOS or Windows disk, holds ``Logo.png`` and
``logo.png`` as one file (macOS's APFS also ``café`` in NFC and in NFD). Before the
check, a source folder holding both was "copied" whole while the destination kept one
of them (a wrong file called copied), and ``--delete`` removed a destination
``report.txt`` whose source is ``Report.txt`` right after copying the source's file
onto it (the destination lost the file). The server here is aioftp's, serving its
folder as NTFS or APFS is served (``tests/servers/aioftpd.py``, ``ignore``): no
filesystem that ignores case or normalization can be mounted on the test machines.
"""

from __future__ import annotations

import asyncio
import json
import os
import subprocess
import sys
from collections.abc import Callable, Iterator
from dataclasses import replace
from pathlib import Path

import pytest

from fsmove.transfers.backend import Entry
from fsmove.transfers.endpoint import parse_endpoint
from fsmove.transfers.local import LocalStore
from fsmove.transfers.march import march
from fsmove.transfers.name_twins import (
    FolderNames,
    Folding,
    differences,
    loose_key,
    twin_variants,
)
from fsmove.transfers.plan import FileRules, FolderPlan
from fsmove.transfers.policy import NO_RETRIES
from fsmove.transfers.pool import SessionPool
from fsmove.transfers.survey import open_sides
from fsmove.transfers.tree import TreeRules, is_probe_leftover, probe_scratch_name
from fsmove.transfers.walk import WalkIssue
from tests.copy_harness import put_files
from tests.servers import RunningServer
from tests.servers.aioftpd import start_aioftp


@pytest.fixture
def folding_server(tmp_path: Path) -> Iterator[RunningServer]:
    with start_aioftp(tmp_path / "folding", ignore=("case",)) as server:
        yield server


@pytest.fixture
def apfs_server(tmp_path: Path) -> Iterator[RunningServer]:
    with start_aioftp(tmp_path / "apfs", ignore=("case", "normalization")) as server:
        yield server


@pytest.fixture
def plain_server(tmp_path: Path) -> Iterator[RunningServer]:
    with start_aioftp(tmp_path / "plain") as server:
        yield server


MTIME = 1_700_000_000


def files_under(root: Path) -> dict[str, bytes]:
    return {p.relative_to(root).as_posix(): p.read_bytes()
            for p in sorted(root.rglob("*")) if p.is_file()}


def copy(src: Path, server: RunningServer, tmp_path: Path, *more: str
         ) -> tuple[subprocess.CompletedProcess[str], dict[str, object]]:
    run = copy_run(src, server, tmp_path, "--json", *more)
    events = [json.loads(line) for line in run.stdout.splitlines() if line.startswith("{")]
    summary = next(e for e in events if e.get("type") == "summary")
    return run, summary


def copy_run(src: Path, server: RunningServer, tmp_path: Path, *more: str
             ) -> subprocess.CompletedProcess[str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("FSMOVE_")}
    env.update(FSMOVE_DST_PASSWORD=server.password, XDG_STATE_HOME=str(tmp_path / "state"))
    if server.known_hosts is not None:
        more = ("--known-hosts", str(server.known_hosts), *more)
    return subprocess.run(
        [sys.executable, "-m", "fsmove.cli", "copy", str(src), server.url(),
         "--journal", str(tmp_path / "job.sqlite"), "--retries", "1", *more],
        env=env, capture_output=True, text=True, timeout=300, check=False,
        stdin=subprocess.DEVNULL)


def twins_tree(src: Path) -> None:
    (src / "Img").mkdir(parents=True)
    (src / "img").mkdir()
    (src / "Img" / "a.png").write_bytes(b"upper folder's file")
    (src / "img" / "b.png").write_bytes(b"lower folder's file")
    (src / "Logo.png").write_bytes(b"the upper-case logo")
    (src / "logo.png").write_bytes(b"the lower-case logo, longer")
    (src / "other.txt").write_bytes(b"no twin")


def test_twins_in_one_source_folder_copy_one_and_refuse_the_other(
        folding_server: RunningServer, tmp_path: Path) -> None:
    # A first run: the destination root does not exist yet (the question is asked
    # once it does).
    folding_server = replace(folding_server, url_path="/new/deep/",
                             root=folding_server.root / "new" / "deep")
    src = tmp_path / "src"
    twins_tree(src)
    run, summary = copy(src, folding_server, tmp_path)
    assert run.returncode == 3, run.stderr
    assert "Traceback" not in run.stderr
    refused = dict(summary["refused"])  # type: ignore[arg-type]
    assert len(refused) == 2, summary
    assert all("ignores case" in why for why in refused.values())
    # Exactly one of each pair is at the destination, with its own bytes: the one the
    # message says was copied.
    held = files_under(folding_server.root)
    expected = {rel: (src / rel).read_bytes() for rel in
                ("Img/a.png", "img/b.png", "Logo.png", "logo.png", "other.txt")
                if rel not in refused and rel.split("/")[0] not in refused}
    assert held == expected
    assert len(held) == 3
    assert not any(is_probe_leftover(p.name) for p in folding_server.root.iterdir())

    again, summary2 = copy(src, folding_server, tmp_path)
    assert again.returncode == 3, again.stderr
    assert dict(summary2["refused"]) == refused  # type: ignore[arg-type]
    assert summary2["files_copied"] == 0
    assert files_under(folding_server.root) == expected

    # For people: each said once as refused (and once as it was found), not also
    # under FAILED with "rerun the same command to retry them".
    told = copy_run(src, folding_server, tmp_path)
    assert told.returncode == 3, told.stderr
    assert "FAILED" not in told.stderr and "retry" not in told.stderr
    twin = next(t for t in ("Logo.png", "logo.png") if t not in refused)
    assert told.stderr.count(f"from {twin!r} in the same folder") == 2


@pytest.mark.parametrize("server_fixture", ["plain_server", "vsftpd_server", "sshd_server"])
def test_a_destination_that_tells_case_apart_gets_both_twins(
        server_fixture: str, request: pytest.FixtureRequest,
        fresh_subdir: Callable[[RunningServer], RunningServer], tmp_path: Path) -> None:
    """Linux servers (every bucket of Clever Cloud's) answer the question with "no":
    both twins copied, no scratch file left, a rerun skips them all."""
    server: RunningServer = request.getfixturevalue(server_fixture)
    if server_fixture != "plain_server":
        server = fresh_subdir(server)
    src = tmp_path / "src"
    twins_tree(src)
    run, summary = copy(src, server, tmp_path)
    assert run.returncode == 0, run.stderr
    assert summary["refused"] == []
    assert files_under(server.root) == files_under(src)
    assert not any(is_probe_leftover(p.name) for p in server.root.iterdir())
    again, summary2 = copy(src, server, tmp_path)
    assert again.returncode == 0, again.stderr
    assert summary2["files_copied"] == 0 and summary2["files_skipped"] == 5


def test_delete_keeps_a_destination_file_that_is_the_source_s_in_another_case(
        folding_server: RunningServer, tmp_path: Path) -> None:
    """The destination holds ``report.txt`` (an older copy, another case); the source
    has ``Report.txt``. Before, ``--delete`` copied the source's file over it, then
    deleted ``report.txt``: the destination lost the file. Now nothing is deleted but
    what the source lacks, and a rerun has nothing to do."""
    root = folding_server.root
    (root / "report.txt").write_bytes(b"old report")
    (root / "stale.txt").write_bytes(b"gone from the source")
    src = tmp_path / "src"
    src.mkdir()
    (src / "Report.txt").write_bytes(b"new report, longer")
    (src / "kept.txt").write_bytes(b"an ordinary file")
    run, _summary = copy(src, folding_server, tmp_path, "--delete")
    assert run.returncode == 0, run.stderr
    held = {rel.lower(): data for rel, data in files_under(root).items()}
    assert held == {"report.txt": b"new report, longer", "kept.txt": b"an ordinary file"}

    again, summary2 = copy(src, folding_server, tmp_path, "--delete")
    assert again.returncode == 0, again.stderr
    assert summary2["files_copied"] == 0 and summary2["files_skipped"] == 2
    assert {rel.lower(): data for rel, data in files_under(root).items()} == held


def test_a_destination_folder_in_another_case_is_the_source_s(
        folding_server: RunningServer, tmp_path: Path) -> None:
    """The destination holds ``docs/`` where the source has ``Docs/``. Before, making
    ``Docs`` failed ("path already exists") and stopped the copy (exit 1); now it is
    walked as the source's folder: its files compared, nothing of it deleted."""
    root = folding_server.root
    (root / "docs").mkdir()
    (root / "docs" / "guide.txt").write_bytes(b"old guide")
    (root / "docs" / "old.txt").write_bytes(b"gone from the source")
    src = tmp_path / "src"
    (src / "Docs").mkdir(parents=True)
    (src / "Docs" / "guide.txt").write_bytes(b"new guide, longer")
    run, _summary = copy(src, folding_server, tmp_path, "--delete")
    assert run.returncode == 0, run.stderr
    held = {rel.lower(): data for rel, data in files_under(root).items()}
    assert held == {"docs/guide.txt": b"new guide, longer"}

    again, summary2 = copy(src, folding_server, tmp_path, "--delete")
    assert again.returncode == 0, again.stderr
    assert summary2["files_copied"] == 0 and summary2["files_skipped"] == 1


NFC, NFD = "caf\u00e9", "cafe\u0301"  # one name to macOS, two to Linux and Windows


def test_accent_twins_to_a_destination_that_ignores_normalization(
        apfs_server: RunningServer, tmp_path: Path) -> None:
    """``café`` in NFC and in NFD (uploads made from two systems) are one name on APFS:
    one copied, the other refused; an older destination name in the other form is the
    source's file (never deleted by ``--delete``)."""
    src = tmp_path / "src"
    src.mkdir()
    (src / f"{NFC}.txt").write_bytes(b"composed")
    (src / f"{NFD}.txt").write_bytes(b"decomposed, longer")
    run, summary = copy(src, apfs_server, tmp_path)
    assert run.returncode == 3, run.stderr
    [(refused, why)] = summary["refused"]  # type: ignore[misc]
    assert "Unicode normalization" in why and "case" not in why
    assert len(files_under(apfs_server.root)) == 1

    # The destination holds the NFD name; the source now has only the NFC one.
    (src / refused).unlink()
    kept = ({f"{NFC}.txt", f"{NFD}.txt"} - {refused}).pop()
    for p in apfs_server.root.iterdir():
        p.unlink()
    (apfs_server.root / refused).write_bytes(b"an older copy")
    run, summary = copy(src, apfs_server, tmp_path, "--delete")
    assert run.returncode == 0, run.stderr
    assert list(files_under(apfs_server.root).values()) == [(src / kept).read_bytes()]


def test_windows_keeps_accent_twins_apart(folding_server: RunningServer,
                                          tmp_path: Path) -> None:
    """NTFS ignores case, not normalization: ``café`` twins are two files there, and so
    are ``Café`` (NFC) and ``café`` (NFD), which differ both ways."""
    src = tmp_path / "src"
    (src / "both").mkdir(parents=True)
    for name in (f"{NFC}.txt", f"{NFD}.txt", f"both/{NFC}", f"both/C{NFD[1:]}"):
        (src / name).write_bytes(name.encode())
    run, summary = copy(src, folding_server, tmp_path)
    assert run.returncode == 0, run.stderr
    assert summary["refused"] == []
    assert files_under(folding_server.root) == files_under(src)


def test_twin_helpers() -> None:
    assert loose_key("Logo.PNG") == "logo.png"
    assert loose_key(f"C{NFD[1:]}") == loose_key(NFC) == NFC
    assert differences("Logo.png", "logo.png") == ("case",)
    assert differences(NFC, NFD) == ("normalization",)
    assert differences(f"C{NFD[1:]}", NFC) == ("case", "normalization")
    names = FolderNames()
    assert names.twins_of("Logo.png") == []
    assert names.twins_of("Logo.png") == []  # listed twice: not its own twin
    assert names.twins_of("logo.PNG") == ["Logo.png"]
    assert names.twins_of("straße") == []
    assert names.twins_of("STRASSE") == []  # a simple case mapping, as NTFS's
    # A twin let through is kept: the next is compared with both.
    names.keep("logo.PNG")
    assert names.twins_of("LOGO.png") == ["Logo.png", "logo.PNG"]
    assert names.twins_of("logo.PNG") == []
    assert twin_variants({"a/Report.txt", "a/x"}, ["a/x", "a/report.txt", "a/old"]) == {
        "a/report.txt": "a/Report.txt"}
    assert twin_variants({f"a/{NFC}"}, [f"a/{NFD}"]) == {f"a/{NFD}": f"a/{NFC}"}
    assert twin_variants({"a/x"}, ["a/x"]) == {}
    # A copy killed while it asks leaves a scratch file the next run deletes and
    # verify never counts, in whichever form the destination keeps its name.
    scratch = probe_scratch_name()
    for suffix in (".nCASE", ".ncase", f".n{NFC[-1]}", f".n{NFD[-2:]}"):
        assert is_probe_leftover(scratch + suffix)


class _Answers:
    """A destination gate that answers the twin questions as told (the other
    questions: nothing refused)."""

    def __init__(self, answer: bool | None) -> None:
        self.answer = answer
        self.asked = 0

    def suspect(self, entry: Entry) -> bool:
        return False

    async def refusal(self, entry: Entry) -> str | None:
        return None

    async def folds(self, folding: Folding) -> bool | None:
        self.asked += 1
        return self.answer

    def unasked(self, path: str, question: str) -> bool:
        return False  # a run that asks


@pytest.mark.parametrize("folds", [True, False, None])
def test_the_march_takes_the_safe_side_of_each_answer(
        folds: bool | None, tmp_path: Path) -> None:
    """What the march decides with each answer (None: the destination could not be
    asked): never a deletion nor a skip on a guess, never a second twin copied."""
    src, dst = tmp_path / "src", tmp_path / "dst"
    put_files(None, src, {"Report.txt": b"same", "Logo.png": b"L", "logo.png": b"l",
                          "plain.txt": b"p"}, mtime=MTIME)
    put_files(None, dst, {"report.txt": b"same", "plain.txt": b"p", "old.txt": b"o"},
              mtime=MTIME)
    gate = _Answers(folds)
    issues: list[WalkIssue] = []

    async def go() -> list[FolderPlan]:
        pools = [SessionPool(LocalStore(parse_endpoint(str(root))), max_sessions=2)
                 for root in (src, dst)]
        try:
            sides = await open_sides(*pools, dry_run=True)
            rules = FileRules(sides=sides, src=pools[0], dst=pools[1], journal=None,
                              checksum=False, preserve_mtime=True, compares_at_once=2)
            return [plan async for plan in march(
                *pools, sides=sides, src_rules=TreeRules(), dst_rules=TreeRules(),
                rules=rules, listings_at_once=2, retry=NO_RETRIES,
                on_issue=issues.append, dst_names=gate)]
        finally:
            await asyncio.gather(*(p.aclose() for p in pools))

    [plan] = asyncio.run(go())
    copied = sorted(e.path for e in plan.to_copy)
    skipped = sorted(e.path for e in plan.skipped)
    deleted = sorted(e.path for e in plan.to_delete)
    assert gate.asked >= 1
    if folds is False:  # two names there: the march as before
        assert (copied, skipped, deleted) == (
            ["Logo.png", "Report.txt", "logo.png"], ["plain.txt"], ["old.txt", "report.txt"])
        assert issues == []
        return
    # Which twin is first depends on the listing's order (the filesystem's).
    [refused] = [i.path for i in issues]
    kept = ({"Logo.png", "logo.png"} - {refused}).pop()
    if folds:  # one name there: report.txt is Report.txt, identical
        assert (copied, skipped, deleted) == ([kept], ["Report.txt", "plain.txt"],
                                              ["old.txt"])
        assert "ignores case" in issues[0].reason
    else:  # not known: copied, the destination's name neither deleted nor compared
        assert (copied, skipped, deleted) == (sorted([kept, "Report.txt"]), ["plain.txt"],
                                              ["old.txt"])
        assert "could not be asked" in issues[0].reason
