"""Building stores for tests: one place that turns a test server (or a local folder)
into a ``Store`` through the same code path the CLI uses; and what each store of the
conformance suite DECLARES it cannot do (rclone's fstests: a backend says what it
lacks, and the suite never runs what it lacks instead of returning early)."""

from __future__ import annotations

import asyncio
import enum
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import TypeVar

from fsmove.endpoint_access import ConnectOptions, open_store
from fsmove.transfers.backend import Entry, Store
from fsmove.transfers.endpoint import Endpoint, parse_endpoint
from tests.servers import RunningServer
from tests.servers.catalog import STORES as CATALOG_STORES

T = TypeVar("T")


class Feature(enum.Enum):
    """What a store may lack, each read from its probed capabilities or session."""

    #: Write into an existing file at any offset (``OffsetWrites.ANY``); a store that
    #: cannot appends at the end only (``OffsetWrites.APPEND``).
    WRITE_ANYWHERE = "write at any offset"
    #: ``rename`` over an existing file replaces it (``Capabilities.rename_replaces``).
    RENAME_REPLACES = "rename replaces an existing file"
    #: ``set_mtime`` / ``place(mtime=...)`` (``Capabilities.set_mtime``).
    SET_MTIME = "set modification times"
    #: Its sessions can be asked whether they still answer (``IdleCheck``: FTP NOOP).
    IDLE_CHECK = "check an idle session"


#: Every store of the conformance suite (a local folder and every real server): the
#: one list of servers, tests/servers/catalog.py.
STORES = CATALOG_STORES

_NO_IDLE_CHECK = frozenset({Feature.IDLE_CHECK})
#: What each store cannot do. The suite's parameters are generated from this (a test of a
#: feature runs on the stores that have it, a test of the limitation on those that lack
#: it), and test_declared_limits_are_real checks every entry against the live store.
CANNOT: dict[str, frozenset[Feature]] = {
    "local": _NO_IDLE_CHECK,  # no connection to lose
    "vsftpd_server": frozenset(),
    "vsftpd_tls_server": frozenset(),
    # REST+STOR truncates at the offset: a partial file is resumed with APPE.
    "pureftpd_server": frozenset({Feature.WRITE_ANYWHERE}),
    "proftpd_server": frozenset(),  # the test config allows REST+STOR (AllowStoreRestart)
    "proftpd_tls_server": frozenset(),
    "pyftpdlib_server": frozenset(),  # REST+STOR seeks; RNTO replaces; MFMT
    "sshd_server": _NO_IDLE_CHECK,  # SSH keepalives watch the connection
    "asyncssh_sftp_server": _NO_IDLE_CHECK,
    "proftpd_sftp_server": _NO_IDLE_CHECK,  # proftpd's mod_sftp
    # aioftp's own server: RNTO refuses an existing target, and no MFMT / MDTM-write.
    "aioftp_server": frozenset({Feature.RENAME_REPLACES, Feature.SET_MTIME}),
}


def stores_with(*features: Feature) -> list[str]:
    """The stores that can do all of ``features`` (never empty: an empty parameter list
    would be a skipped test)."""
    stores = [name for name in STORES if not CANNOT[name] & set(features)]
    assert stores, f"no store has {features}"
    return stores


def stores_without(feature: Feature) -> list[str]:
    """The stores that declare they cannot do ``feature`` (never empty)."""
    stores = [name for name in STORES if feature in CANNOT[name]]
    assert stores, f"every store has {feature}"
    return stores


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


def list_once(server: RunningServer, path: str = "") -> list[Entry]:
    """The entries of one folder of ``server``, listed on a session of a store of its
    own (opened and closed here)."""
    async def go() -> list[Entry]:
        store = store_for(server)
        try:
            session = await store.connect()
            try:
                return [e async for e in session.list(path)]
            finally:
                await session.close()
        finally:
            await store.aclose()

    return asyncio.run(go())
