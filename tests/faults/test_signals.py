"""Ctrl-C (SIGINT) and SIGTERM at different moments of `fsmove copy` and `fsmove verify`:
exit 130 with one line, no traceback, the journal says "interrupted" and the rerun
finishes the job; `--json` still ends with a summary event. Each signal is sent at a
state the test observes (an event, the handler being installed), never after a delay."""

from __future__ import annotations

import contextlib
import signal
import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

from tests.copy_harness import tree_digests
from tests.faults.fsmove_run import Child, FsmoveRunner, OpenHold
from tests.faults.hostile_ftpd import HostileDir, HostileFile, mlsd_line, start_hostile_ftpd
from tests.faults.trees import KiB, random_files, write_local
from tests.servers import RunningServer


def _wait_until_handling(proc: subprocess.Popen[str], signum: int) -> None:
    """Until the process catches ``signum`` (its SigCgt mask in /proc), bounded."""
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline and proc.poll() is None:
        status = Path(f"/proc/{proc.pid}/status").read_text()
        caught = int(next(x for x in status.splitlines() if x.startswith("SigCgt:")).split()[1],
                     16)
        if caught & (1 << (signum - 1)):
            return
        time.sleep(0.01)  # polling a state, not waiting for time to pass
    raise AssertionError(f"fsmove never installed a handler for signal {signum}")


@contextlib.contextmanager
def _hang_up_at_its_default() -> Iterator[None]:
    """Children started meanwhile get SIGHUP at its default disposition, whatever this
    process has: a suite run under ``nohup`` has it ignored, which fsmove keeps on
    purpose (``entry.stop_signals``), and a hang-up test then saw a copy run on to exit
    0 (seen in a CI check run under nohup, session 35)."""
    before = signal.signal(signal.SIGHUP, signal.SIG_DFL)
    try:
        yield
    finally:
        signal.signal(signal.SIGHUP, before)


def _check_interrupted(child: Child) -> None:
    run = child.finish()
    assert run.code == 130, str(run)
    assert "Traceback" not in run.stderr and "never retrieved" not in run.stderr, str(run)
    lines = run.stderr.strip().splitlines()
    assert lines == ["fsmove: error: interrupted: the journal is saved; rerun the same "
                     "command to resume"], str(run)


@pytest.mark.parametrize(("moment", "signum"), [
    ("started", signal.SIGTERM),
    ("plan", signal.SIGINT),
    ("file_started", signal.SIGTERM),
    ("file_done", signal.SIGINT),
    ("file_done", signal.SIGTERM),
    ("file_started", signal.SIGHUP),  # the terminal or ssh session closed (session 35)
])
def test_copy_interrupted_at_any_moment_exits_130_and_resumes(
    fsmove: FsmoveRunner, tmp_path: Path, moment: str, signum: int
) -> None:
    src, dst = tmp_path / "src", tmp_path / "dst"
    files = random_files(12, 512 * KiB, seed=7)
    write_local(src, files)
    journal = tmp_path / "job.db"
    args = ("copy", str(src), str(dst), "--journal", str(journal), "--json",
            "--bwlimit", "1M", "--workers", "2")
    with _hang_up_at_its_default():
        child = fsmove.start(*args)
    if moment == "started":
        _wait_until_handling(child.proc, signum)
    else:
        child.wait_for(lambda e: e.get("type") == moment)
    child.proc.send_signal(signum)
    _check_interrupted(child)
    if moment != "started":
        assert child.events[-1]["type"] == "summary", child.events[-3:]
        assert child.events[-1]["status"] == "interrupted"
    if journal.exists():  # (a signal before the journal was opened leaves none)
        status = fsmove.run("status", str(journal), "--json")
        assert status.code == 0, str(status)
        assert '"state": "interrupted"' in status.stdout or moment == "started", str(status)
    again = fsmove.run("copy", str(src), str(dst), "--journal", str(journal), "-q")
    assert again.code == 0, str(again)
    assert tree_digests(dst) == tree_digests(src)


def test_a_hang_up_under_nohup_does_not_stop_the_copy(
    fsmove: FsmoveRunner, tmp_path: Path
) -> None:
    """Started with SIGHUP ignored (``nohup``, ``trap '' HUP``), a hang-up leaves the
    copy running to its end: the user asked it to outlive the terminal."""
    src, dst = tmp_path / "src", tmp_path / "dst"
    files = random_files(6, 512 * KiB, seed=9)
    write_local(src, files)
    before = signal.signal(signal.SIGHUP, signal.SIG_IGN)  # inherited by the child
    try:
        child = fsmove.start("copy", str(src), str(dst), "--json", "--bwlimit", "1M",
                             "--workers", "2")
    finally:
        signal.signal(signal.SIGHUP, before)
    child.wait_for(lambda e: e.get("type") == "file_done")
    child.proc.send_signal(signal.SIGHUP)
    run = child.finish()
    assert run.code == 0, str(run)
    assert child.events[-1]["type"] == "summary" and child.events[-1]["status"] == "ok"
    assert tree_digests(dst) == tree_digests(src)


@pytest.mark.parametrize("signum", [signal.SIGINT, signal.SIGTERM])
def test_verify_interrupted_exits_130(
    fsmove: FsmoveRunner, tmp_path: Path, signum: int
) -> None:
    """A source whose file stalls half-way: the verify is surely still reading when the
    signal comes."""
    data = b"x" * 200_000
    tree = {b"/": HostileDir((mlsd_line("file", b"a.bin", len(data)),)),
            b"/a.bin": HostileFile(data, stall_after=1000)}
    dst = tmp_path / "dst"
    write_local(dst, {"a.bin": data})
    with start_hostile_ftpd(tree) as server:
        fsmove.secret(server.password)
        child = fsmove.start("verify", server.url(), str(dst), "--timeout", "120",
                             env={"FSMOVE_SRC_PASSWORD": server.password})
        _wait_until_handling(child.proc, signal.SIGTERM)
        child.proc.send_signal(signum)
        run = child.finish()
    assert run.code == 130, str(run)
    assert "Traceback" not in run.stderr, str(run)
    # Verify writes nothing: no journal to speak of (before session 32 it said one
    # was saved, to resume).
    assert run.stderr.strip().splitlines() == [
        "fsmove: error: interrupted: nothing was changed; rerun the same command to start "
        "again"], str(run)


@pytest.mark.parametrize("signum", [signal.SIGINT, signal.SIGKILL], ids=["INT", "KILL"])
def test_copy_verify_interrupted_in_its_verification_is_unfinished_and_resumes(
    fsmove: FsmoveRunner, tmp_path: Path, signum: int
) -> None:
    """``copy --verify --report``: the copy done, the verification held while it opens
    ``big.bin`` (the copy opened it once, at the source). Before session 32 the job
    said "ok" from the copy's end: ``fsmove status`` vouched for an unverified copy,
    ``fsmove resume`` found "no unfinished job", and the report was never written."""
    src, dst = tmp_path / "src", tmp_path / "dst"
    write_local(src, random_files(5, 64 * KiB, seed=3) | {"big.bin": b"b" * 300_000})
    journal, report = tmp_path / "job.db", tmp_path / "report.html"
    hold = OpenHold(tmp_path / "hold", "big.bin", nth=2)
    child = fsmove.start("copy", str(src), str(dst), "--journal", str(journal), "--json",
                         "--verify", "--report", str(report), env=hold.env())
    try:
        hold.wait(child)
        assert sum(e.get("type") == "file_done" for e in child.events) == 6, child.events
        child.proc.send_signal(signum)
    finally:
        hold.release()
    run = child.finish()
    assert run.code == (130 if signum == signal.SIGINT else -signal.SIGKILL), str(run)
    assert not report.exists()
    status = fsmove.run("status", str(journal), "--json")
    assert '"state": "interrupted"' in status.stdout, str(status)
    resumed = fsmove.run("resume", str(journal), "-q")
    assert resumed.code == 0, str(resumed)
    assert report.exists()
    assert '"state": "ok"' in fsmove.run("status", str(journal), "--json").stdout


_SIGNAL_IN_CLICK_PARSING = (
    "import os, signal, sys\n"
    "from typer.core import TyperGroup\n"
    "from fsmove import cli\n"
    "parse_args = TyperGroup.parse_args\n"
    "def signalled(self, ctx, args):\n"
    "    os.kill(os.getpid(), signal.SIGNUM)\n"
    "    return parse_args(self, ctx, args)\n"
    "TyperGroup.parse_args = signalled\n"
    "sys.argv = ['fsmove', *sys.argv[1:]]\n"
    "cli.main()\n"
)


@pytest.mark.parametrize("signum", [signal.SIGINT, signal.SIGTERM, signal.SIGHUP],
                         ids=["INT", "TERM", "HUP"])
def test_a_signal_during_click_parsing_gets_the_same_line(tmp_path: Path, signum: int) -> None:
    """A signal that lands while Click parses the command line, before the command's
    wrapper runs: Typer turned it into a silent exit 130; fsmove says why, as anywhere
    else. The signal is sent from inside the parsing, not after a delay."""
    code = _SIGNAL_IN_CLICK_PARSING.replace("SIGNUM", signal.Signals(signum).name)
    with _hang_up_at_its_default():
        proc = subprocess.run([sys.executable, "-c", code, "status", "--json"],
                              capture_output=True, text=True, timeout=60, check=False,
                              stdin=subprocess.DEVNULL, cwd=tmp_path)
    assert proc.returncode == 130, proc.stderr
    assert proc.stderr.strip().splitlines() == [  # (status changes nothing)
        "fsmove: error: interrupted: nothing was changed; rerun the same command to start "
        "again"]


@pytest.mark.interop
def test_a_job_saved_with_insecure_tls_resumes_with_a_ca_file(
    fsmove: FsmoveRunner, tmp_path: Path, vsftpd_tls_server: RunningServer,
    fresh_subdir: Callable[[RunningServer], RunningServer],
) -> None:
    """A careful user's move from --insecure-tls to a verified certificate: the option
    given to resume replaces the saved one (before session 32 both were kept: "internal
    error: ValueError: give either a CA file or insecure=True, not both"). A saved
    --ca-file gone since is named, exit 2."""
    server = fresh_subdir(vsftpd_tls_server)
    assert server.ca_cert is not None
    src = tmp_path / "src"
    write_local(src, random_files(8, 256 * KiB, seed=5))
    journal = tmp_path / "job.db"
    env = {"FSMOVE_DST_PASSWORD": server.password}
    fsmove.secret(server.password)
    child = fsmove.start("copy", str(src), server.url(), "--journal", str(journal),
                         "--json", "--insecure-tls", "--bwlimit", "256K", "--workers", "1",
                         env=env)
    child.wait_for(lambda e: e.get("type") == "file_done")
    child.proc.send_signal(signal.SIGINT)
    assert child.finish().code == 130
    both = fsmove.run("resume", str(journal), "--ca-file", str(server.ca_cert),
                      "--insecure-tls", env=env)
    assert both.code == 2 and "exclude each other" in both.stderr, str(both)
    resumed = fsmove.run("resume", str(journal), "--ca-file", str(server.ca_cert), "-q",
                         env=env)
    assert resumed.code == 0, str(resumed)
    assert tree_digests(server.root) == tree_digests(src)


def _run_script(template: str, signum: int, cwd: Path,
                *argv: str) -> subprocess.CompletedProcess[str]:
    """``python -c`` of a script template whose ``SIGNUM`` names the signal to send."""
    code = template.replace("SIGNUM", signal.Signals(signum).name)
    with _hang_up_at_its_default():
        return subprocess.run([sys.executable, "-c", code, *argv], capture_output=True,
                              text=True, timeout=60, check=False, stdin=subprocess.DEVNULL,
                              cwd=cwd)


_TASK_THAT_WONT_FINISH = (
    "import asyncio, os, signal\n"
    "from fsmove import event_loop\n"
    "async def stubborn():\n"
    "    while True:  # a task whose cancelling never ends (a lost wake-up)\n"
    "        try:\n"
    "            await asyncio.sleep(3600)\n"
    "        except asyncio.CancelledError:\n"
    "            os.kill(os.getpid(), signal.SIGNUM)  # the user insists\n"
    "async def main():\n"
    "    asyncio.get_running_loop().call_soon(os.kill, os.getpid(), signal.SIGINT)\n"
    "    await stubborn()\n"
    "event_loop.run(main())\n"
)


@pytest.mark.parametrize("signum", [signal.SIGINT, signal.SIGTERM], ids=["INT", "TERM"])
def test_a_second_interrupt_stops_at_once_whatever_a_task_is_doing(
        tmp_path: Path, signum: int) -> None:
    """Ctrl-C, then Ctrl-C or SIGTERM while a task is still unwinding: before session 33
    asyncio raised KeyboardInterrupt from its signal handler inside its own code, and
    the runner then waited for ever for a task whose wake-up had been lost (3 hangs in
    18 tries on 100,000 small files). Here the task never finishes cancelling: the
    second signal must end the process, exit 130, one line."""
    prefix = ("import signal\nfrom fsmove import cli\n"  # as cli.main installs it
              "signal.signal(signal.SIGTERM, cli._sigterm)\n") if signum == signal.SIGTERM \
        else ""
    proc = _run_script(prefix + _TASK_THAT_WONT_FINISH, signum, tmp_path, "copy")
    assert proc.returncode == 130, proc.stderr
    assert proc.stderr.strip().splitlines() == [
        "fsmove: error: interrupted again: stopped at once; what the journal recorded is "
        "kept; rerun the same command to resume"], proc.stderr


def test_copy_interrupted_twice_exits_130_with_one_line(
        fsmove: FsmoveRunner, tmp_path: Path) -> None:
    """SIGINT then SIGTERM right behind it on a copy of many small files: exit 130, one
    line (which of the two lines depends on whether the first had finished), never a
    traceback, "Task was destroyed", or 143; the rerun completes the copy."""
    src, dst = tmp_path / "src", tmp_path / "dst"
    write_local(src, {f"d{i % 40}/f{i:05d}": b"x" * 1024 for i in range(4000)})
    journal = tmp_path / "job.db"
    child = fsmove.start("copy", str(src), str(dst), "--journal", str(journal), "--json",
                         "--bwlimit", "1M")
    child.wait_for(lambda e: e.get("type") == "file_done")
    child.proc.send_signal(signal.SIGINT)
    child.proc.send_signal(signal.SIGTERM)
    run = child.finish()
    assert run.code == 130, str(run)
    lines = run.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("fsmove: error: interrupted"), str(run)
    again = fsmove.run("copy", str(src), str(dst), "--journal", str(journal), "-q")
    assert again.code == 0, str(again)
    assert tree_digests(dst) == tree_digests(src)


_SIGNAL_DURING_IMPORTS = (
    "import os, signal, sys\n"
    "class Hook:\n"
    "    def find_spec(self, name, path, target=None):\n"
    "        if name == 'typer':  # fsmove's imports are under way\n"
    "            os.kill(os.getpid(), signal.SIGNUM)\n"
    "        return None\n"
    "sys.meta_path.insert(0, Hook())\n"
    "sys.argv = ['fsmove', 'status']\n"
    "from fsmove.entry import main\n"
    "main()\n"
)


@pytest.mark.parametrize("signum", [signal.SIGINT, signal.SIGTERM, signal.SIGHUP],
                         ids=["INT", "TERM", "HUP"])
def test_a_signal_while_fsmove_is_still_importing_gets_one_line(
        tmp_path: Path, signum: int) -> None:
    """Before session 33 a signal in the first ~50 ms (Python importing typer and the
    command) printed a traceback of that import and exited 1, -2 or -15. The signal is
    sent from inside the import, not after a delay."""
    proc = _run_script(_SIGNAL_DURING_IMPORTS, signum, tmp_path)
    assert proc.returncode == 130, proc.stderr
    assert proc.stderr.splitlines() == [
        "fsmove: error: interrupted: nothing was changed; rerun the same command"], proc.stderr
