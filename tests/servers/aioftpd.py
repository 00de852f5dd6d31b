"""aioftp's own FTP server, in-process: a background thread running its own event loop.

Needs no system package and no root; the files it writes belong to this process's user.
"""

from __future__ import annotations

import asyncio
import os
import secrets
import threading
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
) -> Iterator[RunningServer]:
    """An aioftp server on a free port serving ``workdir/root`` read-write."""
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
