"""A file's first READ (and its FSTAT) goes out right behind its OPEN, for the handle
OpenSSH's sftp-server will give it, against OpenSSH's sshd on 127.0.0.1
(transfers/sftp/early_read.py, ``FileSession.read``).

What is pinned: the order on the wire (LSTAT, OPEN, READ, FSTAT before the HANDLE
comes back), bytes that are exact either way (empty, one byte, one request, several,
a segment, a session's first file before its limits are known, many files at once on
one channel beside listings and a missing file), and a wrong guess that harms nothing:
asked of an unused handle, of another file held open (its bytes are never taken for
this file's), of a folder being listed.
"""

from __future__ import annotations

import asyncio
import os
from collections.abc import Callable

import asyncssh
import pytest
from asyncssh.constants import FXP_FSTAT, FXP_HANDLE, FXP_LSTAT, FXP_OPEN, FXP_READ
from asyncssh.sftp import SAFE_SFTP_READ_LEN

from fsmove.transfers.backend import Entry, EntryKind, NotFoundError, SourceChangedError
from fsmove.transfers.endpoint import parse_endpoint
from fsmove.transfers.sftp import SftpStore
from fsmove.transfers.sftp.early_read import OPENSSH_READ_LEN, EarlyRead
from fsmove.transfers.sftp.session import SftpSession
from tests.servers import RunningServer, make_tree

SIZES = {"empty": 0, "one": 1, "small": 5000, "limit": OPENSSH_READ_LEN,
         "over": OPENSSH_READ_LEN + 1, "big": 3 * OPENSSH_READ_LEN + 17}
FILES = {f"files/{name}.bin": os.urandom(size) for name, size in SIZES.items()}


@pytest.fixture
def server(
    sshd_server: RunningServer, fresh_subdir: Callable[[RunningServer], RunningServer]
) -> RunningServer:
    served = fresh_subdir(sshd_server)
    make_tree(served, FILES | {f"folder/f{i:03d}": b"n" for i in range(120)})
    return served


def _store(server: RunningServer) -> SftpStore:
    ep = parse_endpoint(server.url()).with_password(server.password)
    return SftpStore(ep, known_hosts=server.known_hosts, client_keys=[], timeout=20.0)


async def _read(session: SftpSession, path: str, *, offset: int = 0,
                length: int | None = None, listed: Entry | None = None) -> bytes:
    """Read as the copy does: with the listed entry (the LSTAT beside the OPEN)."""
    expect = listed if listed is not None else await session.stat(path)
    pieces = [p async for p in session.read(path, offset=offset, length=length,
                                            expect=expect)]
    return b"".join(pieces)


def test_the_first_read_goes_out_with_the_open(
    server: RunningServer, sftp_packets: list[int]
) -> None:
    async def go() -> None:
        st = _store(server)
        session = await st.connect()
        listed = await session.stat("files/small.bin")
        before = len(sftp_packets)
        assert await _read(session, "files/small.bin", listed=listed) \
            == FILES["files/small.bin"]
        order = [p for p in sftp_packets[before:]
                 if p in (FXP_LSTAT, FXP_OPEN, FXP_READ, FXP_FSTAT, -FXP_HANDLE)]
        assert order[:5] == [FXP_LSTAT, FXP_OPEN, FXP_READ, FXP_FSTAT, -FXP_HANDLE], order
        assert session._handles.known
        await st.aclose()

    asyncio.run(go())


def test_every_size_and_segment_reads_exactly(server: RunningServer) -> None:
    async def go() -> None:
        st = _store(server)
        session = await st.connect()
        for _round in range(2):  # the second round reuses freed handles
            for path, data in FILES.items():
                assert await _read(session, path) == data, path
            big = FILES["files/big.bin"]
            for offset, length in ((0, 10), (5, OPENSSH_READ_LEN), (OPENSSH_READ_LEN - 3, 7),
                                   (len(big) - 1, 1), (17, len(big) - 17)):
                got = await _read(session, "files/big.bin", offset=offset, length=length)
                assert got == big[offset:offset + length], (offset, length)
        assert session._handles.known
        await st.aclose()

    asyncio.run(go())


def test_a_session_s_first_file_before_its_limits_are_known(
    server: RunningServer, monkeypatch: pytest.MonkeyPatch
) -> None:
    """An early READ made while the limits answer is still on its way asks OpenSSH's
    own bound (the server would cut a longer one): the bytes are exact."""
    sizes: list[int] = []
    own_init = EarlyRead.__init__

    def recorded(self: EarlyRead, *args: object, **kwargs: object) -> None:
        own_init(self, *args, **kwargs)  # type: ignore[arg-type]
        sizes.append(self.size)

    monkeypatch.setattr(EarlyRead, "__init__", recorded)

    async def go() -> None:
        st = _store(server)
        loop = asyncio.get_running_loop()
        for path in ("files/big.bin", "files/over.bin", "files/one.bin"):
            fresh = await st._open_session()
            await fresh._limits_known()
            # As if the answer were still on its way when the read starts: it arrives
            # (here: is set) only once the read's first requests are written.
            # asyncssh's own safe sizes stand until then.
            fresh._sftp.limits.max_read_len = SAFE_SFTP_READ_LEN
            fresh._limits = on_its_way = loop.create_future()
            loop.call_soon(on_its_way.set_result, None)
            listed = Entry(path=path, kind=EntryKind.FILE, size=len(FILES[path]))
            assert await _read(fresh, path, listed=listed) == FILES[path]
            await fresh.close()
        await st.aclose()

    asyncio.run(go())
    assert sizes == [OPENSSH_READ_LEN] * 3


def test_many_reads_listings_and_a_missing_file_at_once_stay_exact(
    server: RunningServer, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Reads started together on one channel (each other's OPENs and CLOSEs written
    between one's start and its OPEN), a listing beside them: every guess right,
    every read exact, round after round; then a missing file (its failed OPEN ends
    the guessing on the channel) and exact reads without guesses."""
    outcomes: list[bool] = []
    own_matches = EarlyRead.matches

    def counted(self: EarlyRead, fh: object) -> bool:
        outcomes.append(own_matches(self, fh))  # type: ignore[arg-type]
        return outcomes[-1]

    monkeypatch.setattr(EarlyRead, "matches", counted)

    async def go() -> None:
        st = _store(server)
        session = await st.connect()

        async def names() -> int:
            return len([e async for e in session.list("folder")])

        for round_ in range(12):
            jobs = [_read(session, path) for path in FILES]
            jobs.insert(2, names())  # type: ignore[arg-type]
            got = await asyncio.gather(*jobs)
            assert got[2] == 120
            del got[2]
            assert got == list(FILES.values())
            if round_ == 6:
                assert outcomes == [True] * 7 * len(FILES)
                with pytest.raises(NotFoundError):
                    await _read(session, "files/nope.bin",
                                listed=Entry(path="files/nope.bin", kind=EntryKind.FILE,
                                             size=1))
                assert not session._handles.known  # no guess from here on
        assert len(outcomes) == 7 * len(FILES)  # none made after the surprise
        await st.aclose()

    asyncio.run(go())


@pytest.mark.parametrize("guess", ["unused", "another open file", "a folder held open"])
def test_a_wrong_guess_harms_nothing(server: RunningServer, guess: str,
                                     monkeypatch: pytest.MonkeyPatch,
                                     sftp_packets: list[int]) -> None:
    """The READ and FSTAT asked of a handle that is not the file's are dropped: the
    file reads exactly, the other file held open reads on from where it was, the
    folder held open lists whole."""
    async def go() -> None:
        st = _store(server)
        session = await st.connect()
        handler = session._sftp._handler
        listed = await session.stat("files/small.bin")
        held = folder = None
        if guess == "another open file":
            held = await session._sftp.open(session._full("files/limit.bin"), "rb")
            wrong = held._handle
        elif guess == "a folder held open":
            folder = await handler.opendir(session._sftp.compose_path(session._full("folder")))
            wrong = folder
        else:
            wrong = b"\x00\x00\x00\x09"
        monkeypatch.setattr(session._handles, "last_told", lambda: wrong)
        before = len(sftp_packets)
        assert await _read(session, "files/small.bin", listed=listed) \
            == FILES["files/small.bin"]
        order = [p for p in sftp_packets[before:] if p in (FXP_OPEN, FXP_READ, -FXP_HANDLE)]
        assert order[:3] == [FXP_OPEN, FXP_READ, -FXP_HANDLE], order  # the guess went out
        if held is not None:
            assert await held.read() == FILES["files/limit.bin"]
            await held.close()
        if folder is not None:
            names: list[object] = []
            while True:
                try:
                    batch, _at_end = await handler.readdir(folder)
                except asyncssh.SFTPEOFError:
                    break
                names += [n.filename for n in batch]
            assert len([n for n in names if n not in (b".", b"..", ".", "..")]) == 120
            await handler.close(folder)
        await st.aclose()

    asyncio.run(go())


def test_a_file_changed_since_listed_is_refused_with_the_early_read_out(
    server: RunningServer,
) -> None:
    """The LSTAT beside the OPEN still decides: a file that is not what was listed
    yields nothing, though its first READ was already asked."""
    async def go() -> None:
        st = _store(server)
        session = await st.connect()
        listed = await session.stat("files/small.bin")
        stale = Entry(path=listed.path, kind=listed.kind, size=listed.size + 1,
                      mtime=listed.mtime)
        pieces: list[bytes] = []
        with pytest.raises(SourceChangedError):
            async for piece in session.read("files/small.bin", expect=stale):
                pieces.append(piece)
        assert pieces == []
        assert await _read(session, "files/small.bin") == FILES["files/small.bin"]
        await st.aclose()

    asyncio.run(go())
