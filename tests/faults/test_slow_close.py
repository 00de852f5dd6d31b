"""A server that closes an uploaded file slowly after its 226 (vsftpd over ext4: ~0.3 s
after 512 MiB, during which it reads no command; benchmarks/README.md "Session 20").
The session that uploaded then owes the next passive port it asked at the transfer's
end. A big file's placing must not queue behind it (the pool lends a session that owes
nothing, or a spare logged in), and closing that session must not wait for it.

``hostile_ftpd`` with ``hold_after_upload``: after such a STOR it answers 226 and then
reads nothing on that connection until the test releases it, so "did not wait" is a
fact of the wire (what the server saw while it held), never a time measured."""

from __future__ import annotations

import asyncio
import random
from collections.abc import AsyncIterator
from pathlib import Path

from fsmove.transfers.endpoint import parse_endpoint
from fsmove.transfers.ftp import FtpStore
from fsmove.transfers.pool import SessionPool
from tests.faults.fsmove_run import FsmoveRunner
from tests.faults.hostile_ftpd import HostileDir, HostileFile, HostileServer, start_hostile_ftpd
from tests.faults.trees import MiB, write_local

#: Above the block size (4 MiB): a "big" file, placed on a settled session.
BIG = 6 * MiB
#: A bounded wait for the server's side of a step (never a time that decides a test).
_POLLS = 2000


async def _until(condition: object, what: str) -> None:
    for _ in range(_POLLS):
        if callable(condition) and condition():
            return
        await asyncio.sleep(0.005)
    raise AssertionError(f"the server never got to: {what}")


def test_a_big_file_is_placed_while_its_upload_s_session_is_held(
    fsmove: FsmoveRunner, tmp_path: Path
) -> None:
    """The copy ends (exit 0, the file whole at its name) while the server still holds
    the session that uploaded it: the rename was read by another session while that
    one held, and the run's end did not wait for the held one either."""
    src = tmp_path / "src"
    big = random.Random(20).randbytes(BIG)
    write_local(src, {"big.bin": big, "small.txt": b"small"})
    tree: dict[bytes, HostileFile | HostileDir] = {b"/": HostileDir(auto=True)}
    with start_hostile_ftpd(tree, writable=True, lies=False,
                            hold_after_upload=BIG) as server:
        fsmove.secret(server.password)
        run = fsmove.run("copy", str(src), server.url(), "--retries", "0", "--json",
                         env={"FSMOVE_DST_PASSWORD": server.password})
        held_at_the_end = server.switches.holding
        server.release_holds()
        stored = server.files()
        renames = list(server.switches.renames)
    assert run.code == 0, str(run)
    assert stored[b"/big.bin"] == big and stored[b"/small.txt"] == b"small"
    assert server.switches.holds == 1 and held_at_the_end == 1
    assert [held for path, held in renames if path == b"/big.bin"] == [1], renames


def test_a_settled_borrower_never_gets_a_session_that_owes_replies(tmp_path: Path) -> None:
    """The pool's ``settled`` borrowers (a big file's placing): with the upload's
    session held and first in line, an ordinary borrower gets it (its owed reply comes
    in a round trip, as a rule), a settled one gets a spare the store holds logged in
    (the probe's), and later the idle session that owes nothing, though the held one
    comes first; each answers while the other is held."""
    tree: dict[bytes, HostileFile | HostileDir] = {b"/": HostileDir(auto=True)}
    with start_hostile_ftpd(tree, writable=True, lies=False,
                            hold_after_upload=BIG) as server:
        asyncio.run(_borrow_around_a_held_session(server))
        server.release_holds()


async def _borrow_around_a_held_session(server: HostileServer) -> None:
    store = FtpStore(parse_endpoint(server.url()).with_password(server.password), timeout=60)
    pool = SessionPool(store, max_sessions=4)
    try:
        async with pool.session() as held:
            assert await held.write("big.part", _big()) == BIG
        await _until(lambda: server.switches.holding == 1, "hold after the upload")
        assert held.owes_replies  # type: ignore[attr-defined]
        async with pool.session() as ordinary:
            assert ordinary is held
        async with pool.session(settled=True) as spare:
            assert spare is not held and not spare.owes_replies  # type: ignore[attr-defined]
            assert (await spare.stat("big.part")).size == BIG
        async with pool.session(settled=True) as settled:
            assert settled is spare
        assert pool.stats.opened == 2
    finally:
        server.release_holds()
        await pool.aclose()


async def _big() -> AsyncIterator[bytes]:
    for _ in range(BIG // MiB):
        yield b"x" * MiB


def test_closing_a_session_that_owes_only_a_port_does_not_wait_for_it(tmp_path: Path) -> None:
    """After a big upload the session owes the port it asked at the transfer's end; the
    server holds. ``close`` says QUIT at once (the server reads it only after the hold)
    instead of waiting for that reply (up to 5 s, and then no QUIT at all)."""
    tree: dict[bytes, HostileFile | HostileDir] = {b"/": HostileDir(auto=True)}
    with start_hostile_ftpd(tree, writable=True, lies=False,
                            hold_after_upload=BIG) as server:
        sent = asyncio.run(_upload_then_close(server))
        still_held = server.switches.holding
        server.release_holds()
    assert still_held == 1
    assert sent[-1] == "QUIT", sent
    assert "EPSV" in sent[-3:-1], sent  # the port asked at the transfer's end


async def _upload_then_close(server: HostileServer) -> list[str]:
    store = FtpStore(parse_endpoint(server.url()).with_password(server.password), timeout=60)
    try:
        session = await store.connect()
        sent: list[str] = []
        client = session._client
        send, send_many = client.send, client.send_many

        async def sent_one(line: str) -> None:
            sent.append(line.split(" ", 1)[0])
            await send(line)

        async def sent_several(lines: list[str]) -> None:
            sent.extend(line.split(" ", 1)[0] for line in lines)
            await send_many(lines)

        client.send = sent_one  # type: ignore[method-assign]
        client.send_many = sent_several  # type: ignore[method-assign]

        assert await session.write("big.part", _big()) == BIG
        await _until(lambda: server.switches.holding == 1, "hold after the upload")
        assert session.owes_replies
        await session.close()
        return sent
    finally:
        await store.aclose()
