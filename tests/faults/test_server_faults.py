"""Server faults: a restart mid-transfer, every connection cut again and again, a server
that accepts only 2 connections, a server that stalls. fsmove runs as a real process
(``fsmove_run``); the test acts on the server when fsmove's JSON events say the copy is
at the right point, never after a fixed sleep."""

from __future__ import annotations

import os
from collections.abc import Callable, Iterator
from contextlib import AbstractContextManager, contextmanager
from pathlib import Path

import pytest

from tests.copy_harness import temp_leftovers, tree_digests
from tests.faults.fsmove_run import FsmoveRunner, check_clean_failure, check_partial
from tests.faults.hostile_ftpd import HostileDir, HostileFile, start_hostile_ftpd
from tests.faults.restartable_ftpd import RestartableFtpd
from tests.faults.trees import FAST, KiB, random_files, write_local
from tests.servers import (
    RunningServer,
    make_tree,
    start_proftpd,
    start_pureftpd,
    start_vsftpd,
)
from tests.servers.cuts import Cutter, ftp_relay, relay_known_hosts
from tests.servers.ports import free_port
from tests.servers.relay import Relay, start_relay


def final_files_are_whole(dst: Path, files: dict[str, bytes]) -> None:
    """Every file at its final name is complete and right (partial data only ever sits
    in ``.fsmove.*.part`` files)."""
    for rel, data in files.items():
        path = dst / rel
        if path.exists():
            assert path.read_bytes() == data, f"{rel}: incomplete file at its final name"


# -- a real server restart ---------------------------------------------------------------


def test_server_restart_mid_transfer_then_rerun_resumes(
    fsmove: FsmoveRunner, tmp_path: Path
) -> None:
    src = tmp_path / "src"
    files = random_files(4, 768 * KiB, seed=1)
    write_local(src, files)
    dst_root = tmp_path / "ftp-root"
    dst_root.mkdir()
    server = RestartableFtpd(dst_root)
    with server.running():
        fsmove.secret(server.password)
        env = {"FSMOVE_DST_PASSWORD": server.password}
        args = ("copy", str(src), server.url(), "--retries", "0", "--bwlimit", "1M",
                "--workers", "2", *FAST)
        child = fsmove.start(*args, env=env)
        child.wait_for(lambda e: e.get("type") == "progress"
                       and int(str(e["bytes_sent"])) >= 256 * KiB)
        server.stop()  # every session dropped, new connections refused
        run = child.finish()
        final_files_are_whole(dst_root, files)
        check_partial(run)
        server.start()  # same port, same files
        again = fsmove.run(*args[:3], *FAST, env=env)
        assert again.code == 0, str(again)
    assert tree_digests(dst_root) == tree_digests(src)
    assert not temp_leftovers(dst_root)


# -- a relay that cuts every connection, again and again ---------------------------------


#: (protocol, the server's side of the copy) -> the seed of its four 1.5 MiB files.
CUT_CASES = {("sftp", "source"): 2, ("sftp", "destination"): 6,
             ("ftp", "source"): 3, ("ftp", "destination"): 5}


@contextmanager
def relayed(kind: str, server: RunningServer, tmp_path: Path
            ) -> Iterator[tuple[Relay, str, tuple[str, ...]]]:
    """A relay in front of ``server``: (the relay, the URL through it, its options)."""
    if kind == "ftp":
        with ftp_relay(server) as relay:
            yield relay, f"ftp://{server.user}@127.0.0.31:{server.port}{server.url_path}", ()
        return
    port = free_port()
    with start_relay(listen_host="127.0.0.1", target_host="127.0.0.1",
                     ports={port: server.port}) as relay:
        known = relay_known_hosts(server, port, tmp_path / "known_hosts")
        yield (relay, f"sftp://{server.user}@127.0.0.1:{port}{server.url_path}",
               ("--known-hosts", str(known)))


@pytest.mark.parametrize(("kind", "side"), list(CUT_CASES),
                         ids=[f"{k}-{s}" for k, s in CUT_CASES])
def test_connections_cut_every_second_are_survived(
    fsmove: FsmoveRunner, tmp_path: Path, kind: str, side: str,
    request: pytest.FixtureRequest, fresh_subdir: Callable[[RunningServer], RunningServer],
) -> None:
    """SFTP (sshd) and FTP (vsftpd), each as the source and as the destination, behind a
    relay that cuts every connection every 0.8 s (4 times, the first once a file has
    started; --bwlimit makes the copy last longer than that on any machine): each file
    is retried on a new session, nothing incomplete ever sits at a final name, and the
    copy ends whole."""
    server = fresh_subdir(request.getfixturevalue("sshd_server" if kind == "sftp"
                                                  else "vsftpd_server"))
    files = random_files(4, 1536 * KiB, seed=CUT_CASES[(kind, side)])
    local = tmp_path / ("dst" if side == "source" else "src")
    if side == "source":
        make_tree(server, files)
    else:
        write_local(local, files)
    with relayed(kind, server, tmp_path) as (relay, url, opts):
        ends, env = (((url, str(local)), {"FSMOVE_SRC_PASSWORD": server.password})
                     if side == "source"
                     else ((str(local), url), {"FSMOVE_DST_PASSWORD": server.password}))
        args = ("copy", *ends, *opts, "--retries", "30", "--bwlimit", "2M",
                "--workers", "2", *FAST)
        child = fsmove.start(*args, env=env)
        child.wait_for(lambda e: e.get("type") == "file_started")
        dst_root = local if side == "source" else server.root
        with Cutter(relay, every=0.8, times=4) as cutter:
            final_files_are_whole(dst_root, files)
            run = child.finish()
        assert run.code == 0, str(run)
        assert cutter.done >= 1, "the copy ended before the first cut: make it longer"
    src_root = server.root if side == "source" else local
    assert tree_digests(dst_root) == tree_digests(src_root)
    assert not temp_leftovers(dst_root)


# -- a server that accepts only 2 connections --------------------------------------------


@pytest.mark.parametrize("start_fn", [start_vsftpd, start_pureftpd, start_proftpd],
                         ids=["vsftpd-421", "pure-ftpd-421", "proftpd-530"])
def test_server_accepting_two_connections_gets_everything(
    fsmove: FsmoveRunner, tmp_path: Path,
    own_server: Callable[..., RunningServer],
    start_fn: Callable[..., AbstractContextManager[RunningServer]],
) -> None:
    server = own_server(start_fn, max_clients=2)
    src = tmp_path / "src"
    files = random_files(24, 40 * KiB, seed=4)
    write_local(src, files)
    env = {"FSMOVE_DST_PASSWORD": server.password}
    run = fsmove.run("copy", str(src), server.url(), "--dst-connections", "8",
                     "--workers", "8", "--retries", "3", *FAST, env=env)
    assert run.code == 0, str(run)
    assert run.summary["files_copied"] == len(files)
    assert tree_digests(server.root) == tree_digests(src)


@pytest.mark.parametrize(("start_fn", "clients"), [(start_vsftpd, 1), (start_proftpd, 2)],
                         ids=["vsftpd-1", "proftpd-2"])
def test_a_source_server_taking_one_or_two_sessions_is_read_whole(
    fsmove: FsmoveRunner, tmp_path: Path,
    own_server: Callable[..., RunningServer],
    start_fn: Callable[..., AbstractContextManager[RunningServer]], clients: int,
) -> None:
    """A source that takes one (vsftpd) or two (proftpd) sessions, with fsmove's
    defaults and with --src-connections 1. Before session 36 every run was refused
    "too many sessions ... lower the number of connections" even at 1: the root check
    and the first listing each asked the store's capabilities, and each of those logged
    in beside the pool's session."""
    server = own_server(start_fn, max_clients=clients)
    files = {f"d{i}/f{k}.bin": bytes([k]) * 3000 for i in range(4) for k in range(6)}
    make_tree(server, {f"s/{p}": b for p, b in files.items()})
    env = {"FSMOVE_SRC_PASSWORD": server.password}
    for extra, dst in (((), tmp_path / "a"), (("--src-connections", "1"), tmp_path / "b")):
        run = fsmove.run("copy", server.url("s"), str(dst), *extra, *FAST, env=env)
        assert run.code == 0, str(run)
        assert tree_digests(dst) == tree_digests(server.root / "s")


# -- a server that stalls ----------------------------------------------------------------


@pytest.fixture
def stalling_server() -> Iterator[tuple[object, dict[str, bytes]]]:
    files = {"fine.txt": b"fine", "slow.bin": bytes(range(256)) * 1024}
    tree = {
        b"/": HostileDir(auto=True),
        b"/fine.txt": HostileFile(files["fine.txt"]),
        b"/slow.bin": HostileFile(files["slow.bin"], stall_after=64 * KiB),
    }
    with start_hostile_ftpd(tree) as server:
        yield server, files


def test_stalled_transfer_times_out_and_fails_that_file(
    fsmove: FsmoveRunner, tmp_path: Path, stalling_server: tuple[object, dict[str, bytes]]
) -> None:
    server, files = stalling_server
    fsmove.secret(server.password)  # type: ignore[attr-defined]
    env = {"FSMOVE_SRC_PASSWORD": server.password}  # type: ignore[attr-defined]
    dst = tmp_path / "dst"
    args = ("copy", server.url(), str(dst), "--timeout", "2", "--retries", "1",  # type: ignore[attr-defined]
            "--retry-delay", "0.1", "--json")
    run = fsmove.run(*args, env=env)
    reasons = check_partial(run, "slow.bin")
    assert "stall" in reasons["slow.bin"] or "time" in reasons["slow.bin"], reasons
    assert not (dst / "slow.bin").exists()
    assert (dst / "fine.txt").read_bytes() == b"fine"
    server.stop_stalling()  # type: ignore[attr-defined]
    again = fsmove.run(*args, env=env)
    assert again.code == 0, str(again)
    assert (dst / "slow.bin").read_bytes() == files["slow.bin"]
    assert not temp_leftovers(dst)


def test_server_that_never_greets_is_a_one_line_error(
    fsmove: FsmoveRunner, tmp_path: Path, stalling_server: tuple[object, dict[str, bytes]]
) -> None:
    server, _files = stalling_server
    fsmove.secret(server.password)  # type: ignore[attr-defined]
    env = {"FSMOVE_SRC_PASSWORD": server.password}  # type: ignore[attr-defined]
    server.set_mute(True)  # type: ignore[attr-defined]
    dst = tmp_path / "dst"
    args = ("copy", server.url(), str(dst), "--timeout", "1", "--retries", "0", "-q")  # type: ignore[attr-defined]
    run = fsmove.run(*args, env=env)
    check_clean_failure(run, 1, "127.0.0.1")
    server.set_mute(False)  # type: ignore[attr-defined]
    server.stop_stalling()  # type: ignore[attr-defined]
    again = fsmove.run(*args, env=env)
    assert again.code == 0, str(again)
    assert sorted(os.listdir(dst)) == ["fine.txt", "slow.bin"]
