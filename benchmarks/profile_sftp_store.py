"""The SFTP backend alone: client CPU per GB of ``SftpStore.read`` / ``write`` of one
large file at RTT 0, without the copy engine (no journal, no hashing, no local disk).

    python -m benchmarks.profile_sftp_store [--rounds 3] [--size-mib 256] [--cprofile N]

Measures ``resource.getrusage(RUSAGE_SELF)`` user + system around each transfer, in
this process, against the real sshd fixture; ``--cprofile N`` prints the N most
expensive functions of one extra read and one extra write. The floor it shows is what
the backend costs per byte; the engine's hashing and file I/O come on top.
"""

from __future__ import annotations

import argparse
import asyncio
import cProfile
import os
import pstats
import resource
import statistics
import tempfile
from collections.abc import AsyncIterator
from pathlib import Path

from fsmove.transfers.endpoint import parse_endpoint
from fsmove.transfers.sftp import SftpStore
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


async def _round(store: SftpStore, size: int) -> tuple[float, float]:
    session = await store.connect()
    try:
        before = _cpu()
        written = await session.write("big.bin", _blocks(size, 1 << 20))
        up = _cpu() - before
        assert written == size
        before = _cpu()
        got = 0
        async for piece in session.read("big.bin"):
            got += len(piece)
        down = _cpu() - before
        assert got == size
        await session.remove("big.bin")
    finally:
        await session.close()
    return up, down


async def _main(args: argparse.Namespace) -> None:
    size = args.size_mib << 20
    with tempfile.TemporaryDirectory() as tmp:
        os.chmod(tmp, 0o711)  # the server's account must traverse it
        await _measure(args, size, Path(tmp))


async def _measure(args: argparse.Namespace, size: int, tmp: Path) -> None:
    with start_sshd(tmp) as server:
        url = f"sftp://{server.user}@{server.host}:{server.port}{server.root}"
        store = SftpStore(parse_endpoint(url), known_hosts=server.known_hosts,
                          client_keys=[server.client_key])
        try:
            ups, downs = [], []
            for _ in range(args.rounds):
                up, down = await _round(store, size)
                ups.append(up / (size / 1e9))
                downs.append(down / (size / 1e9))
                print(f"write {ups[-1]:.2f} s/GB, read {downs[-1]:.2f} s/GB", flush=True)
            print(f"median: write {statistics.median(ups):.2f} s/GB, "
                  f"read {statistics.median(downs):.2f} s/GB")
            if args.cprofile:
                profiler = cProfile.Profile()
                profiler.enable()
                await _round(store, size)
                profiler.disable()
                pstats.Stats(profiler).sort_stats("tottime").print_stats(args.cprofile)
        finally:
            await store.aclose()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--size-mib", type=int, default=256)
    parser.add_argument("--cprofile", type=int, default=0)
    asyncio.run(_main(parser.parse_args()))


if __name__ == "__main__":
    main()
