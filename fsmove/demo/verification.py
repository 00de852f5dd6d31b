"""The demo's verification: read every file of both buckets over FTP, compare digests,
show the bytes read on the same live display as a copy (on a terminal only)."""

from __future__ import annotations

import asyncio
import sys

from fsmove import event_loop
from fsmove.endpoint_access import ConnectOptions, open_store
from fsmove.live_display import LiveDisplay, copy_frame
from fsmove.output import is_terminal
from fsmove.progress import CopyProgress
from fsmove.transfers.events import BytesMoved, Planned
from fsmove.transfers.policy import Limits
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
    progress = CopyProgress()
    progress.update(Planned(files_total=0, bytes_total=2 * expected_bytes, files_to_copy=0,
                            bytes_to_copy=2 * expected_bytes, files_skipped=0,
                            bytes_skipped=0, dirs_to_create=0, files_to_delete=0))
    display = LiveDisplay(sys.stderr, copy_frame(progress, title="Reading both buckets:")) \
        if is_terminal(sys.stderr) else None
    if display is not None:
        display.start()

    def on_progress(event: ProgressEvent) -> None:
        if isinstance(event, BytesHashed):
            progress.update(BytesMoved(path="", n=event.nbytes))
            if display is not None:
                display.refresh_at_most_every(0.25)

    try:
        return await verify_trees(
            src=src, dst=dst, tier=Tier.FULL, limits=Limits(files_verified_at_once=SESSIONS),
            on_progress=on_progress, keep_identical=True,
        )
    finally:
        if display is not None:
            display.stop()
        await asyncio.gather(src.aclose(), dst.aclose(), return_exceptions=True)


def verify_buckets(buckets: DemoBuckets, *, expected_bytes: int) -> Verification:
    """A full verification (every byte read on both sides) of the new bucket against
    the old one."""
    return event_loop.run(_verify(buckets, expected_bytes=expected_bytes))
