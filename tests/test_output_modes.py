"""What `fsmove copy` prints, in each mode (issue 16), run as a real process:

* on a real pseudo-terminal (tmux, 80 columns): the live display fits the width and
  shows the transfers in flight; it is erased at the end (the summary stays); Ctrl-C
  prints the error on a line of its own and no bar is drawn again;
* redirected to a file: no carriage return and no escape sequence, ``progress:`` lines
  every ``--stats`` interval, then the summary; ``--stats 0``: none;
* ``-q``: the summary only; ``-v``: one line per file; ``--log-file``: stamped lines;
* ``--json``: one event per line ending with a ``summary`` in every outcome (ok, fatal
  error, Ctrl-C);
* ``--dry-run``: what would be copied, skipped and deleted, never a progress line.

Copies that must last a while are slowed by ``--bwlimit`` (the rate limiter guarantees a
minimum duration however fast the machine); nothing asserts on wall-clock durations or
on how many lines an interval produced, only on the structure. Waits poll for a state
with a bounded loop.
"""

from __future__ import annotations

import json
import os
import re
import shutil
import signal
import subprocess
import sys
import time
import uuid
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

TMUX = shutil.which("tmux") or "/usr/bin/tmux"
WAIT = 90.0
PROGRESS = re.compile(
    r"^progress: [\d.]+ (B|KiB|MiB|GiB) of [\d.]+ (B|KiB|MiB|GiB) \(\d+%\), \d+ of \d+ files, "
    r"[\d.]+ (B|KiB|MiB|GiB)/s, ETA \S+, elapsed \S+(, \d+ in flight)?(, \d+ failed)?$")
BAR_GLYPHS = "━─"


def wait_for(what: str, check: Callable[[], bool], timeout: float = WAIT) -> None:
    deadline = time.monotonic() + timeout
    while not check():
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out waiting for {what}")
        time.sleep(0.05)


def fsmove_cmd(*args: str) -> list[str]:
    return [sys.executable, "-m", "fsmove.cli", *args]


@pytest.fixture
def tree(tmp_path: Path) -> Path:
    """Six files of 384 KiB in two folders, one with a long name."""
    src = tmp_path / "src"
    for i in range(6):
        folder = src / ("photos/2024/a folder with a rather long name, like people make"
                        if i % 2 else "docs")
        folder.mkdir(parents=True, exist_ok=True)
        (folder / f"file-{i}.bin").write_bytes(os.urandom(384 * 1024))
    return src


def run(*args: str, cwd: Path | None = None) -> subprocess.CompletedProcess[str]:
    return subprocess.run(fsmove_cmd(*args), capture_output=True, text=True, timeout=WAIT,
                          check=False, stdin=subprocess.DEVNULL, cwd=cwd)


# ---------------------------------------------------------------------------------------
# Redirected output.
# ---------------------------------------------------------------------------------------


def test_redirected_output_has_plain_progress_lines_and_the_summary(
    tree: Path, tmp_path: Path
) -> None:
    log = tmp_path / "copy.log"
    with log.open("w") as out:
        done = subprocess.run(
            fsmove_cmd("copy", str(tree), str(tmp_path / "dst"), "--journal",
                       str(tmp_path / "j.db"), "--bwlimit", "2M", "--stats", "0.2s"),
            stdout=out, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL, timeout=WAIT,
            check=False)
    assert done.returncode == 0
    raw = log.read_bytes()
    assert b"\r" not in raw and b"\x1b" not in raw  # no carriage return, no escape
    lines = raw.decode().splitlines()
    progress = [i for i, line in enumerate(lines) if line.startswith("progress:")]
    # 2.25 MiB at 2 MiB/s lasts at least a second: several 0.2 s intervals.
    assert progress, lines
    for i in progress:
        assert PROGRESS.match(lines[i]), lines[i]
    summary = lines.index("Copy ok.")
    assert max(progress) < summary
    assert lines[summary + 1].startswith("  copied:   6 files, 2.2 MiB in ")
    assert "MiB/s" in lines[summary + 1] and "MB/s" not in raw.decode()


def test_stats_zero_prints_only_the_summary(tree: Path, tmp_path: Path) -> None:
    done = run("copy", str(tree), str(tmp_path / "dst"), "--journal", str(tmp_path / "j.db"),
               "--stats", "0")
    assert done.returncode == 0
    assert done.stderr.splitlines()[0] == "Copy ok."
    assert "progress:" not in done.stderr


def test_quiet_prints_the_summary_and_verbose_each_file(tree: Path, tmp_path: Path) -> None:
    quiet = run("copy", str(tree), str(tmp_path / "q"), "--journal", str(tmp_path / "q.db"),
                "-q", "--stats", "0.01s")
    assert quiet.returncode == 0
    assert quiet.stderr.splitlines()[0] == "Copy ok." and "progress:" not in quiet.stderr
    verbose = run("copy", str(tree), str(tmp_path / "v"), "--journal", str(tmp_path / "v.db"),
                  "-v", "--stats", "0")
    copied = sorted(line for line in verbose.stderr.splitlines() if line.startswith("copied:"))
    assert len(copied) == 6
    assert copied[0] == "copied: docs/file-0.bin (384.0 KiB)"
    both = run("copy", str(tree), str(tmp_path / "x"), "-q", "-v")
    assert both.returncode == 2
    assert both.stderr == "fsmove: error: --quiet and --verbose exclude each other\n"


def test_log_file_keeps_stamped_progress_summary_and_exit(tree: Path, tmp_path: Path) -> None:
    log = tmp_path / "overnight.log"
    done = run("copy", str(tree), str(tmp_path / "dst"), "--journal", str(tmp_path / "j.db"),
               "--bwlimit", "2M", "--stats", "0.2s", "--log-file", str(log), "-q")
    assert done.returncode == 0
    lines = log.read_text().splitlines()
    stamp = r"^\d{4}-\d\d-\d\d \d\d:\d\d:\d\d "
    assert all(re.match(stamp, line) for line in lines), lines
    bodies = [line[20:] for line in lines]
    assert bodies[0] == "fsmove copy: started"
    assert any(PROGRESS.match(b) for b in bodies)
    assert "Copy ok." in bodies and bodies[-1] == "fsmove copy: exit 0"


# ---------------------------------------------------------------------------------------
# JSON: a summary in every outcome.
# ---------------------------------------------------------------------------------------


def _events(text: str) -> list[dict[str, object]]:
    return [json.loads(line) for line in text.splitlines()]


def test_json_ends_with_a_summary_when_ok_and_on_a_fatal_error(
    tree: Path, tmp_path: Path
) -> None:
    ok = run("copy", str(tree), str(tmp_path / "dst"), "--journal", str(tmp_path / "j.db"),
             "--json")
    events = _events(ok.stdout)  # every line is JSON
    assert events[-1]["type"] == "summary" and events[-1]["status"] == "ok"
    assert events[-1]["exit_code"] == 0 and events[-1]["files_copied"] == 6
    assert [e for e in events if e["type"] == "summary"] == [events[-1]]
    assert ok.stderr == ""

    fatal = run("copy", str(tmp_path / "missing"), str(tmp_path / "d2"), "--json")
    assert fatal.returncode == 1
    (summary,) = _events(fatal.stdout)
    assert summary["type"] == "summary" and summary["status"] == "error"
    assert summary["exit_code"] == 1 and "does not exist" in str(summary["error"])
    assert fatal.stderr.startswith("fsmove: error: ") and fatal.stderr.count("\n") == 1


def test_a_reader_of_the_json_stream_that_goes_away_stops_the_run_with_one_line(
        tmp_path: Path) -> None:
    """``fsmove copy ... --json | head -1``: before session 32 the run ended at once with
    exit 1 and nothing on stderr (its job "failed: internal error (BrokenPipeError)").
    Now one line says what happened and what to do; the rerun finishes the copy.
    (More events than a pipe holds: the run cannot end before the reader goes.)"""
    src = tmp_path / "src"
    src.mkdir()
    for i in range(2000):
        (src / f"f{i:04d}").write_bytes(b"x")
    journal = tmp_path / "job.db"
    args = ["copy", str(src), str(tmp_path / "dst"), "--json", "--journal", str(journal)]
    proc = subprocess.Popen(fsmove_cmd(*args), stdout=subprocess.PIPE,
                            stderr=subprocess.PIPE, stdin=subprocess.DEVNULL, text=True)
    assert proc.stdout is not None and proc.stderr is not None
    assert json.loads(proc.stdout.readline())["type"] == "plan"
    proc.stdout.close()
    err = proc.stderr.read()
    assert proc.wait(timeout=WAIT) == 1
    assert err.splitlines() == ["fsmove: error: standard output could not be written "
                                "(broken pipe: whatever read it ended): the run stopped; "
                                "rerun the same command to resume"], err
    again = run(*args)
    assert again.returncode == 0, again.stderr
    assert len(os.listdir(tmp_path / "dst")) == 2000


def test_a_reader_of_stderr_that_goes_away_stops_the_run_and_says_why_in_the_log(
        tmp_path: Path) -> None:
    """``fsmove copy -v ... 2>&1 | head -1``: nowhere to say it, so the log file and the
    job's state say it (before session 32: "internal error (BrokenPipeError)")."""
    src = tmp_path / "src"
    src.mkdir()
    for i in range(2000):
        (src / f"f{i:04d}").write_bytes(b"x")
    log = tmp_path / "run.log"
    args = ["copy", str(src), str(tmp_path / "dst"), "-v", "--log-file", str(log),
            "--journal", str(tmp_path / "job.db")]
    proc = subprocess.Popen(fsmove_cmd(*args), stdout=subprocess.DEVNULL,
                            stderr=subprocess.PIPE, stdin=subprocess.DEVNULL, text=True)
    assert proc.stderr is not None
    assert proc.stderr.readline().startswith("copied: ")
    proc.stderr.close()
    assert proc.wait(timeout=WAIT) == 1
    assert "fsmove: error: standard error could not be written (broken pipe" \
        in log.read_text()
    assert "internal error" not in log.read_text()


def test_verify_whose_last_lines_cannot_be_written_says_so_in_one_line(
        tmp_path: Path) -> None:
    """``verify --json --list-all | head -c 10`` (the verdict and the summary are
    written after the work), ``verify --json > /dev/full``: before session 33 a
    traceback each (the output's closing was outside the entry wrapper; ENOSPC was not
    caught). Now one line, exit 1, and "nothing was changed" (verify writes nothing)."""
    src, dst = tmp_path / "src", tmp_path / "dst"
    for root in (src, dst):
        root.mkdir()
        for i in range(2000):
            (root / f"f{i:04d}").write_bytes(b"x" * (i % 50))
    args = ["verify", str(src), str(dst), "--json", "--list-all"]
    proc = subprocess.Popen(fsmove_cmd(*args), stdout=subprocess.PIPE,
                            stderr=subprocess.PIPE, stdin=subprocess.DEVNULL)
    assert proc.stdout is not None and proc.stderr is not None
    proc.stdout.read(10)
    proc.stdout.close()
    err = proc.stderr.read().decode()
    assert proc.wait(timeout=WAIT) == 1
    assert err.splitlines() == ["fsmove: error: standard output could not be written "
                                "(broken pipe: whatever read it ended): the run stopped; "
                                "nothing was changed, rerun the same command to start "
                                "again"], err
    with open("/dev/full", "w") as full:
        done = subprocess.run(fsmove_cmd(*args), stdout=full, stderr=subprocess.PIPE,
                              stdin=subprocess.DEVNULL, text=True, timeout=WAIT,
                              check=False)
    assert done.returncode == 1
    assert done.stderr.splitlines() == [
        "fsmove: error: standard output could not be written (its disk is full): the run "
        "stopped; nothing was changed, rerun the same command to start again"], done.stderr


@pytest.mark.parametrize("closed", [1, 2], ids=["stdout", "stderr"])
def test_a_standard_stream_closed_from_the_start_is_no_internal_error(
        tmp_path: Path, closed: int) -> None:
    """``fsmove copy a b 2>&-`` (or ``>&-``): the copy did its work, then "internal
    error: AttributeError: 'NoneType' object has no attribute 'write'", exit 1, before
    session 33. The lines go nowhere; the exit code says how it ended."""
    src = tmp_path / "src"
    src.mkdir()
    (src / "a.txt").write_text("a")
    journal = str(tmp_path / "job.db")
    script = ("import os, sys\n"
              f"os.close({closed})\n"
              "os.execv(sys.executable, [sys.executable, *sys.argv[1:]])\n")
    for command in ("copy", "verify"):
        done = subprocess.run([sys.executable, "-c", script, *fsmove_cmd(
            command, str(src), str(tmp_path / "dst"), "--journal", journal)[1:]],
                              capture_output=closed != 1, stdin=subprocess.DEVNULL,
                              timeout=WAIT, check=False, text=True)
        assert done.returncode == 0, (command, done)
    assert (tmp_path / "dst" / "a.txt").read_text() == "a"


def test_json_ends_with_a_summary_on_ctrl_c(tree: Path, tmp_path: Path) -> None:
    proc = subprocess.Popen(
        fsmove_cmd("copy", str(tree), str(tmp_path / "dst"), "--journal",
                   str(tmp_path / "j.db"), "--bwlimit", "200K", "--json"),
        stdout=subprocess.PIPE, stderr=subprocess.PIPE, stdin=subprocess.DEVNULL, text=True,
        env={**os.environ, "PYTHONUNBUFFERED": "1"})
    assert proc.stdout is not None
    try:
        seen = []
        for line in proc.stdout:  # until the copy is under way (events, not time)
            seen.append(json.loads(line))
            if seen[-1]["type"] == "file_started":
                break
        proc.send_signal(signal.SIGINT)
        rest, err = proc.communicate(timeout=WAIT)
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
    assert proc.returncode == 130
    events = seen + _events(rest)
    assert events[-1]["type"] == "summary" and events[-1]["status"] == "interrupted"
    assert events[-1]["exit_code"] == 130
    assert err.startswith("fsmove: error: interrupted")


# ---------------------------------------------------------------------------------------
# Dry run.
# ---------------------------------------------------------------------------------------


def test_dry_run_says_what_it_would_do(tree: Path, tmp_path: Path) -> None:
    dst = tmp_path / "dst"
    assert run("copy", str(tree), str(dst), "--journal", str(tmp_path / "j.db"),
               "-q").returncode == 0
    (tree / "docs" / "new.txt").write_bytes(b"n" * 2048)
    (dst / "docs" / "old.txt").write_bytes(b"o" * 100)

    plain = run("copy", str(tree), str(dst), "--dry-run", "--delete", "--stats", "0.01s")
    assert plain.returncode == 0
    assert "progress:" not in plain.stderr and "\r" not in plain.stderr
    assert plain.stderr.splitlines() == [
        "would delete: docs/old.txt (100 B)",
        "Dry run: nothing was written.",
        "  would copy:   1 file, 2.0 KiB",
        "  would skip:   6 files already identical, 2.2 MiB",
        "  would delete: 1 file only in the destination",
    ]
    verbose = run("copy", str(tree), str(dst), "--dry-run", "--delete", "-v")
    assert "would copy: docs/new.txt (2.0 KiB)" in verbose.stderr.splitlines()
    assert sum(line.startswith("would skip: ") for line in verbose.stderr.splitlines()) == 6
    assert not (dst / "docs" / "new.txt").exists() and (dst / "docs" / "old.txt").exists()
    # Without --delete nothing would be deleted, and a dry run says so (before session
    # 32 it listed "would delete" files the real run never touches).
    keep = run("copy", str(tree), str(dst), "--dry-run", "-v")
    assert "would delete" not in keep.stderr, keep.stderr

    as_json = _events(run("copy", str(tree), str(dst), "--dry-run", "--json").stdout)
    assert as_json[-1]["status"] == "dry-run" and as_json[-1]["would_copy"] == 1
    planned = [e for e in as_json if e["type"] == "file_planned"]
    assert {(e["path"], e["action"]) for e in planned if e["action"] == "copy"} == {
        ("docs/new.txt", "copy")}


# ---------------------------------------------------------------------------------------
# A real terminal: tmux at 80 columns.
# ---------------------------------------------------------------------------------------


class Tmux:
    """A private tmux server (its own socket) holding one 80x24 window."""

    def __init__(self, socket_name: str) -> None:
        self.socket = socket_name

    def cmd(self, *args: str) -> str:
        done = subprocess.run([TMUX, "-L", self.socket, *args], capture_output=True,
                              text=True, timeout=30, check=False)
        assert done.returncode == 0, done.stderr
        return done.stdout

    def start(self, command: str, *, width: int = 80, height: int = 24) -> None:
        self.cmd("new-session", "-d", "-s", "t", "-x", str(width), "-y", str(height),
                 command)

    def screen(self) -> list[str]:
        return self.cmd("capture-pane", "-p", "-t", "t").splitlines()


@pytest.fixture
def tmux() -> Iterator[Tmux]:
    if not os.access(TMUX, os.X_OK):
        pytest.fail("tmux is missing: apt-get install -y tmux")
    t = Tmux(f"fsmove-test-{uuid.uuid4().hex[:12]}")
    try:
        yield t
    finally:
        subprocess.run([TMUX, "-L", t.socket, "kill-server"], capture_output=True,
                       timeout=30, check=False)


def _shell_line(tree: Path, tmp_path: Path, *extra: str) -> str:
    argv = " ".join(f"'{a}'" for a in fsmove_cmd("copy", str(tree), str(tmp_path / "dst"),
                                                 "--journal", str(tmp_path / "j.db"), *extra))
    return f"cd '{tmp_path}' && {argv}; echo EXIT=$?; sleep 600"


def test_live_display_fits_80_columns_and_shows_transfers(
    tree: Path, tmp_path: Path, tmux: Tmux
) -> None:
    tmux.start(_shell_line(tree, tmp_path, "--bwlimit", "1M", "--workers", "3"))

    def live() -> bool:
        text = "\n".join(tmux.screen())
        return "Copying" in text and "file-" in text and "EXIT=" not in text

    wait_for("the live display with transfers", live)
    screen = tmux.screen()
    assert all(len(line) <= 80 for line in screen)
    head = next(line for line in screen if line.startswith("Copying "))
    assert re.match(r"^Copying [\d.]+ \S+ of 2\.2 MiB +\d+% +[\d.]+ \S+/s +ETA \S+$", head)
    bar = screen[screen.index(head) + 1]
    # The bar is the whole width but the last column (see live_display.py).
    assert len(bar) == 79 and set(bar) <= set(BAR_GLYPHS)
    assert screen[screen.index(head) + 2].startswith("Files ")
    transfers = [line for line in screen if "file-" in line]
    assert 1 <= len(transfers) <= 3
    for line in transfers:  # path shortened in the middle, share and size at the right
        assert re.search(r"\d+% of +[\d.]+ KiB$", line), line
    assert any("…" in line for line in transfers if "long name" in line or "photos" in line) \
        or all("photos" not in line for line in transfers)

    wait_for("the end of the copy", lambda: any("EXIT=" in x for x in tmux.screen()))
    screen = tmux.screen()
    assert "EXIT=0" in screen
    assert "Copy ok." in screen
    assert not any(set(line) & set(BAR_GLYPHS) for line in screen)  # display erased
    assert not any(line.startswith("Copying ") for line in screen)


def test_ctrl_c_prints_the_error_on_its_own_line(tree: Path, tmp_path: Path,
                                                  tmux: Tmux) -> None:
    tmux.start(_shell_line(tree, tmp_path, "--bwlimit", "100K"))
    wait_for("the live display",
             lambda: any(line.startswith("Copying ") for line in tmux.screen()))
    tmux.cmd("send-keys", "-t", "t", "C-c")
    wait_for("the exit", lambda: any("EXIT=" in x for x in tmux.screen()))
    screen = [line for line in tmux.screen() if line.strip()]
    assert screen[-1] == "EXIT=130"
    error = [line for line in screen if "fsmove: error:" in line]
    assert len(error) == 1 and error[0].startswith("fsmove: error: interrupted")
    assert not any(set(line) & set(BAR_GLYPHS) for line in screen)  # no stale bar
    assert not any(line.startswith(("Copying ", "Files ")) for line in screen), screen


def test_verify_has_the_same_output_modes(tree: Path, tmp_path: Path) -> None:
    dst = tmp_path / "dst"
    assert run("copy", str(tree), str(dst), "--journal", str(tmp_path / "j.db"),
               "-q").returncode == 0
    plain = run("verify", str(tree), str(dst), "--no-journal", "--stats", "0.01s")
    assert plain.returncode == 0
    assert "\r" not in plain.stdout + plain.stderr and "\x1b" not in plain.stderr
    for line in plain.stderr.splitlines():
        assert re.match(r"^progress: \d+ of \d+\+? paths checked, [\d.]+ \S+ read at "
                        r"[\d.]+ \S+/s, \d+ problems, elapsed \S+$", line), line
    assert plain.stdout.splitlines()[0] == "Everything matched."
    quiet = run("verify", str(tree), str(dst), "-q")
    assert quiet.stdout.splitlines()[0] == "Everything matched." and quiet.stderr == ""

    events = _events(run("verify", str(tree), str(dst), "--json").stdout)
    assert [e["type"] for e in events] == ["verification", "summary"]
    assert events[0]["verdict"] == "match" and events[0]["schema"] == "fsmove.verify/1"
    assert events[1]["status"] == "match" and events[1]["exit_code"] == 0

    both = _events(run("copy", str(tree), str(tmp_path / "d2"), "--verify", "--json",
                       "--journal", str(tmp_path / "j2.db")).stdout)
    assert [e["type"] for e in both][-2:] == ["verification", "summary"]
    assert both[-1]["status"] == "ok" and both[-1]["verification"] == "match"
