"""Files written while the destination's FTP write probe runs (``Sides.settle_dst``,
``Attempts.copy``): a new file goes to its temporary name at once; placing it (or
resuming one) waits for the probe's answers. Real FTP servers; the wrapper only holds
the probe back until a file's bytes have arrived under a temporary name: the code
before this change waited for the probe first, so the hold was never released (the
test fails at ``GATE_LIMIT``); no test waits on time."""

from __future__ import annotations

import asyncio
import os
from collections.abc import Callable
from pathlib import Path

import pytest

from fsmove.transfers.backend import (
    Capabilities,
    ConnectError,
    OffsetWrites,
    PermanentError,
    Session,
    Store,
    WritesBeforeProbe,
    early_fields_differ,
)
from fsmove.transfers.copy import CopyEngine, CopyOptions
from fsmove.transfers.decorators import StoreDecorator
from fsmove.transfers.endpoint import parse_endpoint
from fsmove.transfers.events import Summary
from fsmove.transfers.ftp import FtpStore
from fsmove.transfers.local import LocalStore
from fsmove.transfers.pool import SessionPool
from tests.conformance_stores import store_for
from tests.copy_harness import put_files, tree_digests
from tests.faults.hostile_ftpd import HostileDir, start_hostile_ftpd
from tests.servers import RunningServer
from tests.test_march import GATE_LIMIT, MTIME

pytestmark = pytest.mark.interop

FILES = {
    "a.txt": b"alpha" * 1000,
    "empty.txt": b"",
    "sub/b.txt": b"beta",
    "sub/deep/c.bin": bytes(range(256)) * 64,
}
FTP_SERVERS = ["vsftpd_server", "vsftpd_tls_server", "pureftpd_server", "proftpd_server",
               "proftpd_tls_server", "aioftp_server"]


class HeldProbe(StoreDecorator):
    """An FTP destination whose write probe starts only once ``arrived()`` (a file's
    bytes under a temporary name), then fails with ``fail`` if given (the first
    ``fails`` times)."""

    def __init__(self, inner: Store, arrived: Callable[[], bool],
                 fail: Exception | None = None, fails: int = 1_000) -> None:
        super().__init__(inner)
        self.arrived = arrived
        self.fail = fail
        self.fails = fails
        self.waited = False
        self.probes = 0

    async def capabilities(self) -> Capabilities:
        await self._hold()
        return await self.inner.capabilities()

    async def probe_with(self, session: Session) -> Capabilities:
        # The pool probes on a session of its own while files are written.
        await self._hold()
        assert isinstance(self.inner, WritesBeforeProbe)
        return await self.inner.probe_with(session)

    async def _hold(self) -> None:
        self.waited = await _until(self.arrived)
        self.probes += 1
        if self.fail is not None and self.probes <= self.fails:
            raise self.fail


async def _until(check: Callable[[], bool]) -> bool:
    """Whether ``check`` came true (looked at every 10 ms, ``GATE_LIMIT`` at most:
    only code under test that is wrong leaves it false)."""
    loop = asyncio.get_running_loop()
    end = loop.time() + GATE_LIMIT
    while not check():
        if loop.time() > end:
            return False
        await asyncio.sleep(0.01)
    return True


def _temp_with_data(root: Path) -> bool:
    for dirpath, _dirs, files in os.walk(root):
        for name in files:
            if name.startswith(".fsmove.") and name.endswith(".part"):
                try:
                    if (Path(dirpath) / name).stat().st_size > 0:
                        return True
                except FileNotFoundError:
                    continue
    return False


def _copy(src: Path, dst: Store, *, retries: int = 0) -> Summary:
    async def go() -> Summary:
        pools = [SessionPool(LocalStore(parse_endpoint(str(src))), max_sessions=4),
                 SessionPool(dst, max_sessions=8)]
        try:
            return await CopyEngine(src=pools[0], dst=pools[1], journal=None,
                                    options=CopyOptions(retries=retries,
                                                        retry_delay=0.01)).run()
        finally:
            await asyncio.gather(*(p.aclose() for p in pools))

    return asyncio.run(go())


def test_the_first_files_are_written_while_the_probe_runs(
    vsftpd_server: RunningServer, fresh_subdir: Callable[[RunningServer], RunningServer],
    tmp_path: Path,
) -> None:
    """The probe is held until a file's bytes arrived: they did, under a temporary
    name; every file is then placed with the probe's answers (mtimes set, which the
    early capabilities do not offer) and no temporary or scratch file is left."""
    ftp = fresh_subdir(vsftpd_server)
    src = tmp_path / "src"
    put_files(None, src, FILES, mtime=MTIME)
    held = HeldProbe(store_for(ftp), lambda: _temp_with_data(ftp.root))
    summary = _copy(src, held)
    assert held.waited, "no file was written before the probe answered"
    assert summary.status == "ok" and summary.files_copied == len(FILES), summary
    assert tree_digests(ftp.root, skip_temp=False) == tree_digests(src)
    assert {p: int((ftp.root / p).stat().st_mtime) for p in FILES} == dict.fromkeys(
        FILES, MTIME)


def test_a_server_that_cannot_rename_gets_early_files_again_under_their_names(
    tmp_path: Path,
) -> None:
    """Files written under temporary names before the probe found that the server
    cannot rename: each is written again under its own name, its temporary file
    removed, and the summary says it was restarted."""
    src = tmp_path / "src"
    put_files(None, src, FILES, mtime=MTIME)
    tree: dict[bytes, HostileDir] = {b"/": HostileDir(auto=True)}
    with start_hostile_ftpd(tree, writable=True, lies=False, refuse_rename=True) as server:

        def arrived() -> bool:
            return any(p.rsplit(b"/", 1)[-1].startswith(b".fsmove.") and data
                       for p, data in server.files().items())

        store = FtpStore(parse_endpoint(server.url()).with_password(server.password))
        held = HeldProbe(store, arrived)
        summary = _copy(src, held)
        stored = server.files()
    assert held.waited, "no file was written before the probe answered"
    assert summary.status == "ok" and summary.files_copied == len(FILES), summary
    assert stored == {b"/" + p.encode(): data for p, data in FILES.items()}
    assert summary.files_restarted >= 1
    assert all("cannot rename" in why for _path, why in summary.restarted), summary.restarted


def test_a_probe_that_loses_its_connection_fails_the_files_not_the_run(
    vsftpd_server: RunningServer, fresh_subdir: Callable[[RunningServer], RunningServer],
    tmp_path: Path,
) -> None:
    """The probe loses its connection once files are being written, and the job allows
    no retry: every file fails with that error (a partial run, as when the server goes
    away mid-copy, which a rerun resumes) and none reached its final name."""
    ftp = fresh_subdir(vsftpd_server)
    src = tmp_path / "src"
    put_files(None, src, FILES, mtime=MTIME)
    lost = ConnectError("the probe's connection was lost (test)")
    held = HeldProbe(store_for(ftp), lambda: _temp_with_data(ftp.root), fail=lost)
    summary = _copy(src, held)
    assert held.waited, "no file was written before the probe answered"
    assert held.probes == 1  # --retries 0: not probed again
    assert summary.status == "partial" and summary.files_copied == 0, summary
    assert sorted(p for p, _why in summary.failed) == sorted(FILES)
    assert all("probe's connection was lost" in why for _p, why in summary.failed)
    left = [p.name for p in ftp.root.rglob("*") if p.is_file()]
    assert all(name.startswith(".fsmove.") for name in left), left


def test_a_probe_that_lost_its_connection_is_run_again(
    vsftpd_server: RunningServer, fresh_subdir: Callable[[RunningServer], RunningServer],
    tmp_path: Path,
) -> None:
    """The same with retries allowed: the probe runs again, the files written meanwhile
    wait for its answers, and the copy is whole."""
    ftp = fresh_subdir(vsftpd_server)
    src = tmp_path / "src"
    put_files(None, src, FILES, mtime=MTIME)
    lost = ConnectError("the probe's connection was lost (test)")
    held = HeldProbe(store_for(ftp), lambda: _temp_with_data(ftp.root), fail=lost, fails=1)
    summary = _copy(src, held, retries=2)
    assert held.waited and held.probes == 2
    assert summary.status == "ok" and summary.files_copied == len(FILES), summary
    assert tree_digests(ftp.root, skip_temp=False) == tree_digests(src)


def test_a_probe_that_fails_otherwise_fails_the_run(
    vsftpd_server: RunningServer, fresh_subdir: Callable[[RunningServer], RunningServer],
    tmp_path: Path,
) -> None:
    """Any other failure of the probe fails the run with the probe's error, as a failed
    survey did, and no file reached its final name."""
    ftp = fresh_subdir(vsftpd_server)
    src = tmp_path / "src"
    put_files(None, src, FILES, mtime=MTIME)
    broken = PermanentError("the probe met a reply it cannot read (test)")
    held = HeldProbe(store_for(ftp), lambda: _temp_with_data(ftp.root), fail=broken)
    with pytest.raises(PermanentError) as raised:
        _copy(src, held, retries=3)
    assert raised.value is broken
    assert held.waited and held.probes == 1
    left = [p.name for p in ftp.root.rglob("*") if p.is_file()]
    assert left and all(name.startswith(".fsmove.") for name in left), left


@pytest.mark.parametrize("name", FTP_SERVERS)
def test_early_capabilities_say_what_the_probe_will(
    name: str, request: pytest.FixtureRequest,
    fresh_subdir: Callable[[RunningServer], RunningServer],
) -> None:
    """On every FTP server: after a login and before the probe, the store offers early
    capabilities (new files only: no offset writes, no mtimes, a rename not trusted to
    replace) that agree with the probe's on everything the engine reads before it
    settles (``EARLY_FIELDS``); once probed, none (there is nothing left to wait for)."""
    server = fresh_subdir(request.getfixturevalue(name))

    async def go() -> list[Capabilities | None]:
        store = store_for(server)
        assert isinstance(store, WritesBeforeProbe)
        early_of = store.early_capabilities
        try:
            before = early_of()  # no login yet: FEAT unknown
            session = await store.connect()
            await session.close()
            early = early_of()
            final = await store.capabilities()
            return [before, early, final, early_of()]
        finally:
            await store.aclose()

    before, early, final, after = asyncio.run(go())
    assert before is None and after is None
    assert early is not None and final is not None
    assert early_fields_differ(early, final) == []
    assert early.offset_writes is OffsetWrites.NONE and not early.set_mtime
    assert early.rename and not early.rename_replaces
