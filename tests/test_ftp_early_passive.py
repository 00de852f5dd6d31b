"""The next transfer's passive port asked before a transfer's final reply
(transfers/ftp/transfer.py, "Asked during the transfer"), against the real servers:
vsftpd reads commands one after the other and answers it after its 226; pure-ftpd and
proftpd answer a command that arrives during a transfer at once with a refusal, ahead of
the 226. Whatever the order, every transfer ends on its own reply, the session stays in
step, and a server that answers early makes the store stop asking early."""

from __future__ import annotations

import asyncio
import os
from collections.abc import Callable
from pathlib import Path

import pytest

from fsmove.transfers.backend import BackendError, NotFoundError, TransientError
from fsmove.transfers.ftp import FtpSession, FtpStore
from fsmove.transfers.ftp.client import Reply
from fsmove.transfers.ftp.data import DataStream
from tests.copy_harness import run_copy_inprocess, side_for, tree_digests
from tests.servers import RunningServer
from tests.servers.catalog import THIRD_PARTY_FTP_SERVERS
from tests.test_ftp_backend import pieces, read_all, with_session

pytestmark = pytest.mark.interop

#: Servers that run a command sent during a transfer at once (a refusal): FACTS.md's
#: three servers, measured with a transfer held open (this file's second test).
ANSWER_DURING_TRANSFER = {"pureftpd_server", "proftpd_server"}


def _record(session: FtpSession) -> list[tuple[str, str | int]]:
    """Every command line sent and every reply code read on ``session``, in order."""
    wire: list[tuple[str, str | int]] = []
    client = session._client
    send, send_many, read_reply = client.send, client.send_many, client._read_reply

    async def sent(line: str) -> None:
        wire.append(("send", line.split(" ", 1)[0]))
        await send(line)

    async def sent_many(lines: list[str]) -> None:
        wire.extend(("send", line.split(" ", 1)[0]) for line in lines)
        await send_many(lines)

    async def replied() -> Reply:
        reply = await read_reply()
        wire.append(("reply", reply.code))
        return reply

    client.send = sent  # type: ignore[method-assign]
    client.send_many = sent_many  # type: ignore[method-assign]
    client._read_reply = replied  # type: ignore[method-assign]
    return wire


def _asked_early(wire: list[tuple[str, str | int]]) -> int:
    """How many transfers had the next EPSV sent before their 226 was read (the last two
    commands out before the 226 are the transfer's and EPSV, and 229 follows the 226)."""
    count = 0
    for i in range(len(wire) - 1):
        if wire[i] != ("reply", 226) or wire[i + 1] != ("reply", 229):
            continue
        sent = [name for kind, name in wire[:i] if kind == "send"]
        if sent[-4:] == ["RETR", "EPSV", "SIZE", "MDTM"] or sent[-2:] in (
                ["STOR", "EPSV"], ["RETR", "EPSV"], ["LIST", "EPSV"]):
            count += 1
    return count


@pytest.mark.parametrize("fixture", THIRD_PARTY_FTP_SERVERS)
def test_transfers_stay_in_step_with_the_port_asked_early(
    fixture: str, request: pytest.FixtureRequest,
    fresh_subdir: Callable[[RunningServer], RunningServer],
) -> None:
    """Uploads (one piece, many pieces, empty), downloads, listings, refusals and a file
    shorter than asked, one after the other on one session: every byte right, every
    error the right one. On vsftpd the port really is asked before the 226 (the wire
    shows EPSV, 226, 229) and stays so; FTPS never asks early (each data connection's
    TLS belongs to its transfer)."""
    server = fresh_subdir(request.getfixturevalue(fixture))

    async def check(s: FtpSession, store: FtpStore) -> None:
        wire = _record(s)
        for i in range(6):
            assert await s.write(f"f{i}.bin", pieces(b"%d" % i * 1000)) == 1000 * len(b"%d" % i)
        big = b"".join(bytes([n]) * 65536 for n in range(40))
        parts = [big[k:k + 65536] for k in range(0, len(big), 65536)]
        assert await s.write("big.bin", pieces(*parts)) == len(big)
        assert await s.write("empty.bin", pieces()) == 0
        with pytest.raises(BackendError):
            await s.write("no/such/folder/x.bin", pieces(b"x"))
        with pytest.raises(NotFoundError):
            await read_all(s, "missing.bin")
        for i in range(6):
            assert await read_all(s, f"f{i}.bin") == b"%d" % i * 1000
        # The stat right after a whole download: on vsftpd it rode along with the
        # download's end (no command of its own), elsewhere it is asked now.
        before = len(wire)
        got = await s.stat("f5.bin")
        assert (got.size, got.kind.value) == (1000, "file")
        assert (len(wire) == before) is (fixture == "vsftpd_server"), wire[before:]
        # Not for another path, nor after another operation.
        await read_all(s, "f4.bin")
        before = len(wire)
        assert (await s.stat("f3.bin")).size == 1000
        assert len(wire) > before
        assert await read_all(s, "big.bin") == big
        assert await read_all(s, "big.bin", offset=100, length=1000) == big[100:1100]
        assert await read_all(s, "empty.bin") == b""
        names = sorted([e.path async for e in s.list("")])
        assert {"big.bin", "empty.bin", *(f"f{i}.bin" for i in range(6))} <= set(names)
        assert await s.write("last.bin", pieces(b"end")) == 3
        assert await read_all(s, "last.bin") == b"end"
        assert s.usable
        if store.tls:
            assert _asked_early(wire) == 0
        elif fixture == "vsftpd_server":
            assert store.early_passive_off is None
            # Uploads, downloads and the listing each asked early.
            assert _asked_early(wire) >= 15, wire

    with_session(server, check)


async def _held_upload(s: FtpSession, path: str, payload: bytes
                       ) -> tuple[asyncio.Task[None], DataStream]:
    """A STOR whose data connection stays open while the early EPSV goes out: the
    finishing task and the data connection (the caller ends it)."""
    store: FtpStore = s._store
    _reader, writer = await s._start_transfer(
        "STOR", rest=0, abs_path=store.abs_path(path), path=path, action="write")
    writer.write(payload)
    await writer.drain()
    task = asyncio.ensure_future(s._finish_asking_passive(path=path, action="write"))
    return task, writer


@pytest.mark.parametrize("fixture", ["vsftpd_server", "pureftpd_server", "proftpd_server"])
def test_a_command_that_arrives_during_a_transfer(
    fixture: str, request: pytest.FixtureRequest,
    fresh_subdir: Callable[[RunningServer], RunningServer],
) -> None:
    """The EPSV sent while an upload's data connection is still open. pure-ftpd and
    proftpd refuse it at once (before their 226): the upload still completes whole,
    the store stops asking early, the session stays in step. vsftpd keeps it for
    after its 226 and opens the next data connection ahead."""
    server = fresh_subdir(request.getfixturevalue(fixture))

    async def check(s: FtpSession, store: FtpStore) -> None:
        # A first transfer, so that the session knows its passive mode.
        assert await s.write("warm.bin", pieces(b"w")) == 1
        s._drop_ahead()
        await s._client.settle()
        payload = b"p" * 200_000
        wire = _record(s)
        task, data = await _held_upload(s, "held.bin", payload)
        if fixture in ANSWER_DURING_TRANSFER:
            # Keep the upload going (proftpd looks at its control connection between
            # reads of data) until the refusal was read: bounded by rounds, not by
            # a clock.
            for _ in range(3000):
                if wire[-2][1] == "EPSV" or task.done():
                    break
                data.write(b"q" * 4096)
                await data.drain()
                payload += b"q" * 4096
                await asyncio.sleep(0.01)
            assert wire[-2:] == [("send", "EPSV"), ("reply", wire[-1][1])], wire
            assert wire[-1][1] in (450, 500) and not task.done(), wire
        data.close()
        await task
        assert s.usable
        if fixture in ANSWER_DURING_TRANSFER:
            assert store.early_passive_off is not None
            assert "during a transfer" in store.early_passive_off
        else:
            assert store.early_passive_off is None
            await s._client.settle()  # the 229 after the 226 is read in the background
            assert s._ahead is not None
        assert await read_all(s, "held.bin") == payload
        assert await s.write("after.bin", pieces(b"after")) == 5
        assert await read_all(s, "after.bin") == b"after"

    with_session(server, check)



def test_the_stat_that_rode_along_sees_a_change_made_during_the_read(
    vsftpd_server: RunningServer, fresh_subdir: Callable[[RunningServer], RunningServer],
) -> None:
    """The source's re-stat that rides along with a download's end (vsftpd) is asked
    after the last byte: a file whose time changed while it was read shows the new
    time, exactly as a stat of its own would (the copy then restarts the file)."""
    server = fresh_subdir(vsftpd_server)
    local = server.root / "moving.bin"
    local.write_bytes(b"m" * (8 << 20))
    os.chown(local, *server.owner)
    os.utime(local, (1_000_000_000, 1_000_000_000))

    async def check(s: FtpSession, store: FtpStore) -> None:
        assert await s.write("warm.bin", pieces(b"w")) == 1  # passive mode known
        assert (await s.stat("moving.bin")).mtime == 1_000_000_000
        wire = _record(s)
        got = 0
        async for piece in s.read("moving.bin"):
            if not got:
                os.utime(local, (1_500_000_000, 1_500_000_000))
            got += len(piece)
        assert got == 8 << 20
        before = len(wire)
        now = await s.stat("moving.bin")
        assert len(wire) == before, wire[before:]  # it rode along
        assert (now.size, now.mtime) == (8 << 20, 1_500_000_000)

    with_session(server, check)


@pytest.mark.parametrize("fixture", THIRD_PARTY_FTP_SERVERS)
def test_a_placing_answered_in_the_background(
    fixture: str, request: pytest.FixtureRequest,
    fresh_subdir: Callable[[RunningServer], RunningServer],
) -> None:
    """``place_started`` sends the placing batch and frees the session at once: the
    next upload's commands follow it on the connection before its replies were read,
    and the wait then raises exactly as ``place`` would (a missing temporary file is
    NotFoundError, a rename onto a folder a refusal, a size that does not match a
    TransientError); a connection lost before the replies fails the wait, never
    hangs it."""
    server = fresh_subdir(request.getfixturevalue(fixture))

    async def check(s: FtpSession, store: FtpStore) -> None:
        assert await s.write("t1.part", pieces(b"one")) == 3
        assert await s.stat("t1.part")  # SITE HELP asked once before (chmod)
        await s.place("t1.part", "zero.txt", mtime=None, mode=0o640, size=3)
        assert await s.write("t1.part", pieces(b"one")) == 3
        await s._client.settle()
        if s._ahead is not None:
            await s._ahead  # connected: the next upload need not wait for anything
        owed_at_send: list[int] = []
        client = s._client
        send_many = client.send_many

        # Every batch goes through send_many (passive_then too, since session 36: its
        # FTPS pieces), so a STOR is counted there whichever way it is sent.
        async def counting(lines: list[str]) -> None:
            if any(line.startswith("STOR ") for line in lines):
                owed_at_send.append(len(client._owed))
            await send_many(lines)

        client.send_many = counting  # type: ignore[method-assign]
        finish = await s.place_started("t1.part", "one.txt", mtime=1_000_000_000,
                                       mode=0o640, size=3)
        assert finish is not None
        # The next upload goes out before the placing's replies were read (nothing
        # in between waits on the connection: the ahead connection is ready, the
        # name is in the root).
        assert await s.write("t2.part", pieces(b"two")) == 3
        expected = 6 if store.site_chmod else 5  # [CHMOD,] MDTM/MFMT, RNFR, RNTO, 2 checks
        assert owed_at_send == [expected], owed_at_send
        await finish()
        got = await s.stat("one.txt")
        assert (got.size, got.mtime) == (3, 1_000_000_000)
        assert await read_all(s, "one.txt") == b"one"
        with pytest.raises(NotFoundError):
            await s.stat("t1.part")
        # Refusals, from the replies alone, as place raises them.
        missing = await s.place_started("gone.part", "gone.txt", mtime=None, size=3)
        assert missing is not None
        with pytest.raises(NotFoundError):
            await missing()
        with pytest.raises(NotFoundError):
            await s.place("gone.part", "gone.txt", mtime=None, size=3)
        short = await s.place_started("t2.part", "two.txt", mtime=None, size=4)
        assert short is not None
        with pytest.raises(TransientError, match="holds 3 bytes of 4"):
            await short()
        assert s.usable
        assert await s.write("t3.part", pieces(b"three")) == 5
        lost = await s.place_started("t3.part", "three.txt", mtime=None, size=5)
        assert lost is not None
        s._client.stream.writer.transport.abort()  # before any reply was read
        with pytest.raises(TransientError, match="session was lost"):
            await lost()
        assert not s.usable

    with_session(server, check)


@pytest.mark.parametrize("fixture", THIRD_PARTY_FTP_SERVERS)
def test_a_session_s_first_upload_needs_no_passive_round_trip(
    fixture: str, request: pytest.FixtureRequest,
    fresh_subdir: Callable[[RunningServer], RunningServer],
) -> None:
    """Plain FTP: the login asked the first passive port with its last commands, and
    the session connected to it ahead, so its first upload sends the DELE that clears
    the name and its STOR at once, no passive command before them. FTPS (no data
    connection ahead: its TLS belongs to its transfer): the passive mode is not known
    yet, and the DELE goes in the same write as the EPSV, one round trip less; the
    transfer command then waits for the port. The bytes arrive whole, and the next
    upload pipelines as before."""
    server = fresh_subdir(request.getfixturevalue(fixture))

    async def check(s: FtpSession, store: FtpStore) -> None:
        batches: list[list[str]] = []
        send_many = s._client.send_many

        async def sent_many(lines: list[str]) -> None:
            batches.append([line.split(" ", 1)[0] for line in lines])
            await send_many(lines)

        s._client.send_many = sent_many  # type: ignore[method-assign]
        # Logged in, nothing transferred yet.
        assert s._client.passive_mode == (None if store.tls else "EPSV")
        assert (s._ahead is not None) is not store.tls
        data = os.urandom(70_000)
        assert await s.write("x.bin", pieces(data[:30_000], data[30_000:])) == len(data)
        if store.tls:
            assert batches[0] == ["DELE", "EPSV"], batches
        else:
            assert batches[0][:2] == ["DELE", "STOR"], batches
        assert await s.write("y.bin", pieces(b"y")) == 1
        assert await read_all(s, "x.bin") == data
        assert await read_all(s, "y.bin") == b"y"

    with_session(server, check)


def test_a_listing_s_mdtms_ride_with_its_end(
    vsftpd_server: RunningServer, fresh_subdir: Callable[[RunningServer], RunningServer],
) -> None:
    """vsftpd lists with LIST only (times to the minute), and runs commands that arrive
    during a transfer after it: once the listing's data ended, its files' MDTMs go out
    with the next EPSV, before the listing's 226 is read, and the 229 is not waited for
    (vsftpd answers it after its 226). On the wire: LIST, 150, EPSV and the MDTMs in
    one write, 226, 229, the 213s; every time exact, and the next transfer runs on the
    port the 229 gave, opened ahead."""
    server = fresh_subdir(vsftpd_server)
    for i in range(3):
        local = server.root / f"t{i}.bin"
        local.write_bytes(b"%d" % i * 100)
        os.chown(local, *server.owner)
        os.utime(local, (1_000_000_000 + i, 1_000_000_000 + i))

    async def check(s: FtpSession, store: FtpStore) -> None:
        assert not store.features.mlst  # a LIST-only server: times come from MDTM
        assert await s.write("warm.bin", pieces(b"w")) == 1  # passive mode known
        await s._client.settle()
        wire = _record(s)
        entries = {e.path: e async for e in s.list("")}
        assert {p: entries[p].mtime for p in ("t0.bin", "t1.bin", "t2.bin")} == {
            f"t{i}.bin": 1_000_000_000 + i for i in range(3)}
        files = len([p for p in entries if entries[p].kind.value == "file"])
        assert wire == [("send", "LIST"), ("reply", 150), ("send", "EPSV"),
                        *[("send", "MDTM")] * files, ("reply", 226), ("reply", 229),
                        *[("reply", 213)] * files], wire
        assert store.early_passive_off is None
        sends = len([w for w in wire if w[0] == "send"])
        assert await read_all(s, "t1.bin") == b"1" * 100
        # No passive command of its own: the port the 229 gave was opened ahead.
        assert [w for w in wire if w[0] == "send"][sends] == ("send", "RETR"), wire
        assert s.usable

    with_session(server, check)


def test_an_upload_to_pyftpdlib_never_waits_for_a_reply_that_will_not_come(
    pyftpdlib_server: RunningServer, fresh_subdir: Callable[[RunningServer], RunningServer],
    tmp_path: Path,
) -> None:
    """pyftpdlib reads a command that arrives during an upload, and a new EPSV closes the
    running data connection: the STOR is never answered. An upload asked the next port
    early (at its end, or with its STOR) on any server that answered FEAT, so each of a
    run's first uploads waited out ``--timeout`` and was retried (a 22 MiB tree took
    32 s). Now uploads ask early on vsftpd only: the copy has no retry at all."""
    server = fresh_subdir(pyftpdlib_server)
    src = side_for("local", None, tmp_path / "src", "src")
    src.put({"big.bin": os.urandom(24 * 1024 * 1024),
             **{f"s/{i}.txt": os.urandom(3000 + i) for i in range(20)}})
    dst = side_for("pyftpdlib_server", server, server.root, "dst")
    result = run_copy_inprocess(src, dst, "--timeout", "20", journal=tmp_path / "job.db")
    assert result.exit_code == 0, result.output
    retries = [e for e in result.events if e.get("type") == "retry"]
    assert retries == [], retries
    assert tree_digests(server.root) == tree_digests(src.root)
