"""A small, real FTP server that lies: crafted MLSD listings, SIZE replies that disagree
with what RETR streams, transfers that stall. It speaks FTP over real sockets on
127.0.0.1 (control and passive data connections), one thread with its own event loop,
so fsmove talks to it exactly as it talks to vsftpd.

Read-only by default. ``start_hostile_ftpd(tree, writable=True)`` accepts STOR, APPE,
REST, DELE, MKD, RNFR/RNTO into its in-memory tree, and lies about fsmove's temporary
files only (names ``.fsmove.*.part``, so its write probe sees an honest server):
``keep_bytes`` keeps only that many bytes of such a STOR (and still answers 226),
``fake_rename`` answers 250 to an RNTO of one without renaming anything;
``refuse_rename`` refuses every RNFR (a server that cannot rename);
``hold_after_upload`` answers a big STOR's 226 and then reads nothing on that
connection until ``release_holds()`` (vsftpd closing a big file);
``hold_before_retr_end`` sends a RETR's bytes, then holds its 226 the same way; a file's
``end_reply`` replaces its RETR's 226 (every byte sent). For bounded
memory tests: ``endless_listing`` streams MLSD lines forever, ``endless_reply`` answers
FEAT with a multi-line reply that never ends; ``sent`` counts the bytes either wrote.

The tree is a mapping from raw server paths (bytes, so names that are not UTF-8 can be
served) to a ``HostileDir`` (the MLSD lines it sends, verbatim) or a ``HostileFile``.

    tree = {b"/": HostileDir((mlsd_line("file", b"a.txt", 3),)),
            b"/a.txt": HostileFile(b"abc")}
    with start_hostile_ftpd(tree) as server:
        server.url()    # ftp://hostile@127.0.0.1:PORT/  (password in server.password)
"""

from __future__ import annotations

import asyncio
import contextlib
import secrets
import threading
from collections.abc import Callable, Iterator, Mapping
from concurrent.futures import Future
from dataclasses import dataclass, field
from typing import Any

#: How long a data connection may take to arrive after EPSV/PASV.
_DATA_ACCEPT_TIMEOUT = 10.0


@dataclass(frozen=True)
class HostileFile:
    data: bytes
    #: What SIZE, MLST and the listing claim (None: the true size).
    claimed_size: int | None = None
    #: RETR sends this many bytes, then nothing more until the client gives up.
    stall_after: int | None = None
    #: RETR sends every byte, closes the data connection, then answers this instead
    #: of 226 (a server that could not confirm the download), while the server lies.
    end_reply: str | None = None

    @property
    def size(self) -> int:
        return len(self.data) if self.claimed_size is None else self.claimed_size


@dataclass(frozen=True)
class HostileDir:
    #: MLSD data lines, sent verbatim (CRLF is added after each).
    lines: tuple[bytes, ...] = ()
    #: Ignore ``lines``: list the tree's entries below this folder, with the sizes SIZE
    #: gives at the time of the listing.
    auto: bool = False


Node = HostileFile | HostileDir


def mlsd_line(kind: str, name: bytes, size: int = 0) -> bytes:
    """``type=KIND;size=N;modify=...; NAME`` as raw bytes (the name is not checked)."""
    return b"type=%s;size=%d;modify=20200101000000; %s" % (kind.encode(), size, name)


def _listing(tree: Mapping[bytes, Node], directory: bytes, *, lies: bool) -> list[bytes]:
    """MLSD lines for the tree's entries directly below ``directory``."""
    prefix = directory.rstrip(b"/") + b"/"
    lines = []
    for path, node in tree.items():
        if path.startswith(prefix) and path != prefix and b"/" not in path[len(prefix):]:
            name = path[len(prefix):]
            if isinstance(node, HostileFile):
                lines.append(mlsd_line("file", name, node.size if lies else len(node.data)))
            else:
                lines.append(mlsd_line("dir", name))
    return lines


@dataclass
class _Switches:
    """Behaviour a test can change while the server runs (from any thread)."""

    stalls: bool = True
    #: SIZE, MLST and listings give ``claimed_size`` (else the true size).
    lies: bool = True
    #: Accept control connections but never send the greeting.
    mute: bool = False
    #: Accept writes (see the module doc) and the lies about fsmove's temporary files.
    writable: bool = False
    keep_bytes: int | None = None
    fake_rename: bool = False
    #: REST is refused ("502"): no ranged reads, no offset writes (APPE still works).
    refuse_rest: bool = False
    #: FEAT lists EPSV, which is then refused ("500"); PASV works.
    refuse_epsv: bool = False
    #: RNFR is refused ("502"): the server cannot rename (files are written in place).
    refuse_rename: bool = False
    #: MLSD streams lines forever / FEAT's multi-line reply never ends.
    endless_listing: bool = False
    endless_reply: bool = False
    #: Bytes sent by the endless listing or reply (until the client hung up).
    sent: int = 0
    #: After a STOR of at least this many bytes, answer 226, then read no command on
    #: that connection until ``release_holds()`` (vsftpd closes an upload's file after
    #: its 226: ~0.3 s for 512 MiB on ext4, during which it reads no command).
    hold_after_upload: int | None = None
    #: After a RETR's last byte (its data connection closed), send no final reply and
    #: read no command on that connection until ``release_holds()``.
    hold_before_retr_end: bool = False
    #: Sessions holding now, and how many held in all.
    holding: int = 0
    holds: int = 0
    #: Every RNTO: (the target path, sessions holding at that moment).
    renames: list[tuple[bytes, int]] = field(default_factory=list)


@dataclass(frozen=True)
class HostileServer:
    host: str
    port: int
    user: str
    password: str = field(repr=False)
    switches: _Switches = field(repr=False, compare=False)
    #: The server's live tree (what writes changed).
    tree: dict[bytes, Node] = field(repr=False, compare=False, default_factory=dict)
    #: Ends every hold (``release_holds``).
    release: Callable[[], None] = field(repr=False, compare=False, default=lambda: None)

    def files(self) -> dict[bytes, bytes]:
        """Path -> content of every file the server holds now."""
        return {p: n.data for p, n in list(self.tree.items()) if isinstance(n, HostileFile)}

    def url(self, path: str = "/") -> str:
        return f"ftp://{self.user}@{self.host}:{self.port}{path}"

    def stop_stalling(self) -> None:
        """From now on files marked ``stall_after`` are sent whole (the fault is gone)."""
        self.switches.stalls = False

    def stop_lying(self) -> None:
        """From now on sizes are the true ones, and every RETR ends with 226."""
        self.switches.lies = False

    @property
    def sent(self) -> int:
        """Bytes the endless listing or reply sent before the client gave up."""
        return self.switches.sent

    def release_holds(self) -> None:
        """Let the sessions held after an upload (``hold_after_upload``) read on."""
        self.release()

    def set_mute(self, mute: bool) -> None:
        """Greet new control connections (False) or leave them waiting forever (True)."""
        self.switches.mute = mute


class _Session:
    def __init__(self, server: _Core, reader: asyncio.StreamReader,
                 writer: asyncio.StreamWriter) -> None:
        self.core = server
        self.reader = reader
        self.writer = writer
        self.user: bytes | None = None
        self.logged_in = False
        self.rest = 0
        self.data_server: asyncio.Server | None = None
        self.data_conn: asyncio.Future[tuple[asyncio.StreamReader, asyncio.StreamWriter]] | None
        self.data_conn = None
        self.rename_from: bytes | None = None

    async def send(self, text: str | bytes) -> None:
        raw = text.encode() if isinstance(text, str) else text
        self.writer.write(raw + b"\r\n")
        await self.writer.drain()

    async def run(self) -> None:
        try:
            if self.core.switches.mute:
                await self.reader.read()  # until the client gives up
                return
            await self.send("220 hostile test server ready")
            while True:
                line = await self.reader.readline()
                if not line:
                    return
                line = line.rstrip(b"\r\n")
                verb, _, arg = line.partition(b" ")
                if not await self.handle(verb.upper().decode("ascii", "replace"), arg):
                    return
        except (ConnectionError, asyncio.IncompleteReadError):
            return
        finally:
            await self.close_data()
            self.writer.close()

    async def handle(self, verb: str, arg: bytes) -> bool:
        tree = self.core.tree
        if verb == "USER":
            self.user = arg
            await self.send("331 password please")
        elif verb == "PASS":
            if self.user == self.core.user.encode() and arg == self.core.password.encode():
                self.logged_in = True
                await self.send("230 logged in")
            else:
                await self.send("530 Login incorrect.")
        elif verb == "QUIT":
            await self.send("221 bye")
            return False
        elif not self.logged_in:
            await self.send("530 Please login with USER and PASS.")
        elif verb == "FEAT" and self.core.switches.endless_reply:
            await self.endless(b"211-Features:", b" MLST type*;size*;modify*;" + b"x" * 100)
        elif verb == "FEAT":
            await self.send(b"211-Features:\r\n MLST type*;size*;modify*;\r\n SIZE\r\n MDTM"
                            b"\r\n REST STREAM\r\n UTF8\r\n EPSV\r\n PASV\r\n211 End")
        elif verb == "EPSV" and self.core.switches.refuse_epsv:
            await self.send("500 EPSV not understood.")
        elif verb in ("OPTS", "TYPE", "NOOP", "MODE", "STRU"):
            await self.send("200 ok")
        elif verb == "SYST":
            await self.send("215 UNIX Type: L8")
        elif verb == "PWD":
            await self.send('257 "/" is the current directory')
        elif verb == "CWD":
            ok = isinstance(tree.get(_norm(arg)), HostileDir)
            await self.send("250 ok" if ok else "550 No such directory.")
        elif verb == "MLST":
            await self.mlst(_norm(arg))
        elif verb == "SIZE":
            node = tree.get(_norm(arg))
            if isinstance(node, HostileFile):
                await self.send(f"213 {self.size_of(node)}")
            else:
                await self.send("550 Could not get file size.")
        elif verb == "MDTM":
            ok = isinstance(tree.get(_norm(arg)), HostileFile)
            await self.send("213 20200101000000" if ok else "550 Could not get file time.")
        elif verb == "REST" and self.core.switches.refuse_rest:
            await self.send("502 REST not implemented.")
        elif verb == "REST":
            self.rest = int(arg)
            await self.send(f"350 Restart position accepted ({self.rest}).")
        elif verb in ("EPSV", "PASV"):
            await self.passive(verb)
        elif verb == "RETR":
            await self.retr(_norm(arg))
        elif verb == "MLSD":
            await self.mlsd(_norm(arg))
        elif verb == "ABOR":
            await self.close_data()
            await self.send("226 ABOR ok")
        elif verb in ("STOR", "APPE") and self.core.switches.writable:
            await self.store(_norm(arg), append=verb == "APPE")
        elif verb in ("DELE", "MKD", "RNFR", "RNTO") and self.core.switches.writable:
            await self.change(verb, _norm(arg))
        elif verb in ("STOR", "APPE", "STOU"):
            await self.close_data()
            await self.send("553 Could not create file: this server is read-only.")
        else:
            await self.send("550 Permission denied: this server is read-only.")
        return True

    async def endless(self, head: bytes, line: bytes) -> None:
        """A multi-line reply that never ends (until the client hangs up)."""
        switches = self.core.switches
        self.writer.write(head + b"\r\n")
        while True:
            self.writer.write(line + b"\r\n")
            switches.sent += len(line) + 2
            await self.writer.drain()

    async def store(self, path: bytes, *, append: bool) -> None:
        tree = self.core.tree
        rest, self.rest = self.rest, 0
        parent = path.rsplit(b"/", 1)[0] or b"/"
        if not isinstance(tree.get(parent), HostileDir) or isinstance(tree.get(path),
                                                                       HostileDir):
            await self.close_data()
            await self.send("553 Could not create file.")
            return
        reader = await self.open_data(want_reader=True)
        if reader is None:
            return
        data = await reader.read()
        await self.close_data()
        old = tree.get(path)
        before = old.data if isinstance(old, HostileFile) else b""
        if append:
            data = before + data
        elif rest:
            data = before[:rest].ljust(rest, b"\0") + data + before[rest + len(data):]
        keep = self.core.switches.keep_bytes
        if keep is not None and _is_temp(path):
            data = data[:keep]  # the lie: part of the upload is dropped, 226 all the same
        tree[path] = HostileFile(data)
        await self.send("226 Transfer complete.")
        switches = self.core.switches
        if switches.hold_after_upload is not None and len(data) >= switches.hold_after_upload:
            await self.hold()

    async def hold(self) -> None:
        """Read nothing more on this connection until ``release_holds()``."""
        switches = self.core.switches
        switches.holding += 1
        switches.holds += 1
        try:
            await self.core.released.wait()
        finally:
            switches.holding -= 1

    async def change(self, verb: str, path: bytes) -> None:
        tree = self.core.tree
        node = tree.get(path)
        if verb == "DELE":
            if isinstance(node, HostileFile):
                del tree[path]
                await self.send("250 Deleted.")
            else:
                await self.send("550 No such file.")
        elif verb == "MKD":
            if node is None:
                tree[path] = HostileDir(auto=True)
                await self.send(b'257 "' + path + b'" created')
            else:
                await self.send("550 Exists.")
        elif verb == "RNFR" and self.core.switches.refuse_rename:
            self.rename_from = None
            await self.send("502 RNFR not implemented.")
        elif verb == "RNFR":
            self.rename_from = path if node is not None else None
            await self.send("350 Ready." if node is not None else "550 No such file.")
        else:
            source, self.rename_from = self.rename_from, None
            self.core.switches.renames.append((path, self.core.switches.holding))
            if source is None:
                await self.send("503 RNFR first.")
            elif self.core.switches.fake_rename and _is_temp(source):
                await self.send("250 Renamed.")  # the lie: nothing moved
            else:
                tree[path] = tree.pop(source)
                await self.send("250 Renamed.")

    async def mlst(self, path: bytes) -> None:
        node = self.core.tree.get(path)
        if node is None:
            await self.send("550 No such file or directory.")
            return
        kind = "dir" if isinstance(node, HostileDir) else "file"
        size = self.size_of(node) if isinstance(node, HostileFile) else 0
        await self.send(b"250-Listing " + path + b"\r\n " + mlsd_line(kind, path, size)
                        + b"\r\n250 End")

    def size_of(self, node: HostileFile) -> int:
        return node.size if self.core.switches.lies else len(node.data)

    async def passive(self, verb: str) -> None:
        await self.close_data()
        loop = asyncio.get_running_loop()
        self.data_conn = loop.create_future()
        conn = self.data_conn

        def accepted(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
            if conn.done():
                writer.close()
            else:
                conn.set_result((reader, writer))

        self.data_server = await asyncio.start_server(accepted, self.core.host, 0)
        port = self.data_server.sockets[0].getsockname()[1]
        if verb == "EPSV":
            await self.send(f"229 Entering Extended Passive Mode (|||{port}|)")
        else:
            h = self.core.host.replace(".", ",")
            await self.send(f"227 Entering Passive Mode ({h},{port // 256},{port % 256})")

    async def open_data(self, *, want_reader: bool = False) -> Any:
        """The data connection's writer (``want_reader``: its reader), or None."""
        if self.data_conn is None:
            await self.send("425 Use PASV or EPSV first.")
            return None
        try:
            reader, writer = await asyncio.wait_for(self.data_conn, _DATA_ACCEPT_TIMEOUT)
        except TimeoutError:
            await self.send("425 No data connection.")
            return None
        await self.send("150 Opening BINARY mode data connection.")
        return reader if want_reader else writer

    async def close_data(self) -> None:
        if self.data_server is not None:
            self.data_server.close()
            self.data_server = None
        if self.data_conn is not None:
            if self.data_conn.done() and not self.data_conn.cancelled():
                self.data_conn.result()[1].close()
            else:
                self.data_conn.cancel()
            self.data_conn = None

    async def retr(self, path: bytes) -> None:
        node = self.core.tree.get(path)
        rest, self.rest = self.rest, 0
        if not isinstance(node, HostileFile):
            await self.close_data()
            await self.send("550 Failed to open file.")
            return
        writer = await self.open_data()
        if writer is None:
            return
        data = node.data[rest:]
        stall = node.stall_after is not None and self.core.switches.stalls
        if stall:
            assert node.stall_after is not None
            data = data[: max(0, node.stall_after - rest)]
        try:
            writer.write(data)
            await writer.drain()
            if stall:
                # Silent until the client gives up: it closes the control connection.
                await self.reader.read()
                return
        except ConnectionError:
            pass
        await self.close_data()
        switches = self.core.switches
        if switches.hold_before_retr_end:
            await self.hold()
        if node.end_reply is not None and switches.lies:
            await self.send(node.end_reply)
            return
        await self.send("226 Transfer complete.")

    async def mlsd(self, path: bytes) -> None:
        node = self.core.tree.get(path)
        if not isinstance(node, HostileDir):
            await self.close_data()
            await self.send("550 No such directory.")
            return
        writer = await self.open_data()
        if writer is None:
            return
        with contextlib.suppress(ConnectionError):
            if self.core.switches.endless_listing:
                n = 0
                while True:  # until the client hangs up
                    line = mlsd_line("file", b"endless-%012d.bin" % n, 1) + b"\r\n"
                    writer.write(line)
                    self.core.switches.sent += len(line)
                    n += 1
                    await writer.drain()
            lines = (_listing(self.core.tree, path, lies=self.core.switches.lies)
                     if node.auto else node.lines)
            writer.write(b"".join(line + b"\r\n" for line in lines))
            await writer.drain()
        await self.close_data()
        await self.send("226 Directory send OK.")


def _is_temp(path: bytes) -> bool:
    name = path.rsplit(b"/", 1)[-1]
    return name.startswith(b".fsmove.") and name.endswith(b".part")


def _norm(arg: bytes) -> bytes:
    path = b"/" + arg.strip(b"/")
    return path


class _Core:
    def __init__(self, tree: Mapping[bytes, Node], *, host: str, user: str,
                 password: str, switches: _Switches) -> None:
        self.tree = dict(tree)
        self.host = host
        self.user = user
        self.password = password
        self.switches = switches
        self.sessions: set[asyncio.Task[None]] = set()
        #: Set by ``release_holds`` (created in the server's loop).
        self.released = asyncio.Event()

    async def client(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        task = asyncio.current_task()
        assert task is not None
        self.sessions.add(task)
        try:
            await _Session(self, reader, writer).run()
        finally:
            self.sessions.discard(task)


@contextlib.contextmanager
def start_hostile_ftpd(tree: Mapping[bytes, Node], *, host: str = "127.0.0.1",
                       user: str = "hostile", **switches_set: Any) -> Iterator[HostileServer]:
    """Serve ``tree`` on a free port of ``host`` until the block ends; keyword
    arguments set ``_Switches`` (``writable=True, keep_bytes=0``...)."""
    password = secrets.token_urlsafe(12)
    switches = _Switches(**switches_set)
    core = _Core(tree, host=host, user=user, password=password, switches=switches)
    loop = asyncio.new_event_loop()
    started: Future[tuple[asyncio.Server, int]] = Future()

    async def main() -> None:
        server = await asyncio.start_server(core.client, host, 0)
        started.set_result((server, server.sockets[0].getsockname()[1]))

    def run() -> None:
        asyncio.set_event_loop(loop)
        loop.run_until_complete(main())
        loop.run_forever()

    thread = threading.Thread(target=run, name="hostile-ftpd", daemon=True)
    thread.start()
    server, port = started.result(timeout=10)

    async def stop() -> None:
        server.close()
        for task in list(core.sessions):
            task.cancel()
        await asyncio.gather(*core.sessions, return_exceptions=True)

    try:
        yield HostileServer(host=host, port=port, user=user, password=password,
                            switches=switches, tree=core.tree,
                            release=lambda: loop.call_soon_threadsafe(core.released.set))
    finally:
        asyncio.run_coroutine_threadsafe(stop(), loop).result(timeout=10)
        loop.call_soon_threadsafe(loop.stop)
        thread.join(timeout=10)
        loop.close()
