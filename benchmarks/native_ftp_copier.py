"""A measuring stick, not a product: FTP -> FTP through libcurl (pycurl's multi interface).

Usage (passwords in ``FSMOVE_SRC_PASSWORD`` / ``FSMOVE_DST_PASSWORD``, never argv)::

    python -m benchmarks.native_ftp_copier SRC_URL DST_URL [--parallel 8] [--bare]

Issue 18 asks, where Python is the limit, to measure a well-kept native piece before
adopting it. This copier answers "what would fsmove's small-file FTP path cost if its
protocol work ran in C": libcurl owns the control and data connections, Python only
starts transfers and takes the bytes (a write callback per chunk: each file is hashed
with XXH3-128 as it arrives and held in memory, so it suits the small-file corpora
only). By default it sends the commands fsmove sends per file, so the two compare like
for like: on the source ``RETR`` then ``SIZE`` + ``MDTM`` (the check that the file did
not change); on the destination ``DELE`` of the temporary name, ``STOR`` to it, then
``SITE CHMOD``, ``MDTM`` (set the time), ``RNFR``/``RNTO`` and ``SIZE`` of the placed
file, every reply line handed to Python (as fsmove reads them). ``--bare`` sends only
``RETR`` and ``STOR`` to the final name (what lftp's mirror does, less its SITEs).

The tree is listed with ``LIST`` (Unix lines, as vsftpd writes them) and the
destination's folders made first, in one session.
"""

from __future__ import annotations

import argparse
import asyncio
import collections
import contextlib
import io
import os
import select
import sys
import threading
import time
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import quote, urlsplit

import xxhash

try:
    import pycurl
except ImportError:  # the bench extra installs it
    pycurl = None


def _easy(user: str, password: str, lines: list[bytes] | None) -> pycurl.Curl:
    c = pycurl.Curl()
    c.setopt(pycurl.USERNAME, user)
    c.setopt(pycurl.PASSWORD, password)
    c.setopt(pycurl.FTP_FILEMETHOD, pycurl.FTPMETHOD_NOCWD)
    c.setopt(pycurl.FTP_USE_EPSV, 1)
    if lines is not None:
        c.setopt(pycurl.HEADERFUNCTION, lines.append)
    return c


def _listing(base: str, root: str, user: str, password: str) -> list[tuple[str, int]]:
    c = _easy(user, password, None)
    files: list[tuple[str, int]] = []
    todo = [""]
    while todo:
        rel = todo.pop()
        buf = io.BytesIO()
        c.setopt(pycurl.URL, base + quote(f"{root}/{rel}".rstrip("/")) + "/")
        c.setopt(pycurl.WRITEDATA, buf)
        c.perform()
        for line in buf.getvalue().decode("utf-8", "surrogateescape").splitlines():
            parts = line.split(None, 8)
            if len(parts) < 9 or parts[8] in (".", ".."):
                continue
            child = f"{rel}/{parts[8]}" if rel else parts[8]
            if line.startswith("d"):
                todo.append(child)
            elif line.startswith("-"):
                files.append((child, int(parts[4])))
    c.close()
    return files


def _make_folders(base: str, root: str, user: str, password: str,
                  files: list[tuple[str, int]]) -> None:
    folders: set[str] = set()
    for rel, _size in files:
        parts = rel.split("/")[:-1]
        folders.update("/".join(parts[: i + 1]) for i in range(len(parts)))
    c = _easy(user, password, None)
    c.setopt(pycurl.URL, base + quote(root) + "/")
    c.setopt(pycurl.NOBODY, 1)
    ordered = sorted(folders, key=lambda f: (f.count("/"), f))
    c.setopt(pycurl.QUOTE, [f"*MKD {root}/{f}" for f in ordered])  # '*': may exist
    c.perform()
    c.close()


@dataclass
class _Job:
    """Both ends of a copy and the tree to copy (listed, the destination's folders made)."""

    src: str
    dst: str
    bare: bool
    stamp: str = field(default_factory=lambda: time.strftime("%Y%m%d%H%M%S", time.gmtime()))

    def __post_init__(self) -> None:
        s, d = urlsplit(self.src), urlsplit(self.dst)
        self.s_base, self.d_base = f"ftp://{s.hostname}:{s.port}", f"ftp://{d.hostname}:{d.port}"
        self.s_root, self.d_root = s.path.rstrip("/"), d.path.rstrip("/")
        self.s_user, self.d_user = s.username or "", d.username or ""
        self.s_pw = os.environ["FSMOVE_SRC_PASSWORD"]
        self.d_pw = os.environ["FSMOVE_DST_PASSWORD"]
        self.files = _listing(self.s_base, self.s_root, self.s_user, self.s_pw)
        _make_folders(self.d_base, self.d_root, self.d_user, self.d_pw, self.files)

    def reader(self, lines: list[bytes]) -> pycurl.Curl:
        return _easy(self.s_user, self.s_pw, None if self.bare else lines)

    def writer(self, lines: list[bytes]) -> pycurl.Curl:
        w = _easy(self.d_user, self.d_pw, None if self.bare else lines)
        w.setopt(pycurl.UPLOAD, 1)
        return w

    def set_get(self, r: pycurl.Curl, rel: str) -> tuple[io.BytesIO, Any]:
        """``r`` made to fetch ``rel`` into memory, hashed as it comes."""
        buf = io.BytesIO()
        hasher = xxhash.xxh3_128()

        def take(chunk: bytes) -> None:
            hasher.update(chunk)
            buf.write(chunk)

        path = f"{self.s_root}/{rel}"
        r.setopt(pycurl.URL, self.s_base + quote(path))
        r.setopt(pycurl.WRITEFUNCTION, take)
        if not self.bare:
            r.setopt(pycurl.POSTQUOTE, [f"SIZE {path}", f"MDTM {path}"])
        return buf, hasher

    def set_put(self, w: pycurl.Curl, rel: str, buf: io.BytesIO) -> None:
        """``w`` made to store ``buf`` as ``rel`` (fsmove's commands unless bare)."""
        final = f"{self.d_root}/{rel}"
        temp = (final if self.bare
                else f"{final.rsplit('/', 1)[0]}/.fsmove-{rel.rsplit('/', 1)[-1]}")
        w.setopt(pycurl.URL, self.d_base + quote(temp))
        if not self.bare:
            w.setopt(pycurl.PREQUOTE, [f"*DELE {temp}"])
            w.setopt(pycurl.POSTQUOTE, [f"SITE CHMOD 644 {temp}", f"MDTM {self.stamp} {temp}",
                                        f"RNFR {temp}", f"RNTO {final}", f"SIZE {final}"])
        buf.seek(0)
        w.setopt(pycurl.READDATA, buf)
        w.setopt(pycurl.INFILESIZE_LARGE, len(buf.getbuffer()))


def copy(src: str, dst: str, parallel: int, bare: bool) -> int:
    """The copy from libcurl's own loop (``multi.perform`` / ``multi.select``)."""
    job = _Job(src, dst, bare)
    lines: list[bytes] = []  # every reply line, as a client that checks them reads them
    readers = [job.reader(lines) for _ in range(parallel)]
    writers = [job.writer(lines) for _ in range(parallel)]
    multi = pycurl.CurlMulti()
    pending = list(reversed(job.files))
    ready: list[tuple[str, io.BytesIO]] = []
    active: dict[pycurl.Curl, tuple[str, str, io.BytesIO, Any]] = {}
    copied = 0
    while pending or ready or active:
        while ready and writers:
            rel, buf = ready.pop()
            w = writers.pop()
            job.set_put(w, rel, buf)
            active[w] = ("put", rel, buf, None)
            multi.add_handle(w)
        while pending and readers and len(ready) < parallel:
            rel, _size = pending.pop()
            r = readers.pop()
            buf, hasher = job.set_get(r, rel)
            active[r] = ("get", rel, buf, hasher)
            multi.add_handle(r)
        while multi.perform()[0] == pycurl.E_CALL_MULTI_PERFORM:
            pass
        while True:
            queued, ok, failed = multi.info_read()
            for c in ok:
                kind, rel, buf, hasher = active.pop(c)
                multi.remove_handle(c)
                if kind == "get":
                    hasher.hexdigest()
                    readers.append(c)
                    ready.append((rel, buf))
                else:
                    writers.append(c)
                    copied += 1
            for c, code, message in failed:
                print(f"failed: {active[c][1]}: {code} {message}", file=sys.stderr)
                return 1
            if not queued:
                break
        lines.clear()
        multi.select(1.0)
    print(f"{copied} files")
    return 0


class _LoopDriver:
    """libcurl's multi interface on asyncio's loop (its socket and timer callbacks), as a
    product would have to run it beside the rest of fsmove's engine."""

    def __init__(self, loop: asyncio.AbstractEventLoop) -> None:
        self.loop = loop
        self.multi = pycurl.CurlMulti()
        self.multi.setopt(pycurl.M_SOCKETFUNCTION, self._on_socket)
        self.multi.setopt(pycurl.M_TIMERFUNCTION, self._on_timer)
        self.timer: asyncio.TimerHandle | None = None
        self.waiting: dict[pycurl.Curl, asyncio.Future[None]] = {}
        self.watched: dict[int, int] = {}

    def _on_socket(self, what: int, fd: int, _multi: object, _data: object) -> None:
        before = self.watched.get(fd, 0)
        want = 0 if what == pycurl.POLL_REMOVE else what
        if before == want:
            return
        if before & pycurl.POLL_IN and not want & pycurl.POLL_IN:
            self.loop.remove_reader(fd)
        if before & pycurl.POLL_OUT and not want & pycurl.POLL_OUT:
            self.loop.remove_writer(fd)
        if want & pycurl.POLL_IN and not before & pycurl.POLL_IN:
            self.loop.add_reader(fd, self._act, fd, pycurl.CSELECT_IN)
        if want & pycurl.POLL_OUT and not before & pycurl.POLL_OUT:
            self.loop.add_writer(fd, self._act, fd, pycurl.CSELECT_OUT)
        if want:
            self.watched[fd] = want
        else:
            self.watched.pop(fd, None)

    def _on_timer(self, ms: int) -> None:
        if self.timer is not None:
            self.timer.cancel()
            self.timer = None
        if ms >= 0:
            self.timer = self.loop.call_later(ms / 1000, self._act, pycurl.SOCKET_TIMEOUT, 0)

    def _act(self, fd: int, event: int) -> None:
        while self.multi.socket_action(fd, event)[0] == pycurl.E_CALL_MULTI_PERFORM:
            pass
        while True:
            queued, ok, failed = self.multi.info_read()
            for c in ok:
                self.multi.remove_handle(c)
                self.waiting.pop(c).set_result(None)
            for c, code, message in failed:
                self.multi.remove_handle(c)
                self.waiting.pop(c).set_exception(RuntimeError(f"{code} {message}"))
            if not queued:
                break

    async def perform(self, c: pycurl.Curl) -> None:
        done = self.loop.create_future()
        self.waiting[c] = done
        self.multi.add_handle(c)
        await done


class _ThreadDriver:
    """libcurl's multi interface on a thread of its own (its loop: ``fdset`` + ``select``
    with a wake-up pipe), each finished transfer handed to asyncio's loop."""

    def __init__(self, loop: asyncio.AbstractEventLoop) -> None:
        self.loop = loop
        self.multi = pycurl.CurlMulti()
        self.waiting: dict[pycurl.Curl, asyncio.Future[None]] = {}
        self.incoming: collections.deque[pycurl.Curl] = collections.deque()
        self.wake_r, self.wake_w = os.pipe()
        os.set_blocking(self.wake_r, False)
        self.stopping = False
        self.thread = threading.Thread(target=self._run, daemon=True)
        self.thread.start()

    def _run(self) -> None:
        multi = self.multi
        while not self.stopping:
            while self.incoming:
                multi.add_handle(self.incoming.popleft())
            while multi.perform()[0] == pycurl.E_CALL_MULTI_PERFORM:
                pass
            while True:
                queued, ok, failed = multi.info_read()
                for c in ok:
                    multi.remove_handle(c)
                    self.loop.call_soon_threadsafe(self._finish, c, None)
                for c, code, message in failed:
                    multi.remove_handle(c)
                    self.loop.call_soon_threadsafe(self._finish, c, f"{code} {message}")
                if not queued:
                    break
            if self.incoming:
                continue
            r, w, x = multi.fdset()
            wait = multi.timeout()
            select.select([*r, self.wake_r], w, x, 1.0 if wait < 0 else wait / 1000)
            with contextlib.suppress(BlockingIOError):
                os.read(self.wake_r, 4096)

    def _finish(self, c: pycurl.Curl, error: str | None) -> None:
        done = self.waiting.pop(c)
        if error is None:
            done.set_result(None)
        else:
            done.set_exception(RuntimeError(error))

    async def perform(self, c: pycurl.Curl) -> None:
        done = self.loop.create_future()
        self.waiting[c] = done
        self.incoming.append(c)
        os.write(self.wake_w, b"x")
        await done

    def stop(self) -> None:
        self.stopping = True
        os.write(self.wake_w, b"x")
        self.thread.join()


async def copy_on_loop(src: str, dst: str, parallel: int, bare: bool,
                       threaded: bool = False) -> int:
    """The same copy, each file a coroutine of ``parallel`` workers on asyncio's loop."""
    job = _Job(src, dst, bare)
    loop = asyncio.get_running_loop()
    driver = _ThreadDriver(loop) if threaded else _LoopDriver(loop)
    todo = list(reversed(job.files))

    async def worker() -> int:
        lines: list[bytes] = []
        r, w = job.reader(lines), job.writer(lines)
        copied = 0
        while todo:
            rel, _size = todo.pop()
            buf, hasher = job.set_get(r, rel)
            await driver.perform(r)
            hasher.hexdigest()
            job.set_put(w, rel, buf)
            await driver.perform(w)
            lines.clear()
            copied += 1
        return copied

    done = await asyncio.gather(*(worker() for _ in range(parallel)))
    if isinstance(driver, _ThreadDriver):
        driver.stop()
    print(f"{sum(done)} files")
    return 0


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("src")
    parser.add_argument("dst")
    parser.add_argument("--parallel", type=int, default=8)
    parser.add_argument("--bare", action="store_true", help="RETR and STOR only")
    parser.add_argument("--asyncio", action="store_true",
                        help="drive libcurl from asyncio's loop, one coroutine per worker")
    parser.add_argument("--thread", action="store_true",
                        help="libcurl on a thread of its own, one coroutine per worker on "
                             "asyncio's loop awaiting it")
    args = parser.parse_args()
    if pycurl is None:
        print("pycurl is not installed: pip install -e '.[bench]'", file=sys.stderr)
        return 2
    if args.asyncio or args.thread:
        return asyncio.run(copy_on_loop(args.src, args.dst, args.parallel, args.bare,
                                        threaded=args.thread))
    return copy(args.src, args.dst, args.parallel, args.bare)


if __name__ == "__main__":
    raise SystemExit(main())
