"""Profile fsmove on large FTP files at RTT 0: vsftpd -> vsftpd, alternating variants.

Usage (as root, from the repository root)::

    python -m benchmarks.profile_ftp_large [--size-mib 256] [--files 2] [--rounds 3]
        [--variant NAME=SRC_TREE ...] [--py-spy OUT.txt]

A variant is a source tree of fsmove (a checkout: ``fsmove/``, ``transfers/``,
``verify/``); each is laid out once as an importable ``fsmove`` package under the work
folder and run with ``python -c 'from fsmove.cli import main; main()'`` and that folder
first on ``PYTHONPATH``, so an old and a new tree run side by side with the same
interpreter. Rounds alternate the variants (A B A B ...) so that a machine whose load
changes affects both alike. Each run: wall time and the client's user + system CPU
(``os.wait4``), the destination emptied before and its sizes checked after.
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

from tests.servers.account import ensure_account
from tests.servers.vsftpd import start_vsftpd

MiB = 1024 * 1024


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


def _corpus(src_root: Path, files: int, size: int, owner: tuple[int, int]) -> None:
    block = os.urandom(MiB)
    for i in range(files):
        path = src_root / f"big{i}.bin"
        if path.exists() and path.stat().st_size == size:
            continue
        with open(path, "wb") as f:
            for _ in range(size // MiB):
                f.write(block[: MiB - 8] + i.to_bytes(4, "big") + f.tell().to_bytes(4, "big"))
        os.chown(path, *owner)


def _empty(folder: Path) -> None:
    for child in folder.iterdir():
        if child.is_dir():
            shutil.rmtree(child)
        else:
            child.unlink()


def _run(variant_root: Path, src: str, dst: str, env: dict[str, str], journal: Path,
         spy: Path | None, wrap: str = "") -> tuple[float, float, int]:
    journal.unlink(missing_ok=True)
    argv = [sys.executable, "-c", "from fsmove.cli import main; main()", "copy", src, dst,
            "--quiet", "--journal", str(journal)]
    if spy is not None:
        argv = ["py-spy", "record", "--idle", "--format", "raw", "-o", str(spy), "--",
                *argv]
    elif wrap:
        argv = [*wrap.split(), *argv]
    run_env = {**env, "PYTHONPATH": str(variant_root)}
    start = time.monotonic()
    proc = subprocess.Popen(argv, env=run_env, stdout=subprocess.DEVNULL,
                            stderr=subprocess.PIPE)
    _, status, usage = os.wait4(proc.pid, 0)
    wall = time.monotonic() - start
    assert proc.stderr is not None
    err = proc.stderr.read().decode(errors="replace")
    proc.stderr.close()
    code = os.waitstatus_to_exitcode(status)
    if code != 0:
        print(err[-2000:], file=sys.stderr)
    return wall, usage.ru_utime + usage.ru_stime, code


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--size-mib", type=int, default=256)
    parser.add_argument("--files", type=int, default=2)
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--variant", action="append", default=[],
                        help="NAME=SOURCE_TREE (default: this checkout as 'here')")
    parser.add_argument("--workdir", type=Path, default=Path("/tmp/fsmove-ftp-profile"))
    parser.add_argument("--py-spy", type=Path, help="record the first variant's first run")
    parser.add_argument("--wrap", default="", help="a command prefix for every run "
                        "(e.g. 'strace -f -tt -o OUT -e trace=connect')")
    args = parser.parse_args()

    work: Path = args.workdir
    work.mkdir(parents=True, exist_ok=True)
    os.chmod(work, 0o755)
    variants = [v.split("=", 1) for v in args.variant] or [["here", "."]]
    roots = {name: _layout(name, Path(tree).resolve(), work) for name, tree in variants}
    account = ensure_account()
    owner = (account.uid, account.gid)
    with contextlib.ExitStack() as stack:
        servers = []
        for side in ("src", "dst"):
            wd = work / side
            wd.mkdir(exist_ok=True)
            os.chmod(wd, 0o755)
            servers.append(stack.enter_context(start_vsftpd(wd)))
        src, dst = servers
        _corpus(src.root, args.files, args.size_mib * MiB, owner)
        env = {**os.environ, "FSMOVE_SRC_PASSWORD": src.password,
               "FSMOVE_DST_PASSWORD": dst.password}
        src_url = f"ftp://{src.user}@{src.host}:{src.port}/"
        dst_url = f"ftp://{dst.user}@{dst.host}:{dst.port}/"
        results: dict[str, list[tuple[float, float]]] = {name: [] for name in roots}
        total = args.files * args.size_mib * MiB
        for rnd in range(args.rounds):
            order = list(roots) if rnd % 2 == 0 else list(reversed(roots))
            for name in order:
                _empty(dst.root)
                spy = args.py_spy if (args.py_spy and rnd == 0 and name == order[0]) else None
                wall, cpu, code = _run(roots[name], src_url, dst_url, env,
                                       work / "journal.sqlite", spy, args.wrap)
                sizes = sorted(p.stat().st_size for p in dst.root.iterdir())
                ok = code == 0 and sizes == [args.size_mib * MiB] * args.files
                print(f"round {rnd} {name:>8}: wall {wall:6.2f} s  cpu {cpu:5.2f} s  "
                      f"{total / MiB / wall:6.0f} MiB/s  {'ok' if ok else 'FAILED'}",
                      flush=True)
                if ok and spy is None:
                    results[name].append((wall, cpu))
        for name, runs in results.items():
            if runs:
                print(f"{name:>8}: median wall {statistics.median(w for w, _ in runs):.2f} s, "
                      f"median cpu {statistics.median(c for _, c in runs):.2f} s "
                      f"({len(runs)} runs)")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
