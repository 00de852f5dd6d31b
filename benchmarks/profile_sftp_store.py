"""The SFTP backend alone: client CPU per GB of ``SftpStore.read`` / ``write`` of one
large file at RTT 0, without the copy engine (no journal, no hashing, no local disk).

    python -m benchmarks.profile_sftp_store [--rounds 3] [--size-mib 256] [--cprofile N]
        [--variants lean,stock]

Measures ``resource.getrusage(RUSAGE_SELF)`` user + system around each transfer, in
this process, against the real sshd fixture. ``--variants lean,stock`` compares the
store as shipped (``lean``: asyncssh without its per-packet IGNORE and log formatting,
``transfers/sftp/lean.py``) with plain asyncssh (``stock``), in alternating order round
after round, and counts the rounds each won; ``openssh`` is the measuring prototype of
``profile_sftp_openssh.py`` (OpenSSH's ``ssh`` child, its CPU included). Each direction
runs on a fresh session, its connect and login counted (ssh's start-up is ~0.1 s of
CPU: use 256 MiB or more). ``--cprofile N`` prints the N most
expensive functions of one extra read and one extra write. The floor it shows is what
the backend costs per byte; the engine's hashing and file I/O come on top.
"""

from __future__ import annotations

import argparse
import asyncio
import cProfile
import functools
import os
import pstats
import resource
import statistics
import tempfile
from collections.abc import AsyncIterator, Awaitable, Callable
from pathlib import Path

from benchmarks.profile_sftp_openssh import open_openssh_session
from fsmove.transfers.endpoint import parse_endpoint
from fsmove.transfers.sftp import SftpSession, SftpStore
from tests.servers.sshd import start_sshd


def _cpu() -> float:
    u = resource.getrusage(resource.RUSAGE_SELF)
    return u.ru_utime + u.ru_stime


async def _blocks(size: int, block: int) -> AsyncIterator[bytes]:
    data = os.urandom(block)
    left = size
    while left:
        n = min(left, block)
        yield data if n == block else data[:n]
        left -= n


def _children_cpu() -> float:
    u = resource.getrusage(resource.RUSAGE_CHILDREN)
    return u.ru_utime + u.ru_stime


Opener = Callable[[], Awaitable[SftpSession]]


async def _timed(open_session: Opener, job: Callable[[SftpSession], Awaitable[None]],
                 child: bool) -> float:
    """CPU of ``job`` on a fresh session, its connect and login included; with an
    ``ssh`` child, plus the child's whole CPU (counted once it has exited)."""
    children = _children_cpu()
    before = _cpu()
    session = await open_session()
    try:
        await job(session)
        spent = _cpu() - before
    finally:
        await session.close()
    if child:
        await session._conn.wait_closed()  # type: ignore[attr-defined]
        spent += _children_cpu() - children
    return spent


async def _round(open_session: Opener, size: int, child: bool) -> tuple[float, float]:
    async def write(session: SftpSession) -> None:
        assert await session.write("big.bin", _blocks(size, 1 << 20)) == size

    async def read(session: SftpSession) -> None:
        got = 0
        async for piece in session.read("big.bin"):
            got += len(piece)
        assert got == size

    async def remove(session: SftpSession) -> None:
        await session.remove("big.bin")

    up = await _timed(open_session, write, child)
    down = await _timed(open_session, read, child)
    await _timed(open_session, remove, child)
    return up, down


async def _main(args: argparse.Namespace) -> None:
    size = args.size_mib << 20
    with tempfile.TemporaryDirectory() as tmp:
        os.chmod(tmp, 0o711)  # the server's account must traverse it
        await _measure(args, size, Path(tmp))


async def _measure(args: argparse.Namespace, size: int, tmp: Path) -> None:
    with start_sshd(tmp) as server:
        url = f"sftp://{server.user}@{server.host}:{server.port}{server.root}"
        variants = args.variants.split(",")
        stores, openers = [], {}
        for variant in variants:
            if variant == "openssh":
                assert server.known_hosts is not None and server.client_key is not None
                openers[variant] = functools.partial(
                    open_openssh_session, host=server.host, port=server.port,
                    user=server.user, key=server.client_key,
                    known_hosts=server.known_hosts, root=str(server.root))
                continue
            if variant not in ("lean", "copying", "stock"):
                raise SystemExit(
                    f"unknown variant {variant!r} (lean, copying, stock, openssh)")
            store = SftpStore(parse_endpoint(url), known_hosts=server.known_hosts,
                              client_keys=[server.client_key])
            store._lean = variant != "stock"
            store._fast_channel = variant == "lean"
            stores.append(store)
            openers[variant] = store.connect
        try:
            ups: dict[str, list[float]] = {v: [] for v in variants}
            downs: dict[str, list[float]] = {v: [] for v in variants}
            for round_ in range(args.rounds):
                for variant in variants if round_ % 2 == 0 else variants[::-1]:
                    up, down = await _round(openers[variant], size, variant == "openssh")
                    ups[variant].append(up / (size / 1e9))
                    downs[variant].append(down / (size / 1e9))
                    print(f"round {round_} {variant}: write {ups[variant][-1]:.2f} s/GB, "
                          f"read {downs[variant][-1]:.2f} s/GB", flush=True)
            for variant in variants:
                print(f"{variant} median: write {statistics.median(ups[variant]):.2f} s/GB, "
                      f"read {statistics.median(downs[variant]):.2f} s/GB")
            if len(variants) == 2:
                first, second = variants
                for label, runs in (("write", ups), ("read", downs)):
                    wins = sum(a < b for a, b in zip(runs[first], runs[second], strict=True))
                    print(f"{label}: {first} lower in {wins} of {args.rounds} rounds")
            if args.cprofile:
                profiler = cProfile.Profile()
                profiler.enable()
                await _round(openers[variants[0]], size, variants[0] == "openssh")
                profiler.disable()
                pstats.Stats(profiler).sort_stats("tottime").print_stats(args.cprofile)
        finally:
            for store in stores:
                await store.aclose()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--size-mib", type=int, default=256)
    parser.add_argument("--cprofile", type=int, default=0)
    parser.add_argument("--variants", default="lean",
                        help="lean (as shipped), copying (lean without fast_send.py, "
                             "fast_recv.py), stock (plain asyncssh), openssh (ssh child), "
                             "comma-separated")
    asyncio.run(_main(parser.parse_args()))


if __name__ == "__main__":
    main()
