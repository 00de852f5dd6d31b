"""aioftp's own FTP server, in-process: a background thread running its own event loop.

Needs no system package and no root; the files it writes belong to this process's user.
With ``ignore`` it serves its folder as a Windows FTP server serves NTFS (``("case",)``)
or as macOS serves APFS (``("case", "normalization")``, or normalization alone): a name
is found whatever its case or Unicode normalization (the first twin in name order
wins), a new file takes the name it was sent and replaces a twin, a folder whose twin
exists is refused. No filesystem that ignores either can be mounted on the test
machines (no vfat, no ext4 casefold).
"""

from __future__ import annotations

import asyncio
import os
import secrets
import threading
import unicodedata
from collections.abc import Iterator
from concurrent.futures import Future
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import aioftp

from .base import RunningServer
from .ports import free_port_range, release_port_range

USER = "fsmovetest"
STOP_TIMEOUT = 10.0


def _folder(ignore: tuple[str, ...]) -> Any:
    def fold(name: str) -> str:
        if "normalization" in ignore:
            name = unicodedata.normalize("NFC", name)
        return name.lower() if "case" in ignore else name
    return fold


class FoldingPathIO(aioftp.PathIO):
    """aioftp's blocking path io over a folder, ignoring what ``fold`` folds."""

    ignore: tuple[str, ...] = ()

    def _found(self, path: Path) -> Path:
        """``path`` with each part that does not exist replaced by an entry of its
        folder whose name folds to the same, where there is one."""
        fold = _folder(self.ignore)
        found = Path(path.anchor)
        for part in path.parts[1:]:
            exact = found / part
            if not exact.exists() and found.is_dir():
                twin = next((c for c in sorted(found.iterdir())
                             if fold(c.name) == fold(part)), None)
                exact = twin if twin is not None else exact
            found = exact
        return found

    async def exists(self, path: Path) -> bool:
        return await super().exists(self._found(path))

    async def is_dir(self, path: Path) -> bool:
        return await super().is_dir(self._found(path))

    async def is_file(self, path: Path) -> bool:
        return await super().is_file(self._found(path))

    async def mkdir(self, path: Path, *, parents: bool = False, exist_ok: bool = False) -> None:
        await super().mkdir(self._found(path), parents=parents, exist_ok=exist_ok)

    async def rmdir(self, path: Path) -> None:
        await super().rmdir(self._found(path))

    async def unlink(self, path: Path) -> None:
        await super().unlink(self._found(path))

    def list(self, path: Path) -> Any:
        return super().list(self._found(path))

    async def stat(self, path: Path) -> os.stat_result:
        return await super().stat(self._found(path))

    async def _open(self, path: Path, mode: str = "rb", *args: Any, **kwargs: Any) -> Any:
        twin = self._found(path)
        if twin != path and "w" in mode and twin.is_file():
            twin.unlink()  # a new file takes the name it was sent
            twin = path
        return await super()._open(twin, mode, *args, **kwargs)  # type: ignore[arg-type]

    async def rename(self, source: Path, destination: Path) -> Path:
        target = self._found(destination)
        if target != destination and target.is_file():
            target.unlink()  # replaced, under the name it was sent
            target = destination
        return await super().rename(self._found(source), target)


@dataclass(frozen=True)
class _Started:
    port: int
    loop: asyncio.AbstractEventLoop
    stop: asyncio.Event


def _quiet_cancellation(loop: asyncio.AbstractEventLoop, context: dict[str, Any]) -> None:
    """At close, aioftp cancels open sessions and asyncio reports each as an error."""
    if not isinstance(context.get("exception"), asyncio.CancelledError):
        loop.default_exception_handler(context)


def _serve_in_thread(server: aioftp.Server, *, host: str, started: Future[_Started]) -> None:
    async def main() -> None:
        stop = asyncio.Event()
        try:
            await server.start(host=host, port=0)
            port = int(server.server.sockets[0].getsockname()[1])
        except BaseException as exc:
            started.set_exception(exc)
            return
        loop = asyncio.get_running_loop()
        started.set_result(_Started(port=port, loop=loop, stop=stop))
        try:
            await stop.wait()
        finally:
            loop.set_exception_handler(_quiet_cancellation)
            await server.close()

    asyncio.run(main())


@contextmanager
def start_aioftp(
    workdir: Path,
    *,
    max_clients: int | None = None,
    pasv_address: str | None = None,
    listen_address: str = "127.0.0.1",
    ignore: tuple[str, ...] = (),
) -> Iterator[RunningServer]:
    """An aioftp server on a free port serving ``workdir/root`` read-write (holding
    names that differ by what ``ignore`` names as one: "case", "normalization")."""
    root = workdir / "root"
    root.mkdir(parents=True, exist_ok=True)
    password = secrets.token_urlsafe(18)
    pasv_ports = free_port_range(listen_address)
    user = aioftp.User(
        USER,
        password,
        base_path=root,
        permissions=[aioftp.Permission("/", readable=True, writable=True)],
    )
    server = aioftp.Server(
        [user],
        maximum_connections=max_clients,
        data_ports=range(pasv_ports[0], pasv_ports[1] + 1),
        ipv4_pasv_forced_response_address=pasv_address,
        path_io_factory=(type("FoldingPathIO", (FoldingPathIO,), {"ignore": ignore})
                         if ignore else aioftp.PathIO),
    )
    started: Future[_Started] = Future()
    thread = threading.Thread(
        target=_serve_in_thread,
        kwargs={"server": server, "host": listen_address, "started": started},
        name="aioftp-server",
        daemon=True,
    )
    thread.start()
    running = started.result(timeout=STOP_TIMEOUT)
    try:
        yield RunningServer(
            kind="aioftp",
            scheme="ftp",
            host=listen_address,
            port=running.port,
            user=USER,
            password=password,
            root=root,
            url_path="/",
            pasv_ports=pasv_ports,
            owner=(os.geteuid(), os.getegid()),
        )
    finally:
        running.loop.call_soon_threadsafe(running.stop.set)
        thread.join(timeout=STOP_TIMEOUT)
        release_port_range(pasv_ports)
        if thread.is_alive():
            raise RuntimeError("the aioftp server thread did not stop")
