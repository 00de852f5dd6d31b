"""`fsmove demo`: the README's first command, run for real in a subprocess.

The end-to-end run is also the leak check of the demo (it starts fsmove children with
passwords, as a `clever` step would): it runs through the fault suite's launcher, which
records every child's argv and the passwords handed to children by environment, and
every output and file is searched for them (one demo run proves both)."""

from __future__ import annotations

import filecmp
import json
import os
import re
import socket
from pathlib import Path

import pytest
from typer.testing import CliRunner

from fsmove.cli import app
from fsmove.demo.sample import SampleSize, make_sample, plan_sample
from fsmove.transfers.jobs import read_status
from fsmove.transfers.tree import looks_like_temp
from tests.faults.fsmove_run import FsmoveRunner

DEMO_TIMEOUT = 240


def _processes_mentioning(text: str) -> list[str]:
    """Command lines of live processes (other than this one) that mention ``text``."""
    found = []
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit() or int(entry.name) == os.getpid():
            continue
        try:
            cmdline = (entry / "cmdline").read_bytes().replace(b"\0", b" ").decode(
                errors="replace"
            )
        except OSError:
            continue
        if text in cmdline:
            found.append(cmdline)
    return found


def _refuses(port: int) -> bool:
    with socket.socket() as s:
        s.settimeout(2)
        return s.connect_ex(("127.0.0.1", port)) != 0


def _tree(root: Path) -> tuple[set[str], set[str]]:
    files = {str(p.relative_to(root)) for p in root.rglob("*") if p.is_file()}
    dirs = {str(p.relative_to(root)) for p in root.rglob("*") if p.is_dir()}
    return files, dirs


@pytest.mark.timeout(DEMO_TIMEOUT + 30)
def test_demo_runs_to_the_end(tmp_path: Path) -> None:
    fsmove = FsmoveRunner(tmp_path / "fsmove")
    workdir = fsmove.workdir / "demo"
    captured = tmp_path / "captured-secrets"  # outside the scanned folders
    done = fsmove.run("demo", "--size", "small", "--keep", "--workdir", str(workdir),
                      env={"FSMOVE_TEST_SECRETS_OUT": str(captured)}, timeout=DEMO_TIMEOUT)
    out = done.stdout
    assert done.code == 0, str(done)
    assert "Traceback" not in done.stderr, done.stderr

    # The report says everything is identical.
    report = json.loads((workdir / "report.json").read_text())
    assert report["verdict"] == "match"
    totals = report["totals"]
    assert totals["differs"] == totals["only_in_source"] == totals["only_in_destination"] == 0
    assert totals["unreadable"] == 0
    assert totals["content_compared"] == totals["files"] == len(plan_sample(SampleSize.SMALL))
    html = (workdir / "report.html").read_text()
    assert 'data-verdict="match"' in html and "Everything matched." in html
    assert f"HTML report: {workdir / 'report.html'}" in out

    # The copy really was cut, and the resume sent less than everything.
    assert "Killed after" in out
    status = read_status(workdir / "journal.db")
    assert status.run_status == "ok"
    assert status.counts.get("done", 0) + status.counts.get("skipped", 0) == totals["files"]
    assert 0 < status.bytes_sent_last_run < status.bytes_total
    assert re.search(r"The resume sent [\d.]+ \S+ of [\d.]+ MiB", out)
    assert "state:     interrupted" in out  # `fsmove status` after the crash

    # The new bucket is the old one, byte for byte, with nothing of fsmove's left in it.
    old, new = workdir / "old-bucket", workdir / "new-bucket"
    old_files, old_dirs = _tree(old)
    new_files, new_dirs = _tree(new)
    assert new_files == old_files and new_dirs == old_dirs
    assert not [f for f in new_files if looks_like_temp(Path(f).name)]
    _match, mismatch, errors = filecmp.cmpfiles(old, new, sorted(old_files), shallow=False)
    assert mismatch == [] and errors == []

    # The real-bucket commands, with no password anywhere.
    assert "fsmove copy clever://addon_OLD_UUID/ clever://addon_NEW_UUID/" in out
    assert "fsmove cutover --app APP --from addon_OLD_UUID --to addon_NEW_UUID" in out
    # The migrate form the CLI takes (it printed the --from/--to form, gone since).
    assert "fsmove migrate --app APP --to mtl --yes" in out and "migrate --app APP --from" \
        not in out
    assert not re.search(r"ftp://[^/\s@]+:[^/\s@]+@", out + done.stderr)

    # Nothing left running: no server port open, no child process.
    ports = [int(p) for p in re.findall(r"ftp://demo@127\.0\.0\.1:(\d+)/", out)]
    assert len(set(ports)) == 2
    assert all(_refuses(p) for p in set(ports))
    assert _processes_mentioning(str(workdir)) == []

    # Children got their passwords by environment only: never in an argv, nor in anything
    # the demo printed or wrote (journal with its WAL, reports, the kept buckets).
    assert fsmove.child_argvs(), "the demo started no child process"
    handed = set(captured.read_text().split())
    assert len(handed) >= 2, "the children got no password by environment"
    fsmove.secret(*handed)
    fsmove.check_no_leaks()


def test_demo_refuses_a_workdir_that_holds_a_demo(tmp_path: Path) -> None:
    """Checked before any server starts: usage error, nothing overwritten."""
    workdir = tmp_path / "w"
    workdir.mkdir()
    (workdir / "journal.db").write_bytes(b"")
    result = CliRunner().invoke(app, ["demo", "--workdir", str(workdir)])
    assert result.exit_code == 2
    assert "already holds a demo" in result.output


def test_demo_help_reads_well() -> None:
    result = CliRunner().invoke(app, ["demo", "--help"])
    assert result.exit_code == 0
    for words in ("--workdir", "--keep", "--size", "small", "normal", "crash"):
        assert words in result.output
    top = CliRunner().invoke(app, ["--help"])
    assert "demo" in top.output and "--install-completion" in top.output


def test_sample_is_deterministic_and_realistic(tmp_path: Path) -> None:
    assert plan_sample(SampleSize.SMALL) == plan_sample(SampleSize.SMALL)
    assert plan_sample(SampleSize.SMALL, seed=1) != plan_sample(SampleSize.SMALL, seed=2)
    normal = plan_sample(SampleSize.NORMAL)
    assert 250 <= len(normal) <= 400
    assert 120 * 2**20 <= sum(f.size for f in normal) <= 200 * 2**20
    assert sum(f.size >= 24 * 2**20 for f in normal) == 3

    a = make_sample(tmp_path / "a", SampleSize.SMALL)
    b = make_sample(tmp_path / "b", SampleSize.SMALL)
    assert b.files == a.files
    assert 3 * 2**20 <= a.total_bytes <= 7 * 2**20
    paths = {f.path for f in a.files}
    assert any(" " in p for p in paths) and any(not p.isascii() for p in paths)
    assert any(p.count("/") >= 3 for p in paths)
    assert any(f.size == 0 for f in a.files)
    empty_dirs = [d for d in a.dirs if not any((tmp_path / "a" / d).iterdir())]
    assert empty_dirs == ["uploads/2025/01"]
    for f in a.files:
        left, right = tmp_path / "a" / f.path, tmp_path / "b" / f.path
        assert left.read_bytes() == right.read_bytes()
        assert left.stat().st_size == f.size
        assert abs(left.stat().st_mtime - f.mtime) < 1
    with pytest.raises(FileExistsError):
        make_sample(tmp_path / "a", SampleSize.SMALL)


def test_a_demo_whose_copy_fails_says_so_and_leaves_nothing(tmp_path: Path) -> None:
    """The child copy refused at once (its state folder cannot be written): before
    session 33 the child's line was followed by "internal error: TypeError:
    Summary.__init__() missing 7 required positional arguments" (a fatal error's
    summary read as the engine's) and an empty /tmp/fsmove-demo-* folder stayed."""
    fsmove = FsmoveRunner(tmp_path / "fsmove")
    not_a_folder = tmp_path / "a-file"
    not_a_folder.write_text("")
    temp = tmp_path / "tmp"
    temp.mkdir()
    done = fsmove.run("demo", "--size", "small",
                      env={"XDG_STATE_HOME": str(not_a_folder), "TMPDIR": str(temp)},
                      timeout=DEMO_TIMEOUT)
    assert done.code == 1, str(done)
    assert "internal error" not in done.stderr and "Traceback" not in done.stderr, str(done)
    assert "fsmove: error: cannot write fsmove's state folder" in done.stderr, str(done)
    assert "the first copy ended by itself (exit 5)" in done.stderr, str(done)
    assert os.listdir(temp) == []
