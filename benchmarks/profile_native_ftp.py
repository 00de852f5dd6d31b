"""Client CPU of small files over FTP at RTT 0: fsmove, lftp and a libcurl copier side by side.

Usage (as root, from the repository root, with the bench extra installed)::

    python -m benchmarks.profile_native_ftp [--files 2000] [--rounds 3]
        [--tools fsmove,lftp,libcurl,libcurl-bare,libcurl-asyncio,libcurl-thread] [--parallel 16]
        [--workdir DIR] [--py-spy DIR]

vsftpd -> vsftpd on loopback, the benchmark's ``small`` corpus cut to ``--files``.
``libcurl`` is ``benchmarks/native_ftp_copier.py`` sending fsmove's per-file commands;
``libcurl-bare`` only RETR and STOR; ``libcurl-asyncio`` fsmove's commands with libcurl
driven from asyncio's loop, a coroutine per worker; ``libcurl-thread`` the same workers
with libcurl on a thread of its own (see that module). lftp runs as in the benchmark
(``mirror --parallel=32``); fsmove on its defaults. Each round runs every tool, in an
order that alternates, on an emptied destination; every file's size and XXH3-128
digest is checked after each run. Printed: wall, user and system CPU per run (from
``os.wait4``) and the medians. The conclusions are in ``benchmarks/README.md``.
"""

from __future__ import annotations

import argparse
import contextlib
import os
import statistics
import subprocess
import sys
import time
from pathlib import Path

from benchmarks.corpora import ensure_corpus, full_specs
from benchmarks.environment import Location
from benchmarks.measure import Command
from benchmarks.profile_small import _check, _empty, _place_corpus, vsftpd_pair
from benchmarks.runners.base import CopyJob
from benchmarks.runners.lftp_runner import LftpRunner
from tests.servers.account import ensure_account
from tests.servers.base import RunningServer


def _location(server: RunningServer, folder: Path) -> Location:
    return Location(scheme="ftp", path="/" + folder.relative_to(server.root).as_posix(),
                    local=folder, host=server.host, port=server.port, user=server.user,
                    password=server.password)


def _command(tool: str, src: Location, dst: Location, scratch: Path, parallel: int) -> Command:
    env = {"PATH": os.environ.get("PATH", "/usr/bin:/bin"), "LANG": "C.UTF-8",
           "HOME": str(scratch), "XDG_STATE_HOME": str(scratch / "state"),
           "FSMOVE_SRC_PASSWORD": src.password, "FSMOVE_DST_PASSWORD": dst.password}
    src_url = f"ftp://{src.user}@{src.host}:{src.port}{src.path}"
    dst_url = f"ftp://{dst.user}@{dst.host}:{dst.port}{dst.path}"
    if tool == "lftp":
        return LftpRunner().command(CopyJob(src=src, dst=dst, scratch=scratch))
    if tool == "fsmove":
        argv = (sys.executable, "-m", "fsmove", "copy", src_url, dst_url, "--quiet",
                "--journal", str(scratch / "journal.sqlite"))
    else:
        argv = (sys.executable, "-m", "benchmarks.native_ftp_copier", src_url, dst_url,
                "--parallel", str(parallel), *(["--bare"] if tool.endswith("-bare") else []),
                *(["--asyncio"] if tool.startswith("libcurl-asyncio") else []),
                *(["--thread"] if tool.startswith("libcurl-thread") else []))
    return Command(argv=argv, env=env, cwd=Path.cwd())


def _run(command: Command, spy: Path | None = None) -> tuple[float, float, float, int, str]:
    argv = command.argv
    if spy is not None:
        argv = ("py-spy", "record", "--idle", "-r", "200", "--format", "raw", "-o", str(spy),
                "--", *argv)
    stdin = open(command.stdin_path, "rb") if command.stdin_path else subprocess.DEVNULL
    with contextlib.ExitStack() as stack:
        if command.stdin_path:
            stack.callback(stdin.close)  # type: ignore[union-attr]
        start = time.monotonic()
        proc = subprocess.Popen(argv, env=dict(command.env), cwd=command.cwd,
                                stdin=stdin, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
        _, status, usage = os.wait4(proc.pid, 0)
        wall = time.monotonic() - start
    assert proc.stderr is not None
    err = proc.stderr.read().decode(errors="replace")[-500:]
    proc.stderr.close()
    return wall, usage.ru_utime, usage.ru_stime, os.waitstatus_to_exitcode(status), err


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--files", type=int, default=2000)
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--tools", default="fsmove,lftp,libcurl,libcurl-bare,"
                                           "libcurl-asyncio,libcurl-thread")
    parser.add_argument("--parallel", type=int, default=16,
                        help="the libcurl copier's transfers in flight per side")
    parser.add_argument("--workdir", type=Path, default=Path("/tmp/fsmove-native-ftp"))
    parser.add_argument("--py-spy", type=Path,
                        help="a folder: round 0 of each Python tool is recorded (raw stacks) "
                             "instead of measured")
    args = parser.parse_args()
    work: Path = args.workdir
    work.mkdir(parents=True, exist_ok=True)
    os.chmod(work, 0o755)
    corpus = ensure_corpus(full_specs()["small"], work / "corpora")
    files = [(e.path, e.size, e.digest) for e in corpus.entries[: args.files]]
    account = ensure_account()
    owner = (account.uid, account.gid)
    tools = args.tools.split(",")
    results: dict[str, list[tuple[float, float, float]]] = {}
    with contextlib.ExitStack() as stack:
        s, d = vsftpd_pair(stack, work)
        s_dir = s.root / f"small-{len(files)}"
        _place_corpus(corpus.root, s_dir, files, owner)
        d_dir = d.root / "out"
        d_dir.mkdir(exist_ok=True)
        os.chown(d_dir, *owner)
        src, dst = _location(s, s_dir), _location(d, d_dir)
        scratch = work / "scratch"
        for rnd in range(args.rounds):
            for tool in tools if rnd % 2 == 0 else list(reversed(tools)):
                _empty(d_dir)
                with contextlib.suppress(FileNotFoundError):
                    (scratch / "journal.sqlite").unlink()
                scratch.mkdir(exist_ok=True)
                spy = (args.py_spy / f"{tool}.txt"
                       if args.py_spy and rnd == 0 and tool != "lftp" else None)
                if spy is not None:
                    spy.parent.mkdir(parents=True, exist_ok=True)
                wall, user, system, code, err = _run(
                    _command(tool, src, dst, scratch, args.parallel), spy)
                wrong = f"exit code {code}: {err}" if code else _check(d_dir, files)
                print(f"round {rnd} {tool:>12}: wall {wall:5.2f} s  user {user:5.2f}  "
                      f"sys {system:5.2f}  cpu {user + system:5.2f} s  "
                      f"{'ok' if wrong is None else 'FAILED: ' + wrong}", flush=True)
                if wrong is None and spy is None:
                    results.setdefault(tool, []).append((wall, user, system))
    for tool, runs in results.items():
        cpu = statistics.median(u + s for _, u, s in runs)
        print(f"{tool:>12}: median wall {statistics.median(w for w, _, _ in runs):.2f} s, "
              f"user {statistics.median(u for _, u, _ in runs):.2f}, "
              f"sys {statistics.median(s for _, _, s in runs):.2f}, cpu {cpu:.2f} s "
              f"({1000 * cpu / len(files):.2f} ms per file)")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
