"""The demo's two buckets: aioftp's own FTP server, embedded, on 127.0.0.1.

Both servers run in one background thread with its own event loop, so the rest of the
demo (the ``fsmove copy`` child processes, the verification's ``asyncio.run``) talks to
them over real sockets exactly as it would to a remote bucket. Each bucket has its own
user with a random password (held in a ``Secret``: never printed), listens on a port the
kernel picks, and lets aioftp pick its passive data ports the same way.

aioftp's server offers MLSD/MLST, REST+STOR (it seeks), APPE and RNFR/RNTO; it has no
FEAT, SIZE, MDTM or MFMT, so modification times are not preserved on it (fsmove probes
this and says nothing is lost: sizes and digests decide).

``Tripwire`` lets the demo interrupt a copy at a chosen point, deterministically: once
the new bucket has stored ``threshold`` bytes and holds a complete file, every further
write and rename waits (the copy stalls, it cannot finish) until the demo has killed the
copy and calls ``release``, which makes the stalled operations fail as if the connection
had dropped.
"""

from __future__ import annotations

import asyncio
import functools
import logging
import secrets
import threading
from collections.abc import Iterator
from concurrent.futures import Future
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import aioftp
from aioftp.pathio import universal_exception

from fsmove import event_loop
from fsmove.transfers.endpoint import Endpoint, Secret
from fsmove.transfers.tree import looks_like_temp

HOST = "127.0.0.1"
USER = "demo"
#: Bytes aioftp moves per read/write on data connections (its default, 8 KiB, is slow).
BLOCK_SIZE = 1024 * 1024
START_TIMEOUT = 10.0
STOP_TIMEOUT = 10.0


@dataclass(frozen=True)
class DemoBucket:
    """One running bucket: where it listens, who logs in, which folder it serves."""

    label: str
    host: str
    port: int
    user: str
    password: Secret
    root: Path

    @property
    def url(self) -> str:
        """The bucket's URL without its password (safe to print)."""
        return f"ftp://{self.user}@{self.host}:{self.port}/"

    def endpoint(self) -> Endpoint:
        """The endpoint with its password, for in-process use (verification)."""
        return Endpoint(
            scheme="ftp", path="/", host=self.host, port=self.port, user=self.user,
            password=self.password,
        )


class _Gate:
    """Where stalled operations wait; ``aborted`` once their client is gone."""

    def __init__(self) -> None:
        self.opened = asyncio.Event()
        self.aborted = False


class Tripwire:
    """Counts the bytes a server stores and the files renamed into place.

    Once armed, it freezes the bucket when ``threshold`` bytes are stored and at least
    one non-empty file is complete (renamed from fsmove's temporary name to its own), or
    at ``ceiling`` bytes whatever the files: every further write and rename waits until
    ``release`` aborts them (their client has been killed meanwhile, so nothing it sent
    after the freeze lands). Arm and release from any thread."""

    def __init__(self) -> None:
        self.tripped = threading.Event()
        self._threshold: int | None = None
        self._ceiling = 0
        self._written = 0
        self._renamed = 0
        self._loop: asyncio.AbstractEventLoop | None = None
        self._gate = _Gate()

    def bind(self, loop: asyncio.AbstractEventLoop) -> None:
        """Called in the servers' loop before they start."""
        self._loop = loop

    def arm(self, threshold: int, *, ceiling: int) -> None:
        """Freeze the bucket as the class docstring says (call while nothing uploads)."""
        if not 1 <= threshold <= ceiling:
            raise ValueError("the tripwire needs 1 <= threshold <= ceiling")
        self._ceiling = ceiling
        self._written = 0
        self._renamed = 0
        self._gate = _Gate()
        self.tripped.clear()
        self._threshold = threshold

    def release(self) -> None:
        """Disarm; the operations stalled so far fail (connection aborted)."""
        if self._loop is None or self._loop.is_closed():
            return
        self._loop.call_soon_threadsafe(self._abort_stalled)

    def _abort_stalled(self) -> None:
        self._threshold = None
        gate = self._gate
        gate.aborted = True
        gate.opened.set()

    async def _stall(self) -> None:
        self.tripped.set()
        gate = self._gate
        await gate.opened.wait()
        if gate.aborted:
            raise ConnectionAbortedError("the client was killed while this operation waited")

    def _frozen(self) -> bool:
        if self._threshold is None:
            return False
        if self._written >= self._ceiling:
            return True
        return self._written >= self._threshold and self._renamed > 0

    async def before_write(self, nbytes: int) -> None:
        if self._threshold is None:
            return
        if self._frozen():
            await self._stall()
            return
        self._written += nbytes

    async def before_rename(self, *, nbytes: int, puts_file_in_place: bool) -> None:
        if self._threshold is None:
            return
        if self._frozen():
            await self._stall()
            return
        if puts_file_in_place and nbytes > 0:
            self._renamed += 1


class _WatchedPathIO(aioftp.PathIO):
    """aioftp's blocking file access, with writes and renames shown to a tripwire first."""

    def __init__(
        self,
        *,
        tripwire: Tripwire,
        timeout: float | int | None = None,
        connection: aioftp.Connection | None = None,
        state: list[Any] | None = None,
    ) -> None:
        super().__init__(timeout=timeout, connection=connection, state=state)
        self._tripwire = tripwire

    @universal_exception
    async def write(self, file: Any, data: Any) -> int:
        await self._tripwire.before_write(len(data))
        return await super().write(file, data)

    @universal_exception
    async def rename(self, source: Path, destination: Path) -> Path:
        size = (await self.stat(source)).st_size
        await self._tripwire.before_rename(
            nbytes=size, puts_file_in_place=looks_like_temp(source.name)
        )
        return await super().rename(source, destination)


@dataclass(frozen=True)
class DemoBuckets:
    old: DemoBucket
    new: DemoBucket
    #: Watches what the new bucket stores.
    tripwire: Tripwire


@dataclass(frozen=True)
class _Started:
    ports: tuple[int, int]
    loop: asyncio.AbstractEventLoop
    stop: asyncio.Event


def _from_disconnect(exc: BaseException | None) -> bool:
    """True for a cancellation or a connection error, or an error caused by one (aioftp
    wraps file errors in ``PathIOError``)."""
    while exc is not None:
        if isinstance(exc, asyncio.CancelledError | ConnectionError):
            return True
        exc = exc.__cause__ or exc.__context__
    return False


def _quiet_disconnects(loop: asyncio.AbstractEventLoop, context: dict[str, Any]) -> None:
    """A killed client leaves sessions and transfers that end with a reset, an abort or
    a cancellation: expected in the demo, not worth a traceback."""
    if not _from_disconnect(context.get("exception")):
        loop.default_exception_handler(context)


def _make_server(root: Path, password: Secret, *, tripwire: Tripwire | None) -> aioftp.Server:
    user = aioftp.User(
        USER,
        password.reveal(),
        base_path=root,
        permissions=[aioftp.Permission("/", readable=True, writable=True)],
    )
    path_io: Any = aioftp.PathIO
    if tripwire is not None:
        path_io = functools.partial(_WatchedPathIO, tripwire=tripwire)
    return aioftp.Server([user], block_size=BLOCK_SIZE, path_io_factory=path_io)


def _serve(
    servers: tuple[aioftp.Server, aioftp.Server],
    *,
    tripwire: Tripwire,
    started: Future[_Started],
) -> None:
    async def main() -> None:
        loop = asyncio.get_running_loop()
        loop.set_exception_handler(_quiet_disconnects)
        stop = asyncio.Event()
        tripwire.bind(loop)
        try:
            for server in servers:
                await server.start(host=HOST, port=0)
            ports = tuple(int(s.server.sockets[0].getsockname()[1]) for s in servers)
        except BaseException as exc:
            for server in servers:
                if getattr(server, "server", None) is not None:
                    await server.close()
            started.set_exception(exc)
            return
        started.set_result(_Started(ports=(ports[0], ports[1]), loop=loop, stop=stop))
        try:
            await stop.wait()
        finally:
            tripwire.release()
            for server in servers:
                await server.close()

    event_loop.run(main())


@contextmanager
def serve_buckets(*, old_root: Path, new_root: Path) -> Iterator[DemoBuckets]:
    """Run the old and the new bucket until the block exits; stop both in any case."""
    old_root.mkdir(parents=True, exist_ok=True)
    new_root.mkdir(parents=True, exist_ok=True)
    logging.getLogger("aioftp").setLevel(logging.CRITICAL)
    old_password = Secret(secrets.token_urlsafe(18))
    new_password = Secret(secrets.token_urlsafe(18))
    tripwire = Tripwire()
    servers = (
        _make_server(old_root, old_password, tripwire=None),
        _make_server(new_root, new_password, tripwire=tripwire),
    )
    started: Future[_Started] = Future()
    thread = threading.Thread(
        target=_serve,
        kwargs={"servers": servers, "tripwire": tripwire, "started": started},
        name="fsmove-demo-ftp",
        daemon=True,
    )
    thread.start()
    try:
        running = started.result(timeout=START_TIMEOUT)
    except BaseException:
        thread.join(timeout=STOP_TIMEOUT)
        raise
    try:
        yield DemoBuckets(
            old=DemoBucket(label="old bucket", host=HOST, port=running.ports[0], user=USER,
                           password=old_password, root=old_root),
            new=DemoBucket(label="new bucket", host=HOST, port=running.ports[1], user=USER,
                           password=new_password, root=new_root),
            tripwire=tripwire,
        )
    finally:
        running.loop.call_soon_threadsafe(running.stop.set)
        thread.join(timeout=STOP_TIMEOUT)
        if thread.is_alive():
            raise RuntimeError("the demo's FTP servers did not stop")
