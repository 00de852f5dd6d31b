"""Big-file streams at once follow the sides' measured round trips
(``transfers/session_count.py``): few on a LAN, the job's bound over a WAN or where a
side measured nothing (SFTP), and never more than the bound.

The copy test runs a real vsftpd on loopback: which branch the policy takes depends on
the round trip the store measured at login (a loaded machine can make loopback slow),
so the test checks that the engine used what the policy says for the facts it saw, and
that no more streams than that ever ran at once."""

from __future__ import annotations

import asyncio
import os
from collections.abc import Callable
from pathlib import Path

import pytest

from fsmove.transfers import session_count
from fsmove.transfers.backend import Capabilities
from fsmove.transfers.copy import CopyEngine, CopyOptions
from fsmove.transfers.copy import engine as engine_module
from fsmove.transfers.endpoint import parse_endpoint
from fsmove.transfers.events import Event, FileDone, FileFailed, FileStarted
from fsmove.transfers.ftp import FtpStore
from fsmove.transfers.local import LocalStore
from fsmove.transfers.pool import SessionPool
from fsmove.transfers.session_count import (
    LAN_SESSIONS,
    LAN_STREAMS,
    LOCAL_ROUND_TRIP,
    LOCAL_START_SESSIONS,
    sessions_for_files,
    sessions_for_work,
    sessions_worth_opening,
    streams_worth_running,
)
from tests.servers import RunningServer

MiB = 1024 * 1024
LAN = Capabilities(round_trip=0.0004)
WAN = Capabilities(round_trip=0.06)
UNMEASURED = Capabilities()  # SFTP: no round trip measured
LOCAL = Capabilities(remote=False)


def test_the_policy_from_facts_only() -> None:
    assert streams_worth_running(LAN, LAN, 16) == LAN_STREAMS
    assert streams_worth_running(LOCAL, LAN, 16) == LAN_STREAMS
    assert streams_worth_running(LAN, LOCAL, 16) == LAN_STREAMS
    # never more than the job's bound (--workers 2 makes it 2)
    assert streams_worth_running(LAN, LAN, 2) == 2
    # one WAN side, or one side that measured nothing: the bound stays
    assert streams_worth_running(LAN, WAN, 16) == 16
    assert streams_worth_running(UNMEASURED, LAN, 16) == 16
    assert streams_worth_running(LOCAL, UNMEASURED, 16) == 16
    # two local disks: nothing measured, nothing changed
    assert streams_worth_running(LOCAL, LOCAL, 16) == 16


def test_sessions_logged_in_ahead_follow_the_files_that_can_run() -> None:
    """``SessionPool.warm``'s count: every small file up to the job's bound, big files
    only as many as the streams (48 medium files, 16 streams: 16 sessions, not 48)."""
    assert sessions_for_work(0, 48, streams=16, files_at_once=128) == 16
    assert sessions_for_work(2000, 0, streams=16, files_at_once=128) == 128
    assert sessions_for_work(10, 3, streams=16, files_at_once=128) == 13
    assert sessions_for_work(100, 48, streams=4, files_at_once=128) == 104
    assert sessions_for_work(0, 0, streams=16, files_at_once=128) == 0
    assert sessions_for_work(-3, -1, streams=16, files_at_once=128) == 0  # a stale hint


def test_a_copy_runs_at_most_the_streams_its_sides_allow(
    tmp_path: Path, vsftpd_server: RunningServer,
    fresh_subdir: Callable[[RunningServer], RunningServer],
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    dst_server = fresh_subdir(vsftpd_server)
    src = tmp_path / "src"
    src.mkdir()
    files = {f"f{i:02d}.bin": os.urandom(MiB + i) for i in range(12)}  # each a stream
    for name, data in files.items():
        (src / name).write_bytes(data)
    running: set[str] = set()
    most = 0
    # The capabilities the copy decided with: the FTP side's round trip is the quickest
    # login so far, so the final one may be lower (under load the first logins were
    # slower than a LAN's; two CPU hogs made it 16 streams, then 4 by the end).
    decided: list[Capabilities] = []

    def recorded(src_caps: Capabilities, dst_caps: Capabilities, default: int) -> int:
        decided.append(dst_caps)
        return streams_worth_running(src_caps, dst_caps, default)

    monkeypatch.setattr(engine_module, "streams_worth_running", recorded)

    def watch(event: Event) -> None:
        nonlocal most
        if isinstance(event, FileStarted):
            running.add(event.path)
            most = max(most, len(running))
        elif isinstance(event, FileDone | FileFailed):
            running.discard(event.path)

    async def go() -> tuple[object, int, Capabilities]:
        endpoint = parse_endpoint(dst_server.url()).with_password(dst_server.password)
        s = SessionPool(LocalStore(parse_endpoint(str(src))), max_sessions=4)
        d = SessionPool(FtpStore(endpoint), max_sessions=16)
        try:
            engine = CopyEngine(src=s, dst=d, journal=None, options=CopyOptions(),
                                subscribers=[watch])
            summary = await engine.run()
            return summary, engine.limits.streams_at_once, await d.capabilities()
        finally:
            await asyncio.gather(s.aclose(), d.aclose())

    summary, streams, dst_caps = asyncio.run(go())
    assert summary.status == "ok"  # type: ignore[attr-defined]
    assert len(decided) == 1 and decided[0].remote
    assert streams == streams_worth_running(LOCAL, decided[0], CopyOptions().limits()
                                            .streams_at_once)
    assert dst_caps.round_trip is not None and decided[0].round_trip is not None
    assert dst_caps.round_trip <= decided[0].round_trip
    assert 1 <= most <= streams
    for name, data in files.items():
        assert (dst_server.root / name).read_bytes() == data



async def copy_to_ftp_sized(src: Path, url: str, password: str) -> tuple[int, Capabilities]:
    """Copy the local folder ``src`` to the FTP ``url`` with the engine, the destination
    sized by its own facts (``auto_cap``): its final cap and capabilities."""
    endpoint = parse_endpoint(url).with_password(password)
    s = SessionPool(LocalStore(parse_endpoint(str(src))), max_sessions=4)
    d = SessionPool(FtpStore(endpoint, timeout=20.0), max_sessions=64, auto_cap=True)
    try:
        engine = CopyEngine(src=s, dst=d, journal=None, options=CopyOptions())
        summary = await engine.run()
        assert summary.status == "ok"
        return d.stats.cap, await d.capabilities()
    finally:
        await asyncio.gather(s.aclose(), d.aclose())


@pytest.mark.parametrize("threshold", [10, 100], ids=["many-files", "few-files"])
def test_a_long_run_a_switch_away_logs_in_the_lan_s_sessions(
    tmp_path: Path, vsftpd_server: RunningServer,
    fresh_subdir: Callable[[RunningServer], RunningServer],
    monkeypatch: pytest.MonkeyPatch, threshold: int,
) -> None:
    """Under a 1 ms login round trip a side starts with ``LOCAL_START_SESSIONS`` (each login
    costs the server a password check a short run does not repay); once the run has
    decided ``LOCAL_MANY_FILES`` files to copy it may log in the LAN's. The threshold is
    lowered here (12 files); which tier applies follows the round trip measured."""
    monkeypatch.setattr(session_count, "LOCAL_MANY_FILES", threshold)
    dst_server = fresh_subdir(vsftpd_server)
    src = tmp_path / "src"
    src.mkdir()
    for i in range(12):
        (src / f"f{i:02d}.txt").write_bytes(b"x" * i)

    cap, caps = asyncio.run(copy_to_ftp_sized(src, dst_server.url(), dst_server.password))
    start = sessions_worth_opening(caps)
    grown = sessions_for_files(caps, 12)
    assert cap == max(start or 0, grown or 0)
    if caps.round_trip is not None and caps.round_trip < LOCAL_ROUND_TRIP:
        assert cap == (LAN_SESSIONS if threshold <= 12 else LOCAL_START_SESSIONS)
