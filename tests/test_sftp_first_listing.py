"""A channel's first listing asks its READDIRs right behind its OPENDIR, against
OpenSSH's sshd on 127.0.0.1 (transfers/sftp/channel.py, ``_first_handle_guess``).

OpenSSH's sftp-server gives the first handle a channel opens index 0: the READDIRs of
a fresh channel's first folder go out with its OPENDIR (one round trip sooner: the
root's listing at the start of every copy). What is pinned: the order on the wire,
listings that are whole and exact either way (several batches, empty, missing), no
guess once anything was opened on the channel, and a wrong guess (a handle that is
not the folder's, even an open file's) that harms nothing: its answers are dropped.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable, Iterator
from typing import Any

import pytest
from asyncssh.constants import (
    FXP_HANDLE,
    FXP_OPENDIR,
    FXP_READDIR,
)
from asyncssh.sftp import SFTPClientHandler

from fsmove.transfers.backend import NotFoundError
from fsmove.transfers.endpoint import parse_endpoint
from fsmove.transfers.sftp import SftpStore
from fsmove.transfers.sftp.session import SftpSession
from tests.servers import RunningServer, make_tree

NAMES = [f"f{i:04d}" for i in range(250)] + ["odd name é", "sub"]


@pytest.fixture
def server(
    sshd_server: RunningServer, fresh_subdir: Callable[[RunningServer], RunningServer]
) -> RunningServer:
    served = fresh_subdir(sshd_server)
    make_tree(served, {f"big/{n}": b"x" for n in NAMES[:-1]}
              | {"big/sub/inner": b"y", "empty/.keep": b"", "file.bin": b"z" * 10})
    (served.root / "empty" / ".keep").unlink()
    return served


@pytest.fixture
def packets(monkeypatch: pytest.MonkeyPatch) -> Iterator[list[int]]:
    """The SFTP packet types sent (positive) and received (negative), in order."""
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


def _store(server: RunningServer) -> SftpStore:
    ep = parse_endpoint(server.url()).with_password(server.password)
    return SftpStore(ep, known_hosts=server.known_hosts, client_keys=[], timeout=20.0)


async def _names(session: SftpSession, path: str) -> list[str]:
    return sorted([e.path.rsplit("/", 1)[-1] async for e in session.list(path)])


def _after_version(packets: list[int]) -> list[int]:
    """What came after the version exchange (and the limits request)."""
    return [p for p in packets if p in (FXP_OPENDIR, FXP_READDIR, -FXP_HANDLE)]


def test_a_fresh_channel_s_first_listing_asks_its_readdirs_with_its_opendir(
    server: RunningServer, packets: list[int]
) -> None:
    async def go() -> tuple[list[str], list[str], list[str]]:
        st = _store(server)
        session = await st.connect()
        first = await _names(session, "big")
        second = await _names(session, "big")  # not fresh any more: the usual order
        empty = await _names(session, "empty")
        await st.aclose()
        return first, second, empty

    first, second, empty = asyncio.run(go())
    assert first == second == sorted(NAMES)
    assert empty == []
    order = _after_version(packets)
    opened = order.index(-FXP_HANDLE)
    assert order[:opened] == [FXP_OPENDIR, FXP_READDIR, FXP_READDIR], order
    later = order[order.index(FXP_OPENDIR, 1):]
    assert later[:3] == [FXP_OPENDIR, -FXP_HANDLE, FXP_READDIR], later


def test_no_guess_once_a_file_was_opened_on_the_channel(
    server: RunningServer, packets: list[int]
) -> None:
    async def go() -> list[str]:
        st = _store(server)
        session = await st.connect()
        assert b"".join([p async for p in session.read("file.bin")]) == b"z" * 10
        names = await _names(session, "big")
        await st.aclose()
        return names

    assert asyncio.run(go()) == sorted(NAMES)
    order = _after_version(packets)
    order = order[order.index(FXP_OPENDIR):]  # the file's OPEN was answered with a handle
    assert order[:3] == [FXP_OPENDIR, -FXP_HANDLE, FXP_READDIR], order


def test_a_missing_folder_first_is_not_found_and_the_channel_lists_on(
    server: RunningServer,
) -> None:
    async def go() -> list[str]:
        st = _store(server)
        session = await st.connect()
        with pytest.raises(NotFoundError):
            await _names(session, "nope")
        names = await _names(session, "big")
        await st.aclose()
        return names

    assert asyncio.run(go()) == sorted(NAMES)


@pytest.mark.parametrize("guess", ["unused", "open file"])
def test_a_wrong_guess_harms_nothing(server: RunningServer, guess: str,
                                     monkeypatch: pytest.MonkeyPatch) -> None:
    """The READDIRs asked of a handle that is not the folder's (one nobody holds, or a
    file held open on the channel) are dropped: the listing is whole, the file reads
    on."""
    async def go() -> tuple[list[str], bytes]:
        st = _store(server)
        session = await st.connect()
        held = None
        if guess == "open file":
            held = await session._sftp.open(session._full("file.bin"), "rb")
            wrong = held._handle
        else:
            wrong = b"\x00\x00\x00\x07"
        monkeypatch.setattr(session, "_first_handle_guess", lambda: wrong)
        names = await _names(session, "big")
        data = b""
        if held is not None:
            data = await held.read()
            await held.close()
        await st.aclose()
        return names, data

    names, data = asyncio.run(go())
    assert names == sorted(NAMES)
    assert data == (b"z" * 10 if guess == "open file" else b"")
