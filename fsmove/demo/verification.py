"""The demo's verification: read every file of both buckets over FTP, compare digests,
show a byte bar while it reads."""

from __future__ import annotations

import asyncio
import sys

from tqdm import tqdm

from fsmove.endpoints import ConnectOptions, open_store
from fsmove.transfers.pool import SessionPool
from fsmove.verify.verifier import BytesHashed, ProgressEvent, Tier, Verification, verify_trees

from .servers import DemoBuckets

#: Sessions per bucket while verifying (files compared at once).
SESSIONS = 4


async def _verify(buckets: DemoBuckets, *, expected_bytes: int) -> Verification:
    connect = ConnectOptions()
    # Verify only reads: neither bucket gets even a capability probe written to it.
    src = SessionPool(open_store(buckets.old.endpoint(), connect, writable=False),
                      max_sessions=SESSIONS)
    dst = SessionPool(open_store(buckets.new.endpoint(), connect, writable=False),
                      max_sessions=SESSIONS)
    bar = tqdm(total=2 * expected_bytes, unit="B", unit_scale=True, unit_divisor=1024,
               file=sys.stderr, desc="reading both buckets", dynamic_ncols=True,
               mininterval=0.2)

    def on_progress(event: ProgressEvent) -> None:
        if isinstance(event, BytesHashed):
            bar.update(event.nbytes)

    try:
        return await verify_trees(
            src=src, dst=dst, tier=Tier.FULL, concurrency=SESSIONS,
            on_progress=on_progress, keep_identical=True,
        )
    finally:
        bar.close()
        await asyncio.gather(src.aclose(), dst.aclose(), return_exceptions=True)


def verify_buckets(buckets: DemoBuckets, *, expected_bytes: int) -> Verification:
    """A full verification (every byte read on both sides) of the new bucket against
    the old one."""
    return asyncio.run(_verify(buckets, expected_bytes=expected_bytes))
