"""A folder listed alone on its channel asks its READDIRs right behind its OPENDIR,
against OpenSSH's sshd on 127.0.0.1 (transfers/sftp/channel.py ``_handle_guess``,
transfers/sftp/handles.py).

OpenSSH's sftp-server hands out handles from a table the client can follow: the
READDIRs of a folder listed while no other is open on the channel go out with its
OPENDIR (one round trip sooner: the root's listing at the start of every copy, then
the first subfolder's). What is pinned: the order on the wire, listings that are whole
and exact either way (several batches, empty, missing, many at once beside file
reads), a guess after files were read and closed, none while another folder is open
or once the table was surprised, and a wrong guess (a handle that is not the
folder's, even an open file's) that harms nothing: its answers are dropped.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable

import pytest
from asyncssh.constants import (
    FXP_HANDLE,
    FXP_OPENDIR,
    FXP_READDIR,
)

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


def _store(server: RunningServer) -> SftpStore:
    ep = parse_endpoint(server.url()).with_password(server.password)
    return SftpStore(ep, known_hosts=server.known_hosts, client_keys=[], timeout=20.0)


async def _names(session: SftpSession, path: str) -> list[str]:
    return sorted([e.path.rsplit("/", 1)[-1] async for e in session.list(path)])


def _after_version(sftp_packets: list[int]) -> list[int]:
    """What came after the version exchange (and the limits request)."""
    return [p for p in sftp_packets if p in (FXP_OPENDIR, FXP_READDIR, -FXP_HANDLE)]


def test_a_folder_listed_alone_asks_its_readdirs_with_its_opendir(
    server: RunningServer, sftp_packets: list[int]
) -> None:
    async def go() -> tuple[list[str], list[str], list[str]]:
        st = _store(server)
        session = await st.connect()
        first = await _names(session, "big")
        second = await _names(session, "big")  # the first's handle, freed: guessed too
        empty = await _names(session, "empty")
        await st.aclose()
        return first, second, empty

    first, second, empty = asyncio.run(go())
    assert first == second == sorted(NAMES)
    assert empty == []
    order = _after_version(sftp_packets)
    opened = order.index(-FXP_HANDLE)
    assert order[:opened] == [FXP_OPENDIR, FXP_READDIR, FXP_READDIR], order
    later = order[order.index(FXP_OPENDIR, 1):]
    assert later[:4] == [FXP_OPENDIR, FXP_READDIR, FXP_READDIR, -FXP_HANDLE], later


def test_a_folder_listed_after_files_were_read_is_guessed_too(
    server: RunningServer, sftp_packets: list[int]
) -> None:
    """The file's handle is freed by its CLOSE: the folder gets it, as told."""
    async def go() -> list[str]:
        st = _store(server)
        session = await st.connect()
        for _ in range(3):
            assert b"".join([p async for p in session.read("file.bin")]) == b"z" * 10
        names = await _names(session, "big")
        assert session._handles.known
        await st.aclose()
        return names

    assert asyncio.run(go()) == sorted(NAMES)
    order = _after_version(sftp_packets)
    order = order[order.index(FXP_OPENDIR):]  # the file's OPENs were answered with handles
    assert order[:4] == [FXP_OPENDIR, FXP_READDIR, FXP_READDIR, -FXP_HANDLE], order


def test_no_guess_while_another_folder_is_open_on_the_channel(
    server: RunningServer, sftp_packets: list[int]
) -> None:
    async def go() -> tuple[list[str], list[str]]:
        st = _store(server)
        session = await st.connect()
        first = session.list("big")
        seen = [(await first.__anext__()).path]  # "big" stays open
        before = len(sftp_packets)
        inner = await _names(session, "big/sub")
        during = sftp_packets[before:]
        seen += [e.path async for e in first]
        await st.aclose()
        order = [p for p in during if p in (FXP_OPENDIR, FXP_READDIR, -FXP_HANDLE)]
        assert order[:3] == [FXP_OPENDIR, -FXP_HANDLE, FXP_READDIR], order
        return inner, sorted(p.rsplit("/", 1)[-1] for p in seen)

    inner, outer = asyncio.run(go())
    assert inner == ["inner"] and outer == sorted(NAMES)


def test_many_listings_and_reads_at_once_stay_exact(server: RunningServer) -> None:
    """Listings started together (one guessed, the others not), file reads between
    them, round after round on one channel: every listing whole, the table still
    following the server."""
    async def go() -> None:
        st = _store(server)
        session = await st.connect()

        async def read() -> bytes:
            return b"".join([p async for p in session.read("file.bin")])

        for _ in range(15):
            got = await asyncio.gather(_names(session, "big"), read(),
                                       _names(session, "big/sub"), read(),
                                       _names(session, "empty"), _names(session, "big"))
            assert got == [sorted(NAMES), b"z" * 10, ["inner"], b"z" * 10, [],
                           sorted(NAMES)]
        assert session._handles.known
        await st.aclose()

    asyncio.run(go())


def test_a_missing_folder_first_is_not_found_and_the_channel_lists_on(
    server: RunningServer, sftp_packets: list[int]
) -> None:
    """The failed OPENDIR surprised the table (it counted the handle taken): no guess
    after it on this channel, and the listing is whole."""
    async def go() -> list[str]:
        st = _store(server)
        session = await st.connect()
        with pytest.raises(NotFoundError):
            await _names(session, "nope")
        assert not session._handles.known
        before = len(sftp_packets)
        names = await _names(session, "big")
        order = [p for p in sftp_packets[before:] if p in (FXP_OPENDIR, FXP_READDIR, -FXP_HANDLE)]
        assert order[:3] == [FXP_OPENDIR, -FXP_HANDLE, FXP_READDIR], order
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
        monkeypatch.setattr(session, "_handle_guess", lambda: wrong)
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
