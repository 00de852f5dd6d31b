"""Client CPU of many small files at RTT 0: vsftpd -> vsftpd and sshd -> sshd.

Usage (as root, from the repository root)::

    python -m benchmarks.profile_small [--routes ftp,sftp] [--rounds 3] [--files 2000]
        [--variant NAME=SRC_TREE ...] [--py-spy DIR] [--cprofile DIR] [--wrap CMD]

The corpus is the benchmark's ``small`` one (``benchmarks/corpora.py``: 1-256 KiB,
log-uniform, 25 per folder, nested), cut to ``--files`` files. A variant is a source
tree of fsmove (a checkout: ``fsmove/``, ``transfers/``, ``verify/``; e.g.
``git archive main | tar -x -C DIR``), laid out once as an importable ``fsmove``
package and run with the same interpreter, so an old and a new tree run side by side.
Rounds alternate the variants (A B, B A, ...) so that a machine whose load changes
affects both alike. Each run: wall time and the client's user + system CPU
(``os.wait4``); the destination is emptied before and every file's size and
XXH3-128 digest checked after (a wrong copy fails the run). ``--py-spy DIR`` records
the first variant's first run per route (raw stacks, ``--idle``) instead of measuring
it; ``--cprofile DIR`` the same with cProfile (a ``.pstats`` file).
"""

from __future__ import annotations

import argparse
import contextlib
import os
import shutil
import statistics
import subprocess
import sys
import time
from pathlib import Path

import xxhash

from benchmarks.corpora import ensure_corpus, full_specs
from tests.servers.account import ensure_account
from tests.servers.base import RunningServer
from tests.servers.sshd import start_sshd
from tests.servers.vsftpd import start_vsftpd

_ENTRY = "from fsmove.cli import main; main()"
_CPROFILE_ENTRY = (
    "import cProfile, sys, time; from fsmove.cli import main\n"
    "out = sys.argv.pop(1)\n"
    "p = cProfile.Profile(time.process_time); p.enable()\n"
    "try:\n    main()\nfinally:\n    p.disable(); p.dump_stats(out)\n"
)


def _layout(name: str, tree: Path, work: Path) -> Path:
    """``work/variants/NAME/fsmove`` with ``transfers`` and ``verify`` inside it."""
    root = work / "variants" / name
    shutil.rmtree(root, ignore_errors=True)
    pkg = root / "fsmove"
    ignore = shutil.ignore_patterns("__pycache__")
    shutil.copytree(tree / "fsmove", pkg, ignore=ignore)
    shutil.copytree(tree / "transfers", pkg / "transfers", ignore=ignore)
    shutil.copytree(tree / "verify", pkg / "verify", ignore=ignore)
    return root


def _place_corpus(src: Path, dest: Path, files: list[tuple[str, int, str]],
                  owner: tuple[int, int]) -> None:
    """Copy the corpus's files into a server root, owned by the server's account."""
    if dest.exists():
        return
    for rel, _size, _digest in files:
        target = dest / rel
        for parent in reversed(target.relative_to(dest.parent).parents):
            p = dest.parent / parent
            if not p.exists():
                p.mkdir(mode=0o755)
                os.chown(p, *owner)
        shutil.copy2(src / rel, target)
        os.chown(target, *owner)


def vsftpd_pair(stack: contextlib.ExitStack, work: Path) -> tuple[RunningServer, RunningServer]:
    """Two vsftpd servers (source, destination) under ``work/ftp-src`` and
    ``work/ftp-dst``, stopped with ``stack``."""
    servers = []
    for side in ("src", "dst"):
        folder = work / f"ftp-{side}"
        folder.mkdir(exist_ok=True)
        os.chmod(folder, 0o755)
        servers.append(stack.enter_context(start_vsftpd(folder)))
    return servers[0], servers[1]


def _empty(folder: Path) -> None:
    if folder.exists():
        for child in folder.iterdir():
            if child.is_dir():
                shutil.rmtree(child)
            else:
                child.unlink()


def _check(dest: Path, files: list[tuple[str, int, str]]) -> str | None:
    """None when ``dest`` holds exactly the corpus's files, else what is wrong."""
    found = {p.relative_to(dest).as_posix() for p in dest.rglob("*") if p.is_file()}
    want = {rel for rel, _s, _d in files}
    if found != want:
        return f"{len(want - found)} missing, {len(found - want)} extra"
    for rel, size, digest in files:
        data = (dest / rel).read_bytes()
        if len(data) != size or xxhash.xxh3_128_hexdigest(data) != digest:
            return f"{rel} differs"
    return None


def _run(root: Path, src: str, dst: str, env: dict[str, str], scratch: Path, *,
         extra: list[str], spy: Path | None, cprofile: Path | None, wrap: str = "",
         ) -> tuple[float, float, float, int]:
    shutil.rmtree(scratch, ignore_errors=True)
    scratch.mkdir(parents=True)
    tail = ["copy", src, dst, "--quiet", "--json", "--journal",
            str(scratch / "journal.sqlite"), *extra]
    if cprofile is not None:
        argv = [sys.executable, "-c", _CPROFILE_ENTRY, str(cprofile), *tail]
    else:
        argv = [sys.executable, "-c", _ENTRY, *tail]
    if wrap:
        argv = [*wrap.split(), *argv]
    if spy is not None:
        argv = ["py-spy", "record", "--idle", "-r", "200", "--format", "raw",
                "-o", str(spy), "--", *argv]
    run_env = {**env, "PYTHONPATH": str(root), "HOME": str(scratch),
               "XDG_STATE_HOME": str(scratch / "state")}
    start = time.monotonic()
    # cwd: the variant's root. ``python -c`` puts the working directory first on
    # sys.path: started from a checkout, every variant would import that checkout.
    proc = subprocess.Popen(argv, env=run_env, stdout=subprocess.DEVNULL,
                            stderr=subprocess.PIPE, cwd=root)
    _, status, usage = os.wait4(proc.pid, 0)
    wall = time.monotonic() - start
    assert proc.stderr is not None
    err = proc.stderr.read().decode(errors="replace")
    proc.stderr.close()
    code = os.waitstatus_to_exitcode(status)
    if code != 0:
        print(err[-2000:], file=sys.stderr)
    return wall, usage.ru_utime, usage.ru_stime, code


def _url(server: RunningServer, folder: Path) -> str:
    return server.url(folder.relative_to(server.root).as_posix())


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--routes", default="ftp,sftp")
    parser.add_argument("--files", type=int, default=2000)
    parser.add_argument("--corpus", default="small",
                        help="a corpus of benchmarks/corpora.py (e.g. medium), cut to --files")
    parser.add_argument("--copy-args", default="", help="more arguments for fsmove copy")
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--variant", action="append", default=[],
                        help="NAME=SOURCE_TREE (default: this checkout as 'here')")
    parser.add_argument("--workdir", type=Path, default=Path("/tmp/fsmove-small-profile"))
    parser.add_argument("--py-spy", type=Path, help="a folder for raw py-spy stacks")
    parser.add_argument("--cprofile", type=Path, help="a folder for cProfile stats")
    parser.add_argument("--wrap", default="", help="a command prefix for every run "
                        "(e.g. 'strace -f -o OUT -e trace=sendto,write -s 200')")
    args = parser.parse_args()

    work: Path = args.workdir
    work.mkdir(parents=True, exist_ok=True)
    os.chmod(work, 0o755)
    for d in (args.py_spy, args.cprofile):
        if d is not None:
            d.mkdir(parents=True, exist_ok=True)
    variants = [v.split("=", 1) for v in args.variant] or [["here", "."]]
    roots = {name: _layout(name, Path(tree).resolve(), work) for name, tree in variants}
    corpus = ensure_corpus(full_specs()[args.corpus], work / "corpora")
    files = [(e.path, e.size, e.digest) for e in corpus.entries[: args.files]]
    account = ensure_account()
    owner = (account.uid, account.gid)
    routes = args.routes.split(",")
    with contextlib.ExitStack() as stack:
        pairs: dict[str, tuple[RunningServer, Path, RunningServer, Path, list[str]]] = {}
        if "ftp" in routes:
            s, d = vsftpd_pair(stack, work)
            _place_corpus(corpus.root, s.root / f"{args.corpus}-{len(files)}", files, owner)
            (d.root / "out").mkdir(exist_ok=True)
            os.chown(d.root / "out", *owner)
            pairs["ftp"] = (s, s.root / f"{args.corpus}-{len(files)}", d, d.root / "out", [])
        if "sftp" in routes:
            wd = work / "sshd"
            wd.mkdir(exist_ok=True)
            os.chmod(wd, 0o755)
            server = stack.enter_context(start_sshd(wd))
            _place_corpus(corpus.root, server.root / f"{args.corpus}-{len(files)}", files, owner)
            (server.root / "out").mkdir(exist_ok=True)
            os.chown(server.root / "out", *owner)
            assert server.known_hosts is not None
            pairs["sftp"] = (server, server.root / f"{args.corpus}-{len(files)}", server,
                             server.root / "out", ["--known-hosts", str(server.known_hosts)])
        results: dict[tuple[str, str], list[tuple[float, float]]] = {}
        for route in routes:
            s, s_dir, d, d_dir, extra = pairs[route]
            env = {"PATH": os.environ.get("PATH", "/usr/bin:/bin"), "LANG": "C.UTF-8",
                   "FSMOVE_SRC_PASSWORD": s.password, "FSMOVE_DST_PASSWORD": d.password}
            for rnd in range(args.rounds):
                order = list(roots) if rnd % 2 == 0 else list(reversed(roots))
                for name in order:
                    _empty(d_dir)
                    first = rnd == 0 and name == order[0]
                    spy = args.py_spy / f"{route}-{name}.txt" if args.py_spy and first else None
                    prof = (args.cprofile / f"{route}-{name}.pstats"
                            if args.cprofile and first else None)
                    wall, user, system, code = _run(
                        roots[name], _url(s, s_dir), _url(d, d_dir), env, work / "scratch",
                        extra=[*extra, *args.copy_args.split()], spy=spy, cprofile=prof,
                        wrap=args.wrap)
                    cpu = user + system
                    wrong = f"exit code {code}" if code else _check(d_dir, files)
                    print(f"{route} round {rnd} {name:>8}: wall {wall:6.2f} s  "
                          f"cpu {cpu:5.2f} s (user {user:5.2f})  {len(files) / wall:6.0f} files/s  "
                          f"{'ok' if wrong is None else 'FAILED: ' + wrong}", flush=True)
                    if wrong is None and spy is None and prof is None:
                        results.setdefault((route, name), []).append((wall, cpu))
        for (route, name), runs in results.items():
            print(f"{route} {name:>8}: median wall {statistics.median(w for w, _ in runs):.2f} s,"
                  f" median cpu {statistics.median(c for _, c in runs):.2f} s "
                  f"(cpu each {[round(c, 2) for _, c in runs]})")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
