"""Running ``fsmove`` as a real child process for the fault and security suites, and
checking, after every test, that no secret leaked anywhere.

``FsmoveRunner.run(*args)`` starts ``fsmove`` through a tiny launcher that installs a
Python audit hook first: every process fsmove starts (``subprocess``, ``os.exec*``,
``posix_spawn``, ``os.system``; the ``clever`` CLI would go through them too) is
recorded with its argv in ``argv.log``. The state dir (default journals) and HOME are
inside the runner's folder, so every file fsmove writes lands where the leak check
looks.

``check_no_leaks()`` greps every registered secret (and its %-encoded form) in: the
stdout and stderr of every run, every file under the runner's folder (journals with
their WAL, reports, logs) and the recorded child argv. ``check_clean_failure`` is the
contract for a failed run: the documented exit code, a one-line ``fsmove: error:`` (or
per-file failures), no traceback.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import threading
import time
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from urllib.parse import quote

#: Started with ``python -c``: audit every child process, then run the real CLI.
_LAUNCHER = r"""
import json, os, sys
_log = os.environ["FSMOVE_TEST_ARGV_LOG"]
def _hook(event, args):
    if event in ("subprocess.Popen", "os.exec", "os.posix_spawn", "os.spawn", "os.system"):
        argv = args[1] if event != "os.system" else args[0]
        env = (args[3] if event == "subprocess.Popen" else None) or os.environ
        out = os.environ.get("FSMOVE_TEST_SECRETS_OUT")
        if out:  # passwords handed to children by environment, for the leak check
            with open(out, "a", encoding="utf-8") as fh:
                fh.writelines(f"{v}\n" for k, v in env.items()
                              if k.startswith("FSMOVE_") and k.endswith("_PASSWORD") and v)
        with open(_log, "a", encoding="utf-8", errors="surrogateescape") as fh:
            fh.write(json.dumps({"event": event, "argv": [os.fsdecode(a) if isinstance(a, bytes)
                     else str(a) for a in (argv if isinstance(argv, (list, tuple)) else [argv])]})
                     + "\n")
sys.addaudithook(_hook)
def _held_until_released():  # say "held" (a file the test polls), wait for its "go"
    import time
    hold_dir = os.environ["FSMOVE_TEST_HOLD_DIR"]
    held = os.path.join(hold_dir, "held")
    os.close(os.open(held + ".new", os.O_WRONLY | os.O_CREAT, 0o600))
    os.rename(held + ".new", held)
    deadline = time.monotonic() + 120
    while not os.path.exists(os.path.join(hold_dir, "go")):
        if time.monotonic() > deadline:
            raise SystemExit("fsmove_run: the test never released the hold")
        time.sleep(0.005)
_hold_source = os.environ.get("FSMOVE_TEST_HOLD_SOURCE")
if _hold_source:  # see FileHold
    _hold = {"source_open": False, "done": False}
    def _hold_hook(event, args):
        if event != "open" or _hold["done"] or not isinstance(args[0], (str, bytes)):
            return
        name = os.path.basename(os.fsdecode(args[0]))
        if name == _hold_source:
            _hold["source_open"] = True
        elif _hold["source_open"] and name.startswith(".fsmove.") and name.endswith(".part"):
            _hold["done"] = True
            _held_until_released()
    sys.addaudithook(_hold_hook)
_hold_name = os.environ.get("FSMOVE_TEST_HOLD_NAME")
if _hold_name:  # see OpenHold
    _path_held = {"done": False, "left": int(os.environ["FSMOVE_TEST_HOLD_NTH"])}
    def _path_hook(event, args):
        if event != "open" or _path_held["done"] or not isinstance(args[0], (str, bytes)):
            return
        if os.path.basename(os.fsdecode(args[0])) != _hold_name:
            return
        _path_held["left"] -= 1
        if not _path_held["left"]:
            _path_held["done"] = True
            _held_until_released()
    sys.addaudithook(_path_hook)
sys.argv = ["fsmove", *sys.argv[1:]]
from fsmove.cli import main
main()
"""


@dataclass(frozen=True)
class Run:
    args: tuple[str, ...]
    code: int
    stdout: str
    stderr: str

    @property
    def events(self) -> list[dict[str, object]]:
        out = []
        for line in self.stdout.splitlines():
            if line.startswith("{"):
                try:
                    out.append(json.loads(line))
                except json.JSONDecodeError:
                    continue
        return out

    @property
    def summary(self) -> dict[str, object]:
        for event in reversed(self.events):
            if event.get("type") == "summary":
                return event
        raise AssertionError(f"no JSON summary in the output of {self}")

    def __str__(self) -> str:
        return (f"fsmove {' '.join(self.args)} -> exit {self.code}\n--- stdout\n"
                f"{self.stdout[-3000:]}\n--- stderr\n{self.stderr[-3000:]}")


@dataclass
class FsmoveRunner:
    """Runs fsmove in ``workdir`` (its HOME and XDG state dir) and keeps every output."""

    workdir: Path
    secrets: set[str] = field(default_factory=set)
    runs: list[Run] = field(default_factory=list)
    #: Extra folders the leak check reads (a destination with reports, logs...).
    scanned: list[Path] = field(default_factory=list)

    def __post_init__(self) -> None:
        (self.workdir / "home").mkdir(parents=True, exist_ok=True)
        (self.workdir / "state").mkdir(exist_ok=True)

    @property
    def argv_log(self) -> Path:
        return self.workdir / "argv.log"

    def secret(self, *values: str) -> None:
        """Register values that must never show up anywhere."""
        self.secrets.update(v for v in values if v)

    def env(self, extra: Mapping[str, str] | None = None) -> dict[str, str]:
        env = {k: v for k, v in os.environ.items()
               if not k.startswith("FSMOVE_") and k not in ("NETRC",)}
        env.update(HOME=str(self.workdir / "home"), XDG_STATE_HOME=str(self.workdir / "state"),
                   FSMOVE_TEST_ARGV_LOG=str(self.argv_log), PYTHONUNBUFFERED="1",
                   COLUMNS="200")
        env.update(extra or {})
        return env

    def popen(self, *args: str, env: Mapping[str, str] | None = None
              ) -> subprocess.Popen[str]:
        return subprocess.Popen(
            [sys.executable, "-c", _LAUNCHER, *args], env=self.env(env), text=True,
            stdin=subprocess.DEVNULL, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
            errors="surrogateescape",
        )

    def finish(self, proc: subprocess.Popen[str], args: Iterable[str], *,
               timeout: float = 120) -> Run:
        try:
            out, err = proc.communicate(timeout=timeout)
        except subprocess.TimeoutExpired:
            proc.kill()
            out, err = proc.communicate()
            raise AssertionError(f"fsmove {' '.join(args)} did not end in {timeout}s:\n"
                                 f"{out[-2000:]}\n{err[-2000:]}") from None
        run = Run(tuple(args), proc.returncode, out, err)
        self.runs.append(run)
        return run

    def run(self, *args: str, env: Mapping[str, str] | None = None,
            timeout: float = 120) -> Run:
        return self.finish(self.popen(*args, env=env), args, timeout=timeout)

    def start(self, *args: str, env: Mapping[str, str] | None = None) -> Child:
        """Start fsmove and read its JSON events as they come (see ``Child``)."""
        return Child(self, args, self.popen(*args, env=env))

    def child_argvs(self) -> list[list[str]]:
        if not self.argv_log.exists():
            return []
        text = self.argv_log.read_text(encoding="utf-8", errors="surrogateescape")
        return [json.loads(line)["argv"] for line in text.splitlines() if line.strip()]

    def check_no_leaks(self) -> None:
        needles = set()
        for s in self.secrets:
            needles |= {s, quote(s, safe=""), quote(s)}
        problems = []
        for run in self.runs:
            for name, text in (("stdout", run.stdout), ("stderr", run.stderr)):
                problems += [f"{name} of `fsmove {run.args[0]}`" for n in needles if n in text]
        for argv in self.child_argvs():
            joined = "\0".join(argv)
            problems += [f"argv of child process {argv[:2]}" for n in needles if n in joined]
        for root in [self.workdir, *self.scanned]:
            for path in _files(root):
                data = path.read_bytes()
                problems += [f"file {path}" for n in needles if n.encode() in data]
        assert not problems, "a secret leaked into: " + ", ".join(sorted(set(problems)))


def _files(root: Path) -> Iterable[Path]:
    for dirpath, _dirs, names in os.walk(root):
        for name in names:
            path = Path(dirpath) / name
            if path.is_file() and not path.is_symlink():
                yield path


def check_clean_failure(run: Run, code: int, *words: str) -> str:
    """The run ended with ``code`` and said why on stderr in one ``fsmove: error:`` line
    holding every word of ``words`` (case-insensitive); no traceback anywhere."""
    assert run.code == code, str(run)
    assert "Traceback" not in run.stderr + run.stdout, str(run)
    errors = [ln for ln in run.stderr.splitlines() if ln.startswith("fsmove: error: ")]
    assert len(errors) == 1, str(run)
    line = errors[0]
    for word in words:
        assert word.lower() in line.lower(), f"{word!r} not in {line!r}"
    return line


def check_partial(run: Run, *failed: str) -> dict[str, str]:
    """Exit 3, no traceback, and each path of ``failed`` listed as a failed file in the
    JSON summary; returns path -> reason."""
    assert run.code == 3, str(run)
    assert "Traceback" not in run.stderr + run.stdout, str(run)
    reasons = {str(p): str(why) for p, why in run.summary["failed"]}  # type: ignore[union-attr]
    for path in failed:
        assert path in reasons, f"{path!r} not among the failed files {reasons}"
    for why in reasons.values():
        assert "\n" not in why
    return reasons


class FileHold:
    """Pauses a child fsmove inside its copy of one local source file, so a test can act
    while that copy is provably under way, whatever the machine's pace.

    The launcher's audit hook watches ``open`` events: once the source file named
    ``source`` (its last path component) has been opened, the next open of a temporary
    file (``.fsmove.*.part``) blocks in its thread until ``release()``. The engine
    opens a local destination only after the source gave its first piece (an SFTP one
    opens beside the source: not for this hold), and its pipe
    holds a bounded number of pieces: with a source larger than the pipe, its reader
    stops before the end of the file and the copy cannot end while held. Use one
    worker (``--workers 1``) so that the temporary file is that source file's own.
    """

    def __init__(self, folder: Path, source: str) -> None:
        self.folder = folder
        self.source = source
        folder.mkdir(parents=True, exist_ok=True)

    def env(self) -> dict[str, str]:
        return {"FSMOVE_TEST_HOLD_SOURCE": self.source,
                "FSMOVE_TEST_HOLD_DIR": str(self.folder)}

    def wait(self, child: Child, *, timeout: float = 60) -> None:
        """Return once fsmove is held (fails if it ends first, or after ``timeout``)."""
        deadline = time.monotonic() + timeout
        while not (self.folder / "held").exists():
            if child.proc.poll() is not None or time.monotonic() > deadline:
                raise AssertionError(f"fsmove was never held in its copy of {self.source}")
            time.sleep(0.01)  # polling a state, not waiting for time to pass

    def release(self) -> None:
        (self.folder / "go").touch()


class OpenHold(FileHold):
    """Pauses a child fsmove at its ``nth`` open of a file named ``name`` (local stores
    open relative to a folder's descriptor, so the name is what is seen): e.g. the
    second open of ``big.bin`` in ``copy --verify`` to a local destination is the
    verification's (the copy opens the source once and writes a temporary name)."""

    def __init__(self, folder: Path, name: str, nth: int) -> None:
        super().__init__(folder, name)
        self.nth = nth

    def env(self) -> dict[str, str]:
        return {"FSMOVE_TEST_HOLD_NAME": self.source, "FSMOVE_TEST_HOLD_NTH": str(self.nth),
                "FSMOVE_TEST_HOLD_DIR": str(self.folder)}


class Child:
    """A running fsmove whose stdout (``--json`` events) is read as it comes, so a test
    can act at a precise point of the copy (``wait_for``) instead of sleeping."""

    def __init__(self, runner: FsmoveRunner, args: tuple[str, ...],
                 proc: subprocess.Popen[str]) -> None:
        self.runner = runner
        self.args = args
        self.proc = proc
        self.events: list[dict[str, object]] = []
        self._lines: list[str] = []
        self._cond = threading.Condition()
        self._eof = False
        self._err: list[str] = []
        self._thread = threading.Thread(target=self._read, daemon=True)
        self._thread.start()
        self._err_thread = threading.Thread(target=self._read_err, daemon=True)
        self._err_thread.start()

    def _read_err(self) -> None:
        assert self.proc.stderr is not None
        self._err.append(self.proc.stderr.read())

    def _read(self) -> None:
        assert self.proc.stdout is not None
        for line in self.proc.stdout:
            with self._cond:
                self._lines.append(line)
                if line.startswith("{"):
                    try:
                        self.events.append(json.loads(line))
                    except json.JSONDecodeError:
                        pass
                self._cond.notify_all()
        with self._cond:
            self._eof = True
            self._cond.notify_all()

    def wait_for(self, predicate: Callable[[dict[str, object]], bool], *,
                 timeout: float = 60) -> dict[str, object]:
        """The first event matching ``predicate`` (waits for it; fails if fsmove ends or
        ``timeout`` passes first)."""
        deadline = time.monotonic() + timeout
        seen = 0
        with self._cond:
            while True:
                for event in self.events[seen:]:
                    if predicate(event):
                        return event
                seen = len(self.events)
                left = deadline - time.monotonic()
                if self._eof or left <= 0:
                    raise AssertionError(
                        f"no such event from fsmove {' '.join(self.args)}; output so far:\n"
                        + "".join(self._lines)[-3000:])
                self._cond.wait(left)

    def finish(self, *, timeout: float = 120) -> Run:
        try:
            self.proc.wait(timeout=timeout)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            self.proc.wait()
            raise AssertionError(f"fsmove {' '.join(self.args)} did not end in {timeout}s"
                                 ) from None
        self._thread.join(timeout=30)
        self._err_thread.join(timeout=30)
        run = Run(self.args, self.proc.returncode, "".join(self._lines), "".join(self._err))
        self.runner.runs.append(run)
        return run
