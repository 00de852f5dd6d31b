"""Client CPU per GB of one large file over SFTP at RTT 0: local -> sshd and sshd -> local.

    python -m benchmarks.profile_sftp --rounds 3 [--size-mib 256] \
        [--fsmove /other/venv/bin/fsmove ...] [--py-spy DIR]

Starts the real sshd fixture (``tests/servers/sshd.py``) on 127.0.0.1, builds one file of
random bytes, and runs ``fsmove copy`` up and down, each in a child whose resource usage
is read with ``os.wait4`` (user + system CPU of the client and its children: a figure
that the machine's load changes far less than the wall time). With several ``--fsmove``
executables (an old and a new checkout), every round runs each of them in turn, so a
slow spell of the shared machine falls on all of them alike (the order alternates round
after round; with two, the rounds the second won are counted). Every copy is checked:
the destination's SHA-256 must equal the source's. ``--py-spy DIR`` records one
flame graph per executable and direction instead (py-spy slows the client; its CPU
figures are then not comparable).
"""

from __future__ import annotations

import argparse
import hashlib
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from urllib.parse import quote

from tests.servers.base import RunningServer
from tests.servers.sshd import start_sshd


def _digest(path: Path) -> str:
    h = hashlib.sha256()
    with path.open("rb") as f:
        while block := f.read(1 << 20):
            h.update(block)
    return h.hexdigest()


def _make_file(path: Path, size: int) -> None:
    if path.exists() and path.stat().st_size == size:
        return
    with path.open("wb") as f:
        left = size
        while left:
            n = min(left, 1 << 20)
            f.write(os.urandom(n))
            left -= n


def _run(argv: list[str], env: dict[str, str]) -> tuple[float, float]:
    """(client CPU seconds, wall seconds) of one child run to completion."""
    start = time.perf_counter()
    proc = subprocess.Popen(argv, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    _pid, status, usage = os.wait4(proc.pid, 0)
    wall = time.perf_counter() - start
    proc.returncode = os.waitstatus_to_exitcode(status)
    err = proc.stderr.read().decode(errors="replace") if proc.stderr else ""
    if proc.returncode != 0:
        raise SystemExit(f"{argv[0]} failed ({proc.returncode}): {err.strip()[-500:]}")
    return usage.ru_utime + usage.ru_stime, wall


def _copy(fsmove: str, server: RunningServer, work: Path, direction: str,
          py_spy: Path | None, label: str) -> tuple[float, float]:
    remote = f"sftp://{quote(server.user, safe='')}@{server.host}:{server.port}"
    src_dir, up_dir, down_dir = work / "src", server.root / "up", work / "down"
    for d in (up_dir, down_dir):
        shutil.rmtree(d, ignore_errors=True)
    up_dir.mkdir()
    os.chown(up_dir, *server.owner)
    down_dir.mkdir()
    if direction == "up":
        src, dst, check = str(src_dir), f"{remote}{quote(str(up_dir))}", up_dir
    else:
        src, dst, check = f"{remote}{quote(str(server.root / 'corpus'))}", str(down_dir), down_dir
    scratch = work / "scratch"
    shutil.rmtree(scratch, ignore_errors=True)
    scratch.mkdir()
    argv = [fsmove, "copy", src, dst, "--quiet", "--json",
            "--journal", str(scratch / "journal.sqlite")]
    assert server.known_hosts is not None
    argv += ["--known-hosts", str(server.known_hosts)]
    env = {"PATH": os.environ.get("PATH", "/usr/bin:/bin"), "HOME": str(scratch),
           "XDG_STATE_HOME": str(scratch / "state"), "XDG_CONFIG_HOME": str(scratch / "cfg"),
           "LANG": "C.UTF-8",
           "FSMOVE_SRC_PASSWORD": server.password, "FSMOVE_DST_PASSWORD": server.password}
    if py_spy is not None:
        out = py_spy / f"{label}-{direction}"
        argv = ["py-spy", "record", "--subprocesses", "-r", "250", "-f", "raw",
                "-o", f"{out}.txt", "--", *argv]
    result = _run(argv, env)
    for name in ("big.bin",):
        got, want = check / name, src_dir / name
        if _digest(got) != _digest(want):
            raise SystemExit(f"{label} {direction}: {got} differs from the source")
    return result


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--size-mib", type=int, default=256)
    parser.add_argument("--fsmove", action="append", default=[],
                        help="an fsmove executable (repeat to compare; default: beside python)")
    parser.add_argument("--directions", default="up,down")
    parser.add_argument("--py-spy", type=Path, default=None,
                        help="record a raw py-spy profile per run into this folder")
    parser.add_argument("--workdir", type=Path, default=Path(tempfile.gettempdir())
                        / "fsmove-profile-sftp")
    args = parser.parse_args()
    tools = args.fsmove or [str(Path(sys.executable).parent / "fsmove")]
    size = args.size_mib << 20
    work = args.workdir
    (work / "src").mkdir(parents=True, exist_ok=True)
    _make_file(work / "src" / "big.bin", size)
    if args.py_spy is not None:
        args.py_spy.mkdir(parents=True, exist_ok=True)
    directions = args.directions.split(",")
    results: dict[tuple[int, str], list[tuple[float, float]]] = {}
    with start_sshd(work / "sshd") as server:
        corpus = server.root / "corpus"
        corpus.mkdir(exist_ok=True)
        shutil.copyfile(work / "src" / "big.bin", corpus / "big.bin")
        for round_ in range(args.rounds):
            # Alternating order (old, new, new, old, ...): a slow spell falls on both.
            order = list(enumerate(tools))
            for i, tool in order if round_ % 2 == 0 else order[::-1]:
                for direction in directions:
                    cpu, wall = _copy(tool, server, work, direction, args.py_spy, f"t{i}")
                    results.setdefault((i, direction), []).append((cpu, wall))
                    gb = size / 1e9
                    print(f"round {round_} tool {i} {direction}: cpu {cpu / gb:.2f} s/GB, "
                          f"{size / wall / 1e6:.0f} MB/s", flush=True)
    if len(tools) == 2:
        for direction in directions:
            wins = sum(b[0] < a[0] for a, b in zip(results[(0, direction)],
                                                   results[(1, direction)], strict=True))
            print(f"{direction}: tool 1 used less CPU than tool 0 in {wins} of "
                  f"{args.rounds} rounds")
    print("\nmedian over rounds (client CPU s per GB, MB/s):")
    for i, tool in enumerate(tools):
        for direction in directions:
            runs = results[(i, direction)]
            cpu = statistics.median(c for c, _ in runs) / (size / 1e9)
            rate = statistics.median(size / w / 1e6 for _, w in runs)
            print(f"  tool {i} {direction:4}: {cpu:5.2f} s/GB  {rate:5.0f} MB/s  "
                  f"cpu/GB each: {[round(c / (size / 1e9), 2) for c, _ in runs]}  ({tool})")


if __name__ == "__main__":
    main()
