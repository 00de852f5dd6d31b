"""Jobs as a user sees them: `fsmove resume` replays every option (printed first) and
picks only a job that really started; `fsmove status` tells the truth (ok, partial,
interrupted, failed: why) in a table with percent and ETA; `--prune`; a journal that is
damaged in any way is set aside; `--journal` never touches what is not a journal; a
full journal filesystem is one line."""

from __future__ import annotations

import contextlib
import os
import sqlite3
import stat
import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from dataclasses import replace
from pathlib import Path

import pytest
from typer.testing import CliRunner

from fsmove.cli import app
from fsmove.commands.job_options import JobOptions, describe, from_record, to_record
from fsmove.commands.status import eta_seconds
from fsmove.endpoint_access import ConnectOptions
from fsmove.transfers.backend import EntryKind
from fsmove.transfers.copy import CopyOptions
from fsmove.transfers.jobs import JobStatus, digest_lookup, read_meta, read_status
from fsmove.transfers.journal import Journal
from tests.copy_harness import put_files, run_copy_inprocess, side_for, tree_digests
from tests.servers import RunningServer


@pytest.fixture
def state_dir(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """Jobs live in their own XDG state dir for each test."""
    monkeypatch.setenv("XDG_STATE_HOME", str(tmp_path / "state"))
    return tmp_path / "state" / "fsmove" / "jobs"


def _trees(tmp_path: Path, n: int = 5) -> tuple[Path, Path]:
    src, dst = tmp_path / "src", tmp_path / "dst"
    put_files(None, src, {f"d/f{i}.txt": f"file {i}\n".encode() * 100 for i in range(n)})
    dst.mkdir(exist_ok=True)
    return src, dst


def _job(journal: Path, src: Path, dst: Path, *, options: JobOptions | None = None,
         ends: str = "interrupted", planned: bool = True) -> None:
    """A journal as a real run leaves it: options, one run that planned (or not)."""
    with Journal(journal, src=str(src), dst=str(dst)) as j:
        j.set_options(to_record(options or JobOptions(copy=CopyOptions(),
                                                      connect=ConnectOptions())))
        j.start_run()
        if planned:
            j.plan([("d/f0.txt", 700, None, "pending")])
        j.finish_run(ends, note="login refused for bob" if ends == "failed" else None)


def test_every_copy_option_is_journaled_and_comes_back() -> None:
    job = JobOptions(
        copy=CopyOptions(workers=7, checksum=True, delete=True, preserve_mtime=False,
                         filters=replace(CopyOptions().filters, include=("*.jpg",),
                                         exclude=("tmp/",)),
                         bwlimit=2 * 1024 * 1024, retries=9, retry_delay=0.25),
        connect=ConnectOptions(timeout=12.5, known_hosts=Path("/k/known"),
                               accept_new_host_key=True, identity_files=(Path("/k/id"),),
                               ca_file=Path("/k/ca.pem"), insecure_tls=True),
        src_connections=3, dst_connections=4, verify=True, reports=(Path("/r/x.json"),),
    )
    assert from_record(to_record(job)) == job
    # An older journal (seven keys) takes the copy command's defaults for the rest.
    old = from_record({"checksum": True, "delete": False, "mtime": True, "include": [],
                       "exclude": [], "src_connections": None, "dst_connections": 2})
    assert old.copy.bwlimit is None and old.copy.retries == CopyOptions().retries
    assert old.copy.checksum and old.dst_connections == 2
    # Recorded under the filter rules of before session 34 (any "/" anchored, "*"
    # crossed folders): resumed, each pattern keeps what it matched then.
    assert from_record({"include": ["*.jpg"]}).copy.filters.include == ("*.jpg",)
    first = from_record({"delete": True,
                         "exclude": ["cache/*.html", "logs/", "tmp", "*/index.html"]})
    excludes = first.copy.filters.excludes
    assert excludes("cache/p/x.html", EntryKind.FILE) and excludes("logs", EntryKind.DIR)
    assert not excludes("sub/logs", EntryKind.DIR) and excludes("x/tmp", EntryKind.DIR)
    assert excludes("a/b/index.html", EntryKind.FILE)
    assert not excludes("index.html", EntryKind.FILE)  # "*/" needed a folder then
    assert "--exclude cache/*.html" in describe(first)
    text = describe(job)
    for flag in ("--bwlimit 2.0MiB/s", "--retries 9", "--retry-delay 0.25", "--timeout 12.5",
                 "--ca-file /k/ca.pem", "--identity /k/id", "--insecure-tls", "--delete",
                 "--verify", "--include *.jpg", "--exclude tmp/", "--dst-connections 4"):
        assert flag in text, (flag, text)


def test_resume_replays_the_saved_options_and_prints_the_job_first(
    tmp_path: Path, state_dir: Path
) -> None:
    src, dst = _trees(tmp_path)
    journal = state_dir / "0123abcd.db"
    saved = JobOptions(copy=CopyOptions(bwlimit=2 * 1024 * 1024, retries=2, retry_delay=0.5),
                       connect=ConnectOptions(timeout=7.0))
    _job(journal, src, dst, options=saved)
    result = CliRunner().invoke(app, ["resume", "0123abcd", "-q"])
    assert result.exit_code == 0, result.output
    first = result.stderr.splitlines()[:2]
    assert first[0].startswith("fsmove: resuming job 0123abcd (interrupted): ")
    assert f"{src} -> {dst}" in first[0]
    assert "--bwlimit 2.0MiB/s" in first[1] and "--retries 2" in first[1]
    assert "--timeout 7" in first[1]
    assert tree_digests(dst) == tree_digests(src)
    # The replayed options are the job's options still (the journal keeps them).
    assert from_record(read_status(journal).options or {}) == saved
    # An option given to resume replaces the saved one.
    again = CliRunner().invoke(app, ["resume", "0123abcd", "-q", "--bwlimit", "5M"])
    assert again.exit_code == 0 and "--bwlimit 5.0MiB/s" in again.stderr


def test_a_saved_delete_is_replayed_and_said_first(tmp_path: Path, state_dir: Path) -> None:
    src, dst = _trees(tmp_path)
    (dst / "stale.txt").write_text("not in the source")
    _job(state_dir / "feedbeef.db", src, dst,
         options=JobOptions(copy=CopyOptions(delete=True), connect=ConnectOptions()))
    result = CliRunner().invoke(app, ["resume", "feedbeef", "-q"])
    assert result.exit_code == 0, result.output
    assert "--delete" in result.stderr and "started with --delete" in result.stderr
    assert not (dst / "stale.txt").exists()


def test_resume_without_an_id_never_picks_a_job_that_never_started(
    tmp_path: Path, state_dir: Path
) -> None:
    src, dst = _trees(tmp_path)
    _job(state_dir / "aaaa1111.db", src, dst)  # interrupted during the copy
    other_src, other_dst = _trees(tmp_path / "other")
    _job(state_dir / "bbbb2222.db", other_src, other_dst, ends="failed", planned=False)
    result = CliRunner().invoke(app, ["resume", "-q"])
    assert result.exit_code == 0, result.output
    assert "resuming job aaaa1111" in result.stderr
    assert tree_digests(dst) == tree_digests(src)
    assert not list(other_dst.iterdir())


def test_resume_without_an_id_refuses_when_several_are_unfinished(
    tmp_path: Path, state_dir: Path
) -> None:
    for name in ("aaaa1111", "bbbb2222"):
        src, dst = _trees(tmp_path / name)
        _job(state_dir / f"{name}.db", src, dst)
    result = CliRunner().invoke(app, ["resume"])
    assert result.exit_code == 2
    line = result.stderr.strip()
    assert line.startswith("fsmove: error: 2 unfinished jobs:") and "\n" not in line
    assert "aaaa1111 (interrupted:" in line and "bbbb2222 (interrupted:" in line
    assert "fsmove resume JOB" in line


def test_status_states_header_percent_and_prune(tmp_path: Path, state_dir: Path) -> None:
    src, dst = _trees(tmp_path)
    _job(state_dir / "00000001.db", src, dst, ends="ok")
    _job(state_dir / "00000002.db", src, dst, ends="partial")
    _job(state_dir / "00000003.db", src, dst, ends="failed", planned=False)
    _job(state_dir / "00000004.db", src, dst, ends="interrupted")
    # A failed login after a finished job leaves it finished.
    with Journal(state_dir / "00000001.db", src=str(src), dst=str(dst)) as j:
        j.start_run()
        j.finish_run("failed", note="login refused for bob")
    result = CliRunner().invoke(app, ["status"])
    assert result.exit_code == 0, result.output
    lines = result.stdout.splitlines()
    assert lines[0].split()[:6] == ["JOB", "STATE", "FILES", "BYTES", "DONE", "ETA"]
    rows = {line.split()[0]: line for line in lines[1:]}
    assert rows["00000001"].split()[1] == "ok"
    assert rows["00000002"].split()[1] == "partial"
    assert "failed: login refused for bob" in rows["00000003"]
    assert rows["00000004"].split()[1] == "interrupted"
    assert "0%" in rows["00000004"]
    # A long reason is cut in the table (a row per job stays readable), whole in detail.
    with Journal(state_dir / "00000003.db", src=str(src), dst=str(dst)) as j:
        j.start_run()
        j.finish_run("failed", note="the server said " + "x" * 300)
    cut = CliRunner().invoke(app, ["status"]).stdout
    row = next(line for line in cut.splitlines() if line.startswith("00000003"))
    assert "x" * 60 not in row and "..." in row
    whole = CliRunner().invoke(app, ["status", "00000003"]).stdout
    assert "x" * 300 in whole
    # A FIFO named like a journal is not a job (its open hung `status` past SIGTERM).
    os.mkfifo(state_dir / "fifo.db")
    assert "fifo" not in CliRunner().invoke(app, ["status"]).stdout
    (state_dir / "fifo.db").unlink()
    # Prune: jobs idle for longer than the age go, a running one never does.
    with Journal(state_dir / "00000004.db", src=str(src), dst=str(dst)):
        pruned = CliRunner().invoke(app, ["status", "--prune", "--older-than", "0s"])
        assert pruned.exit_code == 0, pruned.output
    assert sorted(p.name for p in state_dir.glob("*.db")) == ["00000004.db"]
    assert CliRunner().invoke(app, ["status", "--prune", "--older-than", "soon"]).exit_code == 2
    kept = CliRunner().invoke(app, ["status", "--prune"])  # default 30d: nothing that old
    assert kept.exit_code == 0 and "no job idle" in kept.stdout


@pytest.mark.interop
def test_a_failed_login_on_a_finished_job_keeps_it_ok(
    vsftpd_server: RunningServer, fresh_subdir: Callable[[RunningServer], RunningServer],
    tmp_path: Path,
) -> None:
    server = fresh_subdir(vsftpd_server)
    src = side_for("local", None, tmp_path / "src", "src")
    src.put({"a.txt": b"alpha"})
    dst = side_for("vsftpd", server, server.root, "dst")
    journal = tmp_path / "job.db"
    assert run_copy_inprocess(src, dst, journal=journal).exit_code == 0
    wrong = dst.__class__(kind=dst.kind, url=dst.url, root=dst.root, server=dst.server,
                          env={"FSMOVE_DST_PASSWORD": "not-the-password"})
    refused = run_copy_inprocess(src, wrong, journal=journal)
    assert refused.exit_code == 5, refused.output
    assert read_status(journal).state == "ok"


@pytest.mark.parametrize("damage", ["truncate-half", "garbage-in-the-middle", "not-sqlite"])
def test_a_damaged_journal_is_set_aside_whatever_the_damage(
    tmp_path: Path, damage: str
) -> None:
    src_root, dst_root = _trees(tmp_path, n=300)
    src = side_for("local", None, src_root, "src")
    dst = side_for("local", None, dst_root, "dst")
    journal = tmp_path / "job.db"
    assert run_copy_inprocess(src, dst, journal=journal).exit_code == 0
    data = journal.read_bytes()
    assert len(data) > 8192
    if damage == "truncate-half":
        journal.write_bytes(data[: len(data) // 2])
    elif damage == "garbage-in-the-middle":
        mid = len(data) // 2
        journal.write_bytes(data[:mid] + os.urandom(4096) + data[mid + 4096:])
    else:
        journal.write_bytes(b"garbage" * 1000)
    again = run_copy_inprocess(src, dst, journal=journal)
    assert again.exit_code == 0, again.output
    warnings = [line for line in again.output.splitlines() if "warning" in line]
    assert len(warnings) == 1 and "new one started" in warnings[0], again.output
    assert "internal error" not in again.output
    aside = [p for p in tmp_path.glob("job.db.damaged-*") if p.name[-1].isdigit()]
    assert len(aside) == 1
    assert read_status(journal).state == "ok"


def test_a_journal_from_a_newer_fsmove_is_refused_and_left_as_it_was(tmp_path: Path) -> None:
    """A journal whose ``schema`` is above this version's (written by a newer fsmove,
    then an older one ran): its rows may mean what this version cannot know. Copy and
    resume refuse it (exit 2, one line saying what to do) before writing anything to
    it; verify does not take its digests. Before session 33 it was used silently."""
    src_root, dst_root = _trees(tmp_path)
    src = side_for("local", None, src_root, "src")
    dst = side_for("local", None, dst_root, "dst")
    journal = tmp_path / "job.db"
    assert run_copy_inprocess(src, dst, journal=journal).exit_code == 0
    with contextlib.closing(sqlite3.connect(journal)) as db, db:
        db.execute("UPDATE meta SET value='99' WHERE key='schema'")
        runs_before = db.execute("SELECT COUNT(*) FROM runs").fetchone()[0]
    again = run_copy_inprocess(src, dst, journal=journal)
    assert again.exit_code == 2, again.output
    lines = [line for line in again.output.splitlines() if line.startswith("fsmove:")]
    assert len(lines) == 1 and "written by a newer fsmove" in lines[0], again.output
    assert "--journal" in lines[0] and "Traceback" not in again.output
    with contextlib.closing(sqlite3.connect(journal)) as db:
        assert db.execute("SELECT COUNT(*) FROM runs").fetchone()[0] == runs_before
        assert db.execute("SELECT value FROM meta WHERE key='schema'").fetchone()[0] == "99"
    assert digest_lookup(journal) == {}
    verified = CliRunner().invoke(app, ["verify", str(src_root), str(dst_root),
                                        "--journal", str(journal)])
    assert verified.exit_code == 0, verified.output


def test_journal_path_that_is_a_folder_or_a_device_is_refused(tmp_path: Path) -> None:
    src, dst = _trees(tmp_path)
    folder = tmp_path / "a-folder"
    folder.mkdir(mode=0o755)
    (folder / "inside.txt").write_text("mine")
    device = tmp_path / "null"  # a private /dev/null: the real one is never at risk here
    os.mknod(device, 0o666 | stat.S_IFCHR, os.makedev(1, 3))
    device.chmod(0o666)
    link = tmp_path / "link.db"
    link.symlink_to(tmp_path / "elsewhere.db")
    for bad in (folder, device, link):
        result = CliRunner().invoke(app, ["copy", str(src), str(dst), "--journal", str(bad),
                                          "-q"])
        assert result.exit_code == 2, result.output
        assert result.stderr.startswith("fsmove: error: journal ") and str(bad) in result.stderr
    assert folder.is_dir() and stat.S_IMODE(folder.stat().st_mode) == 0o755
    assert (folder / "inside.txt").read_text() == "mine"
    assert stat.S_ISCHR(device.stat().st_mode) and stat.S_IMODE(device.stat().st_mode) == 0o666
    assert link.is_symlink() and not (tmp_path / "elsewhere.db").exists()
    assert not list(dst.iterdir())


@pytest.fixture
def full_disk(tmp_path: Path) -> Iterator[Path]:
    """A tiny tmpfs, filled to the last byte (the suite runs as root)."""
    mount = tmp_path / "full"
    mount.mkdir()
    subprocess.run(["mount", "-t", "tmpfs", "-o", "size=256k", "tmpfs", str(mount)],
                   check=True)
    try:
        fd = os.open(mount / "filler", os.O_WRONLY | os.O_CREAT, 0o600)
        try:
            while os.write(fd, b"\0" * 4096):
                pass
        except OSError:
            pass  # ENOSPC: full
        finally:
            os.close(fd)
        yield mount
    finally:
        subprocess.run(["umount", "-l", str(mount)], check=False)


def test_a_full_journal_filesystem_is_one_line_naming_the_folder(
    tmp_path: Path, full_disk: Path
) -> None:
    src, dst = _trees(tmp_path)
    journal = full_disk / "jobs" / "job.db"
    result = CliRunner().invoke(app, ["copy", str(src), str(dst), "--journal", str(journal),
                                      "-q"])
    assert result.exit_code == 1, result.output
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1, result.stderr
    assert lines[0].startswith("fsmove: error: the journal's folder ")
    assert str(journal.parent) in lines[0] and "full" in lines[0]


def test_eta_is_the_rest_at_the_current_runs_rate(tmp_path: Path) -> None:
    def job(*, running: bool) -> JobStatus:
        return JobStatus(path=tmp_path / "x.db", src="a", dst="b", counts={"partial": 1},
                         bytes_total=1000, bytes_done=500, run_status="running",
                         run_started=100.0, last_activity=110.0, bytes_sent_last_run=100,
                         bytes_resent_last_run=0, running=running, state="running")

    assert eta_seconds(job(running=True)) == 50.0  # 500 B left at 10 B/s
    assert eta_seconds(job(running=False)) is None


@pytest.mark.parametrize("options", ['{"format": 1, "include": "*.x"}',
                                     '{"format": 1, "bwlimit": -5}', "not json {"])
def test_damaged_saved_options_are_refused_not_guessed(tmp_path: Path, options: str) -> None:
    """Before session 32 a bare string for --include was taken letter by letter (the
    filter widened to every file), a negative rate was an internal error, and options
    that were not JSON were dropped without a word (a saved --delete with them)."""
    src_root, dst_root = _trees(tmp_path, n=3)
    src = side_for("local", None, src_root, "src")
    dst = side_for("local", None, dst_root, "dst")
    journal = tmp_path / "job.db"
    assert run_copy_inprocess(src, dst, journal=journal).exit_code == 0
    with contextlib.closing(sqlite3.connect(journal)) as db, db:
        db.execute("UPDATE meta SET value=? WHERE key='options'", (options,))
        db.execute("UPDATE runs SET status='interrupted'")
    result = CliRunner().invoke(app, ["resume", str(journal)])
    assert result.exit_code == 1, result.output
    assert "options saved with job" in result.output and "damaged" in result.output
    assert "Traceback" not in result.output and "internal error" not in result.output


def test_a_report_that_cannot_be_written_is_said_before_reading_or_after_the_verdict(
    tmp_path: Path, full_disk: Path
) -> None:
    """Before session 33 a ``--report`` in a folder that cannot be written was found
    only at the end of the verification, whose verdict was then lost ("Permission
    denied: .r.html.tmp", exit 1); a full disk said "No space left on device" without
    naming the report and left its temporary file. Now an unwritable folder is refused
    before anything is read (exit 2), and a write that fails at the end comes after the
    verdict, naming the report, with no temporary file left."""
    src, dst = _trees(tmp_path)
    assert CliRunner().invoke(app, ["copy", str(src), str(dst), "-q",
                                    "--journal", str(tmp_path / "j.db")]).exit_code == 0
    refused = CliRunner().invoke(app, ["verify", str(src), str(dst),
                                       "--report", "/proc/r.html"])
    assert refused.exit_code == 2, refused.output
    assert refused.stderr.startswith("fsmove: error: --report /proc/r.html: cannot write")
    report = full_disk / "r.html"
    late = CliRunner().invoke(app, ["verify", str(src), str(dst), "--report", str(report)])
    assert late.exit_code == 1, late.output
    assert "Everything matched" in late.stdout + late.stderr, late.output
    lines = [x for x in late.stderr.splitlines() if x.startswith("fsmove: error:")]
    assert lines == [f"fsmove: error: --report {report} could not be written (No space left "
                     "on device); the verification's result is above"], late.output
    assert sorted(os.listdir(full_disk)) == ["filler"]


def _slow_copy(tmp_path: Path, journal: Path, rate: str = "3M") -> subprocess.Popen[str]:
    """A copy of 18 MB at ``rate`` (6 s at 3M): the journal is looked after once a
    second meanwhile (the engine's ticker)."""
    src = tmp_path / "src"
    for i in range(6):
        (src / f"f{i}.bin").parent.mkdir(parents=True, exist_ok=True)
        (src / f"f{i}.bin").write_bytes(os.urandom(3 * 1024 * 1024))
    return subprocess.Popen(
        [sys.executable, "-m", "fsmove.cli", "copy", str(src), str(tmp_path / "dst"),
         "--journal", str(journal), "--bwlimit", rate, "--workers", "2"],
        stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)


def _has_progress(journal: Path) -> bool:
    """Whether the journal records bytes done (False while it is being made: its file
    exists before its tables do)."""
    try:
        return journal.exists() and read_status(journal).bytes_done > 0
    except sqlite3.Error:
        return False


def _until(condition: Callable[[], bool], proc: subprocess.Popen[str]) -> None:
    deadline = time.monotonic() + 60
    while not condition():
        assert proc.poll() is None, "the copy ended first"
        assert time.monotonic() < deadline, "never happened"
        time.sleep(0.01)  # polling a state, bounded


def test_a_journal_removed_twice_is_put_back_twice(tmp_path: Path) -> None:
    """The second removal went unseen before session 33's pass on its own change: the
    run ended saying "nothing was lost" with no journal at the path."""
    journal = tmp_path / "state" / "job.db"
    # 12 s: two removals, each put back within about a second (the engine's ticker),
    # with room to spare on a busy machine.
    proc = _slow_copy(tmp_path, journal, rate="1.5M")
    _until(lambda: _has_progress(journal), proc)
    key = read_meta(journal)["temp_key"]
    for _ in range(2):
        journal.unlink()
        _until(journal.exists, proc)
    _out, err = proc.communicate(timeout=120)
    assert proc.returncode == 0, err
    assert "written back from the open copy" in err
    assert read_meta(journal)["temp_key"] == key
    assert read_status(journal).state == "ok"


def test_another_file_put_at_the_journal_path_is_left_alone(tmp_path: Path) -> None:
    """Another job's journal moved onto the path under a running copy: the run's WAL
    (by name) paired with it, which then read as this job's rows, or as "malformed"
    (session 33's pass). Now the run goes on in a copy beside it and says where; the
    file put there is untouched and the job resumes from the copy."""
    other_src, other_dst = _trees(tmp_path / "other")
    other = tmp_path / "other.db"
    assert CliRunner().invoke(app, ["copy", str(other_src), str(other_dst), "-q",
                                    "--journal", str(other)]).exit_code == 0
    with contextlib.closing(sqlite3.connect(other)) as db:
        db.execute("PRAGMA wal_checkpoint(TRUNCATE)")
    placed = other.read_bytes()
    journal = tmp_path / "state" / "job.db"
    proc = _slow_copy(tmp_path, journal)
    _until(lambda: _has_progress(journal), proc)
    scratch = journal.with_name("placing.db")
    scratch.write_bytes(placed)
    os.replace(scratch, journal)
    _out, err = proc.communicate(timeout=120)
    assert proc.returncode == 0, err
    assert "was left alone; this job went on in" in err, err
    assert journal.read_bytes() == placed  # untouched, no WAL of ours beside it
    assert not Path(f"{journal}-wal").exists() or Path(f"{journal}-wal").stat().st_size == 0
    with contextlib.closing(sqlite3.connect(journal)) as db:
        assert db.execute("PRAGMA integrity_check").fetchone()[0] == "ok"
        assert db.execute("SELECT value FROM meta WHERE key='src'").fetchone()[0] \
            == str(other_src)
    aside = next(tmp_path.glob("state/job.db.set-aside-*"))
    assert read_status(aside).state == "ok"
