"""An aioftp server that can really go down and come back on the same port: a server
restart as a client lives it (every session gone, connections refused meanwhile, the
files it was writing left as they were)."""

from __future__ import annotations

import asyncio
import contextlib
import secrets
import threading
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path

import aioftp

from tests.servers.ports import free_port_range, release_port_range

USER = "restarty"


def _quiet_cancellation(loop: asyncio.AbstractEventLoop, context: dict[str, object]) -> None:
    if not isinstance(context.get("exception"), asyncio.CancelledError):
        loop.default_exception_handler(context)


@dataclass
class RestartableFtpd:
    root: Path
    host: str = "127.0.0.1"
    password: str = field(default_factory=lambda: secrets.token_urlsafe(15), repr=False)
    port: int = 0
    _loop: asyncio.AbstractEventLoop = field(default_factory=asyncio.new_event_loop)
    _server: aioftp.Server | None = None
    _pasv: tuple[int, int] = (0, 0)

    def url(self) -> str:
        return f"ftp://{USER}@{self.host}:{self.port}/"

    def _call(self, coro: object, timeout: float = 30) -> object:
        return asyncio.run_coroutine_threadsafe(coro, self._loop).result(timeout)  # type: ignore[arg-type]

    async def _start(self) -> None:
        user = aioftp.User(USER, self.password, base_path=self.root,
                           permissions=[aioftp.Permission("/", readable=True, writable=True)])
        server = aioftp.Server([user], data_ports=range(self._pasv[0], self._pasv[1] + 1))
        await server.start(host=self.host, port=self.port)
        self.port = int(server.server.sockets[0].getsockname()[1])
        self._server = server

    async def _stop(self) -> None:
        server, self._server = self._server, None
        if server is not None:
            await server.close()

    def start(self) -> None:
        """Listen (on the same port as before, after a ``stop``)."""
        self._call(self._start())

    def stop(self) -> None:
        """Close the listener and drop every session at once."""
        self._call(self._stop())

    @contextlib.contextmanager
    def running(self) -> Iterator[RestartableFtpd]:
        self._pasv = free_port_range(self.host)
        self._loop.set_exception_handler(_quiet_cancellation)
        thread = threading.Thread(target=self._loop.run_forever, name="restartable-ftpd",
                                  daemon=True)
        thread.start()
        try:
            self.start()
            yield self
        finally:
            self.stop()
            self._loop.call_soon_threadsafe(self._loop.stop)
            thread.join(timeout=10)
            self._loop.close()
            release_port_range(self._pasv)
