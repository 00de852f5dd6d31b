"""Profile fsmove on large FTP files: vsftpd -> vsftpd, alternating variants, at RTT 0
or through the latency relay.

Usage (as root, from the repository root)::

    python -m benchmarks.profile_ftp_large [--size-mib 256 | --size-kib K] [--files 2] [--rounds 3]
        [--variant NAME=SRC_TREE ...] [--rtt-ms 60] [--timeline] [--py-spy OUT.txt]

``--rtt-ms N`` puts ``tests/servers/relay.py`` in front of both servers (N/2 ms each way,
one 4 MiB window per connection, as the benchmark's WAN cells), each vsftpd advertising
the relay's address. ``--timeline`` runs each variant's first round under ``strace`` and
prints when the process started, connected, sent each FTP command and got its first
data byte (milliseconds from ``exec``): where the fixed cost of a run goes.

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
import re
import shutil
import statistics
import subprocess
import sys
import time
from pathlib import Path

from benchmarks.profile_small import _CPROFILE_ENTRY
from tests.servers.account import ensure_account
from tests.servers.relay import start_relay
from tests.servers.vsftpd import start_vsftpd

MiB = 1024 * 1024
#: This checkout (for ``benchmarks.ftp_command_log`` beside a variant's fsmove).
_REPO = str(Path(__file__).resolve().parents[1])
#: Loopback addresses of the servers and of the relays in front of them (``--rtt-ms``).
_SERVER_ADDR = {"src": "127.78.0.10", "dst": "127.78.0.12"}
_RELAY_ADDR = {"src": "127.78.0.11", "dst": "127.78.0.13"}
#: What ``--timeline`` traces.
STRACE = "strace -f -tt -s 48 -e trace=execve,connect,sendto,exit_group"
_LINE = re.compile(r"^(\d+)\s+(\d+):(\d+):(\d+\.\d+) (\w+)\((\d+)?,? ?(.*)$")


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
    wanted = {f"big{i}.bin" for i in range(files)}
    for stale in src_root.iterdir():  # an earlier run's other --files / --size-mib
        if stale.name not in wanted:
            stale.unlink()
    for i in range(files):
        path = src_root / f"big{i}.bin"
        if path.exists() and path.stat().st_size == size:
            continue
        with open(path, "wb") as f:
            while f.tell() < size:
                n = min(MiB, size - f.tell())
                f.write(block[: n - 8] + i.to_bytes(4, "big") + f.tell().to_bytes(4, "big"))
        os.chown(path, *owner)


def _put_tree(tree: Path, src_root: Path, owner: tuple[int, int]) -> None:
    """``tree`` copied into the source server's root (its files and folders owned by
    the server's account), whatever was there removed first."""
    _empty(src_root)
    shutil.copytree(tree, src_root, dirs_exist_ok=True, symlinks=True)
    for dirpath, dirs, files in os.walk(src_root):
        for name in dirs + files:
            os.lchown(os.path.join(dirpath, name), *owner)


def _sizes(root: Path) -> dict[str, int]:
    """Relative path -> size of every regular file below ``root``."""
    return {p.relative_to(root).as_posix(): p.stat().st_size
            for p in root.rglob("*") if p.is_file() and not p.is_symlink()}


def _empty(folder: Path) -> None:
    for child in folder.iterdir():
        if child.is_dir():
            shutil.rmtree(child)
        else:
            child.unlink()


def timeline(trace: Path, ports: dict[tuple[str, int], str]) -> list[str]:
    """The events of one ``strace`` of a run, in ms from its ``exec``: each connection
    opened (to which side, control or data), each FTP command sent (a password masked),
    and the exit. ``ports`` names the servers' control addresses (host, port)."""
    out: list[str] = []
    start: float | None = None
    fds: dict[str, str] = {}
    for raw in trace.read_text(errors="replace").splitlines():
        m = _LINE.match(raw)
        if m is None:
            continue
        _pid, hh, mm, ss, call, fd, rest = m.groups()
        t = int(hh) * 3600 + int(mm) * 60 + float(ss)
        if start is None:
            start = t
        ms = f"{(t - start) * 1000:8.1f} ms"
        if call == "execve" and start == t:
            out.append(f"{ms}  exec")
        elif call == "connect" and (port := re.search(r"htons\((\d+)\)", rest)):
            host = re.search(r'inet_addr\("([^"]+)"\)', rest)
            name = ports.get((host.group(1) if host else "", int(port.group(1))), "data")
            fds[fd] = name
            out.append(f"{ms}  connect {name}")
        elif call == "sendto" and fd in fds:
            text = re.match(r'"([^"]*)', rest)
            line = (text.group(1) if text else "").replace("\\r\\n", "")
            if line.startswith("PASS"):
                line = "PASS ***"
            if fds[fd] != "data" and line:
                out.append(f"{ms}  {fds[fd]}: {line}")
        elif call == "exit_group":
            out.append(f"{ms}  exit")
    return out


def _run(variant_root: Path, src: str, dst: str, env: dict[str, str], journal: Path,
         spy: Path | None, wrap: str = "", extra: tuple[str, ...] = (),
         cprofile: Path | None = None, command_log: Path | None = None,
         ) -> tuple[float, float, int, int]:
    journal.unlink(missing_ok=True)
    argv = [sys.executable, "-c", "from fsmove.cli import main; main()", "copy", src, dst,
            "--quiet", "--journal", str(journal), *extra]
    if command_log is not None:
        argv = [sys.executable, "-m", "benchmarks.ftp_command_log", str(command_log),
                *argv[3:]]
    if cprofile is not None:
        argv = [sys.executable, "-c", _CPROFILE_ENTRY, str(cprofile), *argv[3:]]
    elif spy is not None:
        # 250 samples a second (py-spy's default 100 leaves a 3 s run ~300 samples);
        # FSMOVE_SPY_BUSY=1: CPU samples only (no --idle), for where the CPU goes.
        idle = [] if os.environ.get("FSMOVE_SPY_BUSY") == "1" else ["--idle"]
        native = ["--native"] if os.environ.get("FSMOVE_SPY_NATIVE") == "1" else []
        argv = ["py-spy", "record", *idle, *native, "--rate", "250", "--format", "raw",
                "-o", str(spy), "--", *argv]
    elif wrap:
        argv = [*wrap.split(), *argv]
    # The variant's fsmove first; this checkout after it for benchmarks.ftp_command_log.
    path = [str(variant_root)] + ([_REPO] if command_log is not None else [])
    run_env = {**env, "PYTHONPATH": os.pathsep.join(path)}
    start = time.monotonic()
    # Started in the variant's folder: ``python -c`` puts the working directory first
    # on sys.path, and from the repository root every variant ran this checkout.
    proc = subprocess.Popen(argv, env=run_env, stdout=subprocess.DEVNULL,
                            stderr=subprocess.PIPE, cwd=variant_root)
    _, status, usage = os.wait4(proc.pid, 0)
    wall = time.monotonic() - start
    assert proc.stderr is not None
    err = proc.stderr.read().decode(errors="replace")
    proc.stderr.close()
    code = os.waitstatus_to_exitcode(status)
    if code != 0:
        print(err[-2000:], file=sys.stderr)
    return wall, usage.ru_utime + usage.ru_stime, code, usage.ru_minflt


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--size-mib", type=int, default=256)
    parser.add_argument("--size-kib", type=int,
                        help="each file's size in KiB instead (small files; at least 1)")
    parser.add_argument("--files", type=int, default=2)
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--variant", action="append", default=[],
                        help="NAME=SOURCE_TREE (default: this checkout as 'here')")
    parser.add_argument("--workdir", type=Path, default=Path("/tmp/fsmove-ftp-profile"))
    parser.add_argument("--py-spy", type=Path, help="record the first variant's first run")
    parser.add_argument("--cprofile", type=Path,
                        help="the same with cProfile (CPU clock): a .pstats file")
    parser.add_argument("--wrap", default="", help="a command prefix for every run "
                        "(e.g. 'strace -f -tt -o OUT -e trace=connect')")
    parser.add_argument("--rtt-ms", type=float, default=0.0,
                        help="a latency relay in front of both servers (round trip, ms)")
    parser.add_argument("--copy-args", default="",
                        help="more arguments for every `fsmove copy` (e.g. '--verify')")
    parser.add_argument("--command-log", type=Path,
                        help="log every FTP command and reply of the first variant's "
                        "first run to this file (benchmarks/ftp_command_log.py) and "
                        "print a summary per half second; that run is not counted")
    parser.add_argument("--tree", type=Path,
                        help="copy this local tree (put on the source server) instead of "
                        "--files generated files (e.g. a benchmark corpus)")
    parser.add_argument("--timeline", action="store_true",
                        help="trace each variant's first run and print its timeline "
                        "(that run is not counted)")
    args = parser.parse_args()
    size = args.size_kib * 1024 if args.size_kib else args.size_mib * MiB

    work: Path = args.workdir
    work.mkdir(parents=True, exist_ok=True)
    os.chmod(work, 0o755)
    variants = [v.split("=", 1) for v in args.variant] or [["here", "."]]
    roots = {name: _layout(name, Path(tree).resolve(), work) for name, tree in variants}
    account = ensure_account()
    owner = (account.uid, account.gid)
    with contextlib.ExitStack() as stack:
        servers = []
        urls = []
        ports: dict[tuple[str, int], str] = {}
        for side in ("src", "dst"):
            wd = work / side
            wd.mkdir(exist_ok=True)
            os.chmod(wd, 0o755)
            wan = args.rtt_ms > 0
            server = stack.enter_context(start_vsftpd(
                wd, listen_address=_SERVER_ADDR[side],
                pasv_address=_RELAY_ADDR[side] if wan else None))
            host = server.host
            if wan:
                assert server.pasv_ports is not None
                low, high = server.pasv_ports
                host = _RELAY_ADDR[side]
                stack.enter_context(start_relay(
                    listen_host=host, target_host=server.host,
                    ports=[server.port, *range(low, high + 1)],
                    one_way_delay=args.rtt_ms / 2000))
            servers.append(server)
            urls.append(f"ftp://{server.user}@{host}:{server.port}/")
            ports[(host, server.port)] = side
        src, dst = servers
        src_url, dst_url = urls
        if args.tree is not None:
            _put_tree(args.tree, src.root, owner)
            expected = _sizes(src.root)
            total = sum(expected.values())
        else:
            _corpus(src.root, args.files, size, owner)
            expected = {f"big{i}.bin": size for i in range(args.files)}
            total = args.files * size
        env = {**os.environ, "FSMOVE_SRC_PASSWORD": src.password,
               "FSMOVE_DST_PASSWORD": dst.password}
        results: dict[str, list[tuple[float, float]]] = {name: [] for name in roots}
        for name in roots:  # untimed: compiles each variant's bytecode
            _empty(dst.root)
            _run(roots[name], src_url, dst_url, env, work / "journal.sqlite", None)
        for rnd in range(args.rounds):
            order = list(roots) if rnd % 2 == 0 else list(reversed(roots))
            for name in order:
                _empty(dst.root)
                first = rnd == 0 and name == order[0]
                spy = args.py_spy if first else None
                prof = args.cprofile if first else None
                log = args.command_log if first else None
                trace = work / f"trace-{name}.txt" if args.timeline and rnd == 0 else None
                wrap = f"{STRACE} -o {trace}" if trace is not None else args.wrap
                wall, cpu, code, faults = _run(roots[name], src_url, dst_url, env,
                                       work / "journal.sqlite", spy, wrap,
                                       tuple(args.copy_args.split()), prof, log)
                if trace is not None:
                    print(f"timeline of {name} (traced: slower than untraced):")
                    print("\n".join(timeline(trace, ports)))
                ok = code == 0 and _sizes(dst.root) == expected
                print(f"round {rnd} {name:>8}: wall {wall:6.2f} s  cpu {cpu:5.2f} s  "
                      f"{total / MiB / wall:6.0f} MiB/s  {len(expected) / wall:6.0f} files/s  "
                      f"{faults:7d} minor faults  "
                      f"{'ok' if ok else 'FAILED'}",
                      flush=True)
                if log is not None:
                    from benchmarks.ftp_command_log import summary
                    print(f"FTP commands of {name} per half second ({log}):")
                    print("\n".join(summary(log)))
                if ok and spy is None and prof is None and trace is None and log is None:
                    results[name].append((wall, cpu))
        for name, runs in results.items():
            if runs:
                print(f"{name:>8}: median wall {statistics.median(w for w, _ in runs):.2f} s, "
                      f"median cpu {statistics.median(c for _, c in runs):.2f} s "
                      f"({len(runs)} runs)")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
