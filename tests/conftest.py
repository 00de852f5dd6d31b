"""Fixtures shared by every test module: real servers (one per session) and scratch roots.

A server whose binary is missing skips its tests with a reason naming the install script
(CI fails on any skip); a server that is installed but does not start is an error.
Each test gets its own empty folder on a server through ``fresh_subdir``.
"""

from __future__ import annotations

import itertools
import re
from collections.abc import Callable, Iterator
from contextlib import AbstractContextManager, ExitStack
from pathlib import Path
from typing import Any

import pytest

from tests.copy_harness import Side, side_for
from tests.servers import RunningServer, ServerNotInstalled, new_subdir, servers_workdir
from tests.servers.catalog import SERVER_FIXTURES, SERVERS, ServerKind


@pytest.fixture(scope="session", autouse=True)
def own_state_home(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Path]:
    """fsmove's default state folder (journals, migrate and cut-over state) is this
    session's own, never root's ~/.local/state: test sessions running at once (the
    workers of one run, other checkouts on the machine) never see each other's jobs.
    Tests that need their own set XDG_STATE_HOME again."""
    path = tmp_path_factory.mktemp("xdg-state")
    patch = pytest.MonkeyPatch()
    patch.setenv("XDG_STATE_HOME", str(path))
    yield path
    patch.undo()


@pytest.fixture(scope="session")
def servers_root() -> Iterator[Path]:
    """The session's folder for server configs and roots (reachable by the test account)."""
    with servers_workdir() as path:
        yield path


def _enter_or_skip(
    stack: ExitStack, server: AbstractContextManager[RunningServer]
) -> RunningServer:
    try:
        return stack.enter_context(server)
    except ServerNotInstalled as exc:
        pytest.skip(str(exc))


def _serve(
    start: Callable[..., AbstractContextManager[RunningServer]],
    workdir: Path,
    **options: object,
) -> Iterator[RunningServer]:
    with ExitStack() as stack:
        yield _enter_or_skip(stack, start(workdir, **options))


def _session_fixture(kind: ServerKind) -> Callable[[Path], Iterator[RunningServer]]:
    def serve(servers_root: Path) -> Iterator[RunningServer]:
        yield from _serve(kind.start, servers_root / kind.workdir, **kind.options)

    serve.__doc__ = f"One {kind.workdir} server ({kind.protocol}) for the whole test session."
    return pytest.fixture(scope="session", name=kind.fixture)(serve)


# One session fixture per server of the catalog: vsftpd_server, vsftpd_tls_server,
# pureftpd_server, proftpd_server, proftpd_tls_server, sshd_server, aioftp_server.
for _kind in SERVERS:
    globals()[_kind.fixture] = _session_fixture(_kind)


@pytest.fixture(params=SERVER_FIXTURES)
def any_server(request: pytest.FixtureRequest) -> RunningServer:
    """Each server fixture in turn (the test id names it)."""
    server: RunningServer = request.getfixturevalue(request.param)
    return server


_serial = itertools.count()


@pytest.fixture
def own_server(servers_root: Path) -> Iterator[Callable[..., RunningServer]]:
    """``own_server(start_vsftpd, max_clients=1)``: a server for this test only.

    For options the shared servers do not have; stopped when the test ends.
    """
    with ExitStack() as stack:

        def start(
            start_fn: Callable[..., AbstractContextManager[RunningServer]], **options: object
        ) -> RunningServer:
            workdir = servers_root / f"own-{next(_serial):04d}-{start_fn.__name__}"
            return _enter_or_skip(stack, start_fn(workdir, **options))

        yield start


@pytest.fixture
def fresh_subdir(request: pytest.FixtureRequest) -> Callable[[RunningServer], RunningServer]:
    """``fresh_subdir(server)``: the server re-rooted at a new empty folder for this test.

    Each call makes another folder (named after the test), owned by the server's account.
    """

    def make(server: RunningServer) -> RunningServer:
        name = re.sub(r"[^A-Za-z0-9_.-]+", "_", request.node.name)[:80]
        return new_subdir(server, f"t{next(_serial):04d}-{name}")

    return make


@pytest.fixture
def served(request: pytest.FixtureRequest,
           fresh_subdir: Callable[[RunningServer], RunningServer],
           ) -> Callable[[str, str], tuple[RunningServer, Side]]:
    """``served("vsftpd_server", "dst")``: that server re-rooted at a fresh folder for
    this test, and the copy side ("src" or "dst") on it."""

    def make(fixture: str, role: str) -> tuple[RunningServer, Side]:
        server = fresh_subdir(request.getfixturevalue(fixture))
        return server, side_for(fixture, server, server.root, role)

    return make


@pytest.fixture(params=["local", "sshd_server", "vsftpd_server"])
def dst_side(request: pytest.FixtureRequest,
             fresh_subdir: Callable[[RunningServer], RunningServer], tmp_path: Path) -> Side:
    """A destination for copies run as the CLI: a local folder, OpenSSH, vsftpd."""
    if request.param == "local":
        root = tmp_path / "dst"
        root.mkdir()
        return side_for("local", None, root, "dst")
    server = fresh_subdir(request.getfixturevalue(request.param))
    return side_for(request.param, server, server.root, "dst")


@pytest.fixture
def local_root(tmp_path: Path) -> Path:
    """An empty local folder for a ``file://`` store (root only; servers cannot see it)."""
    path = tmp_path / "local-store"
    path.mkdir()
    return path


@pytest.fixture
def sftp_packets(monkeypatch: pytest.MonkeyPatch) -> Iterator[list[int]]:
    """The SFTP packet types every asyncssh client handler sent (positive) and received
    (negative), in the order they happened: ``FXP_INIT``, ``-FXP_VERSION``..."""
    # Imported here, not at the top: asyncssh's own import warnings (DSA deprecation)
    # stay with the modules that use it instead of every collection.
    from asyncssh.sftp import SFTPClientHandler

    seen: list[int] = []
    sent, received = SFTPClientHandler.log_sent_packet, SFTPClientHandler.log_received_packet

    def log_sent(self: Any, pkttype: int, *args: Any) -> None:
        seen.append(pkttype)
        sent(self, pkttype, *args)

    def log_received(self: Any, pkttype: int, *args: Any) -> None:
        seen.append(-pkttype)
        received(self, pkttype, *args)

    monkeypatch.setattr(SFTPClientHandler, "log_sent_packet", log_sent)
    monkeypatch.setattr(SFTPClientHandler, "log_received_packet", log_received)
    yield seen
