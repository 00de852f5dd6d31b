"""A finished file reaches the journal within a bounded time even when nothing else is
written afterwards (issue 16: the demo froze because done marks waited for the next
write). The check reads the journal from another connection, as ``fsmove status`` and a
process that kills the copy do, polling with a bounded loop (no sleep-and-hope)."""

from __future__ import annotations

import asyncio
from pathlib import Path

from fsmove.transfers.jobs import read_status
from fsmove.transfers.journal import Journal


def test_a_done_mark_is_committed_without_a_further_write(tmp_path: Path) -> None:
    path = tmp_path / "job.db"

    async def copy_one_file_then_stall() -> int:
        with Journal(path, src="ftp://a/", dst="ftp://b/") as journal:
            journal.start_run()
            journal.plan([("a.txt", 5, 1.0, "pending"), ("b.txt", 5, 1.0, "pending")])
            journal.mark_done("a.txt", digest="d", algorithm="x", size=5, mtime=1.0)
            # The copy now stalls (a frozen server): the loop runs, nothing is written.
            for polls in range(1, 400):
                if read_status(path).counts.get("done", 0) == 1:
                    return polls
                await asyncio.sleep(0.05)
            raise AssertionError("the done mark never reached the journal")

    assert asyncio.run(copy_one_file_then_stall()) >= 1


def test_a_file_s_progress_is_what_its_acknowledged_blocks_hold(tmp_path: Path) -> None:
    """Parallel segments acknowledge blocks far apart: the progress `fsmove status` shows
    is their sum, not the end of the furthest one (before session 32 a killed copy
    showed 51 % done with 12 % acknowledged)."""
    from fsmove.verify.digest import BLOCK_SIZE

    size = 12 * BLOCK_SIZE
    with Journal(tmp_path / "job.db", src="s", dst="d") as j:
        j.plan([("big.bin", size, 1.0, "pending")])
        j.record_block("big.bin", 0, b"0" * 16, acked=True, bytes_done=BLOCK_SIZE)
        j.record_block("big.bin", 9, b"9" * 16, acked=True, bytes_done=10 * BLOCK_SIZE)
        j.record_partial("big.bin", 6, 1000)
    assert read_status(tmp_path / "job.db").bytes_done == 2 * BLOCK_SIZE + 1000
