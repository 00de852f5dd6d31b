"""When each SFTP request of one ``fsmove copy`` goes out and comes back, over the WAN relay.

``python -m benchmarks.profile_sftp_timeline [--one-way-ms 30] [--files 20 | --tree DIR]
[--rounds 1]`` starts the test sshd, a latency relay in front of it, a source folder of
small files on it (or a copy of ``DIR``: a benchmark corpus), and runs ``fsmove copy``
sftp -> sftp (both sides through the relay) into a new folder, as a child process
whose asyncssh calls are timed: ``-> stat '...'`` when a request is made, ``<- stat
'...'`` when its answer is back, in ms since the child's ``exec``. It is the
measurement behind "Profile: first byte over SFTP" in benchmarks/README.md: which round
trips stand between the start and the first file.

Only asyncssh's client methods are wrapped (logins, SFTP start, stat/lstat/open/mkdir/
setstat/rename, a file's read/stat/close); the bytes on the wire are unchanged.

``--ssh-log`` instead wraps nothing and imports nothing ahead (the copy's own start,
early connections included, is what is timed) and prints asyncssh's own debug log, one
line per step of each connection and SFTP request, timed the same way, with marks for
when the first TCP connects and the big imports start and end; ``--password``
logs in by password (as the benchmark does) rather than with the test key. Session
19's timeline ("Session 19" in benchmarks/README.md) is ``--ssh-log --password --files
64``; session 23's (benchmarks/README.md, "Session 23") adds ``--tree`` with the
``real`` and ``small`` corpora.
"""

from __future__ import annotations

import argparse
import functools
import os
import re
import shutil
import subprocess
import sys
import time
from typing import Any

_T0 = "FSMOVE_TIMELINE_T0"
_SSH_LOG = "FSMOVE_TIMELINE_SSH_LOG"


def _patch_and_run() -> None:
    """In the child: wrap asyncssh's client calls with timestamps, then run the CLI."""
    t0 = float(os.environ[_T0])

    def log(msg: str) -> None:
        sys.stderr.write(f"{(time.time() - t0) * 1000:7.0f} ms  {msg}\n")

    if os.environ.get(_SSH_LOG):
        _log_asyncssh(log)
        _log_marks(log)
        from fsmove.cli import main as run_cli

        sys.argv[0] = "fsmove"
        run_cli()
        return
    import asyncssh
    from asyncssh import sftp

    def timed(owner: Any, name: str, label: str | None = None) -> None:
        orig = getattr(owner, name)

        @functools.wraps(orig)
        async def wrapper(*args: Any, **kwargs: Any) -> Any:
            what = f"{label or name} {args[1]!r:.70}" if len(args) > 1 else (label or name)
            log(f"-> {what}")
            try:
                return await orig(*args, **kwargs)
            finally:
                log(f"<- {what}")

        setattr(owner, name, wrapper)

    log("python started, imports next")
    connect = asyncssh.connect

    async def timed_connect(*args: Any, **kwargs: Any) -> Any:
        log("-> ssh connect")
        try:
            return await connect(*args, **kwargs)
        finally:
            log("<- ssh connect")

    asyncssh.connect = timed_connect
    timed(asyncssh.SSHClientConnection, "start_sftp_client")
    # fsmove starts SFTP itself since session 15 (transfers/sftp/quick_start.py).
    try:
        from fsmove.transfers.sftp import store as sftp_store
    except ImportError:
        sftp_store = None
    if sftp_store is not None and hasattr(sftp_store, "start_sftp"):
        quick = sftp_store.start_sftp

        async def timed_start(*args: Any, **kwargs: Any) -> Any:
            log("-> start_sftp")
            try:
                return await quick(*args, **kwargs)
            finally:
                log("<- start_sftp")

        sftp_store.start_sftp = timed_start
    for name in ("stat", "lstat", "open", "posix_rename", "mkdir", "setstat", "rename",
                 "remove"):
        timed(sftp.SFTPClient, name)
    for name in ("read", "stat", "close"):
        timed(sftp.SFTPClientFile, name, f"file.{name}")
    # fsmove's own channel (transfers/sftp/channel.py) asks the handler directly.
    for name in ("opendir", "readdir", "open", "read", "write", "close", "fstat", "lstat",
                 "stat", "mkdir", "setstat", "fsetstat", "rename", "posix_rename"):
        if hasattr(sftp.SFTPClientHandler, name):
            timed(sftp.SFTPClientHandler, name, f"h.{name}")
    from fsmove.cli import main

    sys.argv[0] = "fsmove"
    main()


#: Modules whose import is timed by ``--ssh-log`` (start and end): where the start's
#: ~0.3 s before the first SSH connection goes.
_MARKED_MODULES = ("typer", "fsmove.commands.copy", "fsmove.transfers.copy", "asyncssh",
                   "fsmove.transfers.sftp")


def _log_marks(log: Any) -> None:
    """Log when the first TCP connect starts (the early connection's thread or a
    store's own) and when the big imports start and end."""
    import builtins
    import socket

    connect = socket.create_connection

    def timed_connect(*args: Any, **kwargs: Any) -> Any:
        log(f"mark: TCP connect to {args[0]!r} starts")
        return connect(*args, **kwargs)

    socket.create_connection = timed_connect  # type: ignore[assignment]
    real_import = builtins.__import__
    seen: set[str] = set()

    def timed_import(name: str, *args: Any, **kwargs: Any) -> Any:
        if name not in _MARKED_MODULES or name in seen or name in sys.modules:
            return real_import(name, *args, **kwargs)
        seen.add(name)
        log(f"mark: import {name} starts")
        try:
            return real_import(name, *args, **kwargs)
        finally:
            log(f"mark: import {name} ends")

    builtins.__import__ = timed_import


def _log_asyncssh(log: Any) -> None:
    """asyncssh's debug log through ``log``, set up before asyncssh is imported."""
    import logging

    class Timed(logging.Handler):
        def emit(self, record: logging.LogRecord) -> None:
            log(f"{record.name} {record.getMessage()[:120]}")

    logger = logging.getLogger("asyncssh")
    logger.addHandler(Timed())
    logger.setLevel(logging.DEBUG)
    logger.propagate = False


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--one-way-ms", type=float, default=30.0)
    parser.add_argument("--files", type=int, default=20)
    parser.add_argument("--tree", type=str, default=None,
                        help="copy this folder as the source instead of --files small files")
    parser.add_argument("--rounds", type=int, default=1)
    parser.add_argument("--ssh-log", action="store_true",
                        help="asyncssh's debug log, nothing wrapped or imported ahead")
    parser.add_argument("--password", action="store_true",
                        help="log in by password, not with the test key")
    args = parser.parse_args()
    from .ssh_link import sshd_behind_relay

    with sshd_behind_relay(args.one_way_ms) as link:
        server, listen, tmp = link.server, link.relay_port, str(link.folder)
        src = server.root / "src"
        if args.tree:
            shutil.copytree(args.tree, src)
        else:
            src.mkdir()
            for i in range(args.files):
                (src / f"f{i:04d}.bin").write_bytes(os.urandom(1000))
        subprocess.run(["chown", "-R", f"{server.owner[0]}:{server.owner[1]}", str(src)],
                       check=True)
        assert server.known_hosts is not None
        known = link.folder / "known_hosts"
        known.write_text("".join(
            re.sub(r"^\[127\.0\.0\.1\]:\d+", f"[127.0.0.1]:{listen}", line) + "\n"
            for line in server.known_hosts.read_text().splitlines()
            if line.startswith("[")))
        for n in range(args.rounds):
            def url(sub: str) -> str:
                return f"sftp://{server.user}@127.0.0.1:{listen}{server.path(sub)}"

            env = {**os.environ, _T0: repr(time.time()), "HOME": tmp,
                   "XDG_STATE_HOME": f"{tmp}/state{n}"}
            login = ["--identity", str(server.client_key)]
            if args.password:
                assert server.password is not None
                env["FSMOVE_SRC_PASSWORD"] = env["FSMOVE_DST_PASSWORD"] = server.password
                login = []
            if args.ssh_log:
                env[_SSH_LOG] = "1"
            run = subprocess.run(
                [sys.executable, "-m", "benchmarks.profile_sftp_timeline", "--child",
                 "copy", url("src"), url(f"dst{n}"), "--quiet",
                 "--known-hosts", str(known), *login],
                env=env, capture_output=True, text=True, check=False)
            print(run.stderr, end="")
            print(f"round {n}: exit {run.returncode}")


if __name__ == "__main__":
    if len(sys.argv) > 1 and sys.argv[1] == "--child":
        del sys.argv[1]
        _patch_and_run()
    else:
        main()
