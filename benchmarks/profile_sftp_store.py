"""The SFTP backend alone: client CPU per GB of ``SftpStore.read`` / ``write`` of one
large file at RTT 0, without the copy engine (no journal, no hashing, no local disk).

    python -m benchmarks.profile_sftp_store [--rounds 3] [--size-mib 256] [--cprofile N]
        [--variants lean,stock]

Measures ``resource.getrusage(RUSAGE_SELF)`` user + system around each transfer, in
this process, against the real sshd fixture. ``--variants lean,stock`` compares the
store as shipped (``lean``: asyncssh without its per-packet IGNORE and log formatting,
``transfers/sftp/lean.py``) with plain asyncssh (``stock``), in alternating order round
after round, and counts the rounds each won. ``--cprofile N`` prints the N most
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
        variants = args.variants.split(",")
        stores = {}
        for variant in variants:
            if variant not in ("lean", "stock"):
                raise SystemExit(f"unknown variant {variant!r} (lean, stock)")
            store = SftpStore(parse_endpoint(url), known_hosts=server.known_hosts,
                              client_keys=[server.client_key])
            store._lean = variant == "lean"
            stores[variant] = store
        try:
            ups: dict[str, list[float]] = {v: [] for v in variants}
            downs: dict[str, list[float]] = {v: [] for v in variants}
            for round_ in range(args.rounds):
                for variant in variants if round_ % 2 == 0 else variants[::-1]:
                    up, down = await _round(stores[variant], size)
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
                await _round(stores[variants[0]], size)
                profiler.disable()
                pstats.Stats(profiler).sort_stats("tottime").print_stats(args.cprofile)
        finally:
            for store in stores.values():
                await store.aclose()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--size-mib", type=int, default=256)
    parser.add_argument("--cprofile", type=int, default=0)
    parser.add_argument("--variants", default="lean",
                        help="lean (as shipped), stock (plain asyncssh), or both: lean,stock")
    asyncio.run(_main(parser.parse_args()))


if __name__ == "__main__":
    main()
