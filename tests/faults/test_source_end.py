"""The end of an FTP download: the last piece goes on before the server's 226, and a
download the server does not confirm is never placed.

An FTP source hands a file's last piece to the destination as soon as its data
connection ended, not after the 226 and the re-stat riding with it (one round trip
sooner per small file over a WAN: benchmarks/README.md "Session 21"). The bytes count
only once the download ended cleanly: a 451 in place of the 226 after every byte fails
the file, though the destination already holds all of it under its temporary name.

``hostile_ftpd`` as the source: ``hold_before_retr_end`` keeps the 226 until the test
releases it, so "went on before the 226" is a fact of the wire, never a time measured;
a file's ``end_reply`` replaces its 226."""

from __future__ import annotations

import time
from collections.abc import Callable
from pathlib import Path

import pytest

from tests.copy_harness import temp_leftovers
from tests.faults.fsmove_run import FsmoveRunner, check_partial
from tests.faults.hostile_ftpd import HostileDir, HostileFile, start_hostile_ftpd
from tests.servers import RunningServer

#: A bounded wait for something the copy does by itself (never a time that decides a
#: test: passing is the condition seen, failing is the condition never seen).
_WAIT_S = 60.0


def _whole_temp_file(root: Path, data: bytes) -> bool:
    """A ``.fsmove.*.part`` file below ``root`` holds exactly ``data``."""
    return any(p.read_bytes() == data for p in root.rglob(".fsmove.*.part") if p.is_file())


def test_the_destination_has_every_byte_before_the_source_s_226(
    fsmove: FsmoveRunner, fresh_subdir: Callable[[RunningServer], RunningServer],
    vsftpd_server: RunningServer,
) -> None:
    data = b"the whole small file\n" * 50
    tree: dict[bytes, HostileFile | HostileDir] = {
        b"/": HostileDir(auto=True), b"/a.txt": HostileFile(data)}
    dst = fresh_subdir(vsftpd_server)
    with start_hostile_ftpd(tree, lies=False, hold_before_retr_end=True) as source:
        fsmove.secret(source.password, dst.password)
        child = fsmove.start(
            "copy", source.url(), dst.url(), "--retries", "0", "--json",
            env={"FSMOVE_SRC_PASSWORD": source.password,
                 "FSMOVE_DST_PASSWORD": dst.password})
        try:
            deadline = time.monotonic() + _WAIT_S
            while not (source.switches.holding == 1 and _whole_temp_file(dst.root, data)):
                assert child.proc.poll() is None, "fsmove ended while the 226 was held"
                assert time.monotonic() < deadline, (
                    "the destination never got the file's bytes while the source held its "
                    f"226 (holding={source.switches.holding})")
                time.sleep(0.02)
            assert not (dst.root / "a.txt").exists()  # not placed before the 226
        finally:
            source.release_holds()
        run = child.finish()
    assert run.code == 0, str(run)
    assert (dst.root / "a.txt").read_bytes() == data
    assert not temp_leftovers(dst.root)


@pytest.mark.parametrize("destination", ["local", "vsftpd"])
def test_a_download_the_server_does_not_confirm_is_not_placed(
    fsmove: FsmoveRunner, tmp_path: Path, request: pytest.FixtureRequest,
    fresh_subdir: Callable[[RunningServer], RunningServer], destination: str,
) -> None:
    """Every byte of ``bad.txt`` arrives, then 451 instead of 226: the file fails (exit
    3, retried first), nothing at its name; once the server confirms, the rerun places
    it."""
    bad = b"all of it, unconfirmed\n" * 40
    tree: dict[bytes, HostileFile | HostileDir] = {
        b"/": HostileDir(auto=True),
        b"/ok.txt": HostileFile(b"fine"),
        b"/bad.txt": HostileFile(bad, end_reply="451 Read error on the server."),
    }
    with start_hostile_ftpd(tree) as source:
        env = {"FSMOVE_SRC_PASSWORD": source.password}
        if destination == "local":
            root, url = tmp_path / "dst", str(tmp_path / "dst")
        else:
            server = fresh_subdir(request.getfixturevalue("vsftpd_server"))
            root, url = server.root, server.url()
            env["FSMOVE_DST_PASSWORD"] = server.password
            fsmove.secret(server.password)
        fsmove.secret(source.password)
        args = ("copy", source.url(), url, "--retries", "1", "--retry-delay", "0.1", "--json")
        run = fsmove.run(*args, env=env)
        reasons = check_partial(run, "bad.txt")
        assert "451" in reasons["bad.txt"], reasons
        assert not (root / "bad.txt").exists()
        assert (root / "ok.txt").read_bytes() == b"fine"
        source.stop_lying()
        again = fsmove.run(*args, env=env)
    assert again.code == 0, str(again)
    assert (root / "bad.txt").read_bytes() == bad
    assert not temp_leftovers(root)
