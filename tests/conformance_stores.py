"""Building stores for tests: one place that turns a test server (or a local folder)
into a ``Store`` through the same code path the CLI uses."""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import TypeVar

from fsmove.endpoint_access import ConnectOptions, open_store
from fsmove.transfers.backend import Store
from fsmove.transfers.endpoint import Endpoint, parse_endpoint
from tests.servers import RunningServer

T = TypeVar("T")


def connect_options(server: RunningServer | None) -> ConnectOptions:
    if server is None:
        return ConnectOptions(timeout=20)
    return ConnectOptions(
        timeout=20,
        known_hosts=server.known_hosts,
        ca_file=server.ca_cert,
        identity_files=(),
    )


def server_endpoint(server: RunningServer) -> Endpoint:
    return parse_endpoint(server.url(with_password=True))


def store_for(server: RunningServer | None, local_root: Path | None = None) -> Store:
    if server is None:
        assert local_root is not None
        return open_store(parse_endpoint(str(local_root)), connect_options(None))
    return open_store(server_endpoint(server), connect_options(server))


def run(coro_fn: Callable[[], Awaitable[T]]) -> T:
    async def main() -> T:
        return await coro_fn()

    return asyncio.run(main())
