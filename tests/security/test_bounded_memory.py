"""A hostile FTP server cannot make fsmove hold unbounded memory (issue 14, item 12): an
endless multi-line reply and an endless MLSD listing each end in a one-line error.

No RSS timing: ``hostile_ftpd`` counts the bytes it managed to send before fsmove hung
up, and that count must stay within the caps plus the socket and stream buffers (an
unbounded reader keeps accepting bytes, so the count, like the memory, would grow until
the test's own timeout)."""

from __future__ import annotations

import asyncio
from pathlib import Path

import pytest

from fsmove.transfers.backend import BackendError, PermanentError
from fsmove.transfers.ftp import client as ftp_client
from fsmove.transfers.ftp import folders as ftp_folders
from tests.conformance_stores import run, store_for
from tests.faults.fsmove_run import FsmoveRunner, check_clean_failure
from tests.faults.hostile_ftpd import HostileDir, HostileServer, start_hostile_ftpd
from tests.faults.trees import FAST
from tests.servers.base import RunningServer

MiB = 1024 * 1024
#: What the sockets and stream buffers may hold beyond what fsmove kept: the kernel's
#: send and receive buffers (a few MiB on loopback) and a data connection's 4 MiB.
SLACK = 16 * MiB


def test_an_endless_multi_line_reply_ends_in_one_line(
    fsmove: FsmoveRunner, tmp_path: Path
) -> None:
    with start_hostile_ftpd({b"/": HostileDir(auto=True)}, endless_reply=True) as server:
        fsmove.secret(server.password)
        run_ = fsmove.run("copy", server.url(), str(tmp_path / "dst"), "--retries", "0",
                          *FAST, env={"FSMOVE_SRC_PASSWORD": server.password})
        sent = server.sent
    line = check_clean_failure(run_, run_.code, "reply")
    assert run_.code in (1, 5), str(run_)
    assert "longer than" in line
    assert sent < ftp_client.MAX_REPLY_BYTES + SLACK, sent


def _as_running(server: HostileServer) -> RunningServer:
    return RunningServer(kind="hostile", scheme="ftp", host=server.host, port=server.port,
                         user=server.user, password=server.password, root=Path("/"),
                         url_path="/")


def test_an_endless_listing_stops_at_the_entry_cap(monkeypatch: pytest.MonkeyPatch) -> None:
    cap = 20_000
    monkeypatch.setattr(ftp_folders, "MAX_LISTING_ENTRIES", cap)
    with start_hostile_ftpd({b"/": HostileDir(auto=True)}, endless_listing=True) as server:

        async def go() -> BackendError:
            store = store_for(_as_running(server))
            session = await store.connect()
            try:
                # The bound only turns a hang (the old, unbounded reader) into a failure.
                async with asyncio.timeout(300):
                    with pytest.raises(PermanentError) as caught:
                        _ = [e async for e in session.list("")]
                return caught.value
            finally:
                await session.close()
                await store.aclose()

        error = run(go)
        sent = server.sent
    assert "more than 20000 entries" in str(error) and "\n" not in str(error)
    line_size = 60
    assert sent < cap * line_size + SLACK, sent
