"""Every FTP command one ``fsmove copy`` sends and every reply it reads, timed, and a
summary of them per half second: the measurement behind "Profile: small files over FTP
at 60 ms" in benchmarks/README.md (logins, listings, the write probe, files per second).

Used by ``python -m benchmarks.profile_ftp_large --command-log FILE``: the first run of
the first variant runs as ``python -m benchmarks.ftp_command_log FILE copy ...``, which
wraps the FTP client's ``send``, ``send_many`` and reply reader (the bytes on the wire are
unchanged) and writes one line per event: ms since the child started, the client (one
control connection), ``->`` or ``<-``, the text (a password is never written).
"""

from __future__ import annotations

import collections
import os
import sys
import time
from pathlib import Path
from typing import Any


def _patch_and_run(out: Path) -> None:
    t0 = time.monotonic()
    log = open(out, "w", buffering=1 << 20)  # closed when main() returns or raises

    from fsmove.transfers.ftp import client as ftp_client

    cls = ftp_client.FtpClient
    send, send_many, read_reply = cls.send, cls.send_many, cls._read_reply

    def write(client: object, arrow: str, text: str) -> None:
        log.write(f"{(time.monotonic() - t0) * 1000:9.1f} {id(client):x} {arrow} {text}\n")

    async def logged_send(self: Any, line: str) -> None:
        write(self, "->", "PASS ***" if line.startswith("PASS") else line)
        await send(self, line)

    async def logged_send_many(self: Any, lines: list[str]) -> None:
        write(self, "->", " | ".join("PASS ***" if x.startswith("PASS") else x
                                     for x in lines)[:200])
        await send_many(self, lines)

    async def logged_reply(self: Any) -> Any:
        reply = await read_reply(self)
        write(self, "<-", f"{reply.code} {reply.lines[0][:80] if reply.lines else ''}")
        return reply

    cls.send, cls.send_many, cls._read_reply = logged_send, logged_send_many, logged_reply
    slow_ms = float(os.environ.get("FSMOVE_SLOW_CALLBACK_MS", "0"))
    if slow_ms > 0:
        # Every event-loop callback that ran longer than this (wall; its CPU beside
        # it), what it was, and when it ended: what held the loop while replies
        # waited (a ``!!`` line).
        import asyncio.events

        run_handle = asyncio.events.Handle._run

        def timed_run(handle: asyncio.events.Handle) -> None:
            started, cpu = time.perf_counter(), time.thread_time()
            run_handle(handle)
            took = (time.perf_counter() - started) * 1000
            if took > slow_ms:
                callback = getattr(handle, "_callback", None)
                owner = getattr(callback, "__self__", callback)
                write(None, "!!", f"callback {took:.1f} ms "
                      f"({(time.thread_time() - cpu) * 1000:.1f} ms CPU): {owner!r:.160}")

        asyncio.events.Handle._run = timed_run  # type: ignore[method-assign]
    from fsmove.cli import main

    sys.argv[0] = "fsmove"
    try:
        main()
    finally:
        log.close()


#: What the summary counts: (column, the event's start).
_COUNTED = (("RETR", "-> RETR"), ("STOR", "-> STOR"), ("logins", "-> USER"),
            ("logged in", "<- 230"), ("LIST", "-> LIST"), ("MLSD", "-> MLSD"))


def summary(log: Path, step_s: float = 0.5) -> list[str]:
    """Counts per ``step_s`` seconds (a STOR pipelined behind a DELE counts too)."""
    counts: dict[str, collections.Counter[int]] = {n: collections.Counter() for n, _ in _COUNTED}
    last = 0
    for line in log.read_text(errors="replace").splitlines():
        parts = line.split(None, 2)
        if len(parts) < 3:
            continue
        step = int(float(parts[0]) / 1000 // step_s)
        last = max(last, step)
        for name, start in _COUNTED:
            if parts[2].startswith(start) or (name == "STOR" and "| STOR " in parts[2]):
                counts[name][step] += 1
    head = "     s  " + "".join(f"{n:>10}" for n, _ in _COUNTED)
    return [head] + [f"{k * step_s:6.1f}  " + "".join(f"{counts[n][k]:10d}" for n, _ in _COUNTED)
                     for k in range(last + 1)]


if __name__ == "__main__":
    target = Path(sys.argv.pop(1))
    _patch_and_run(target)
