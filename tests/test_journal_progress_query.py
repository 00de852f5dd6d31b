"""``Journal.get_with_progress``: the one query that decides whether a file has anything
to resume (its record, and whether any block or partly acknowledged block is recorded).
The engine asks it for every file before copying, so it must agree with ``blocks`` and
``partials`` in every state a file can be in."""

from __future__ import annotations

from pathlib import Path

from fsmove.transfers.journal import Journal


def test_progress_follows_blocks_and_partials(tmp_path: Path) -> None:
    with Journal(tmp_path / "job.db", src="ftp://a/", dst="ftp://b/") as journal:
        journal.start_run()
        journal.plan([("fresh.bin", 10, 1.0, "pending"), ("other.bin", 10, 1.0, "pending")])
        assert journal.get_with_progress("missing.bin") is None

        found = journal.get_with_progress("fresh.bin")
        assert found is not None
        record, progress = found
        assert (record.path, record.size, record.state, progress) == (
            "fresh.bin", 10, "pending", False)

        journal.record_partial("fresh.bin", 0, 4)
        assert journal.get_with_progress("fresh.bin") == (journal.get("fresh.bin"), True)

        journal.record_block("fresh.bin", 0, b"d" * 16, acked=True, bytes_done=10)
        assert journal.partials("fresh.bin") == {}  # the whole block replaced it
        assert journal.get_with_progress("fresh.bin") == (journal.get("fresh.bin"), True)
        # Another file's blocks never count for this one.
        other = journal.get_with_progress("other.bin")
        assert other is not None and other[1] is False

        journal.mark_done("fresh.bin", digest="x", algorithm="y", size=10, mtime=1.0)
        done = journal.get_with_progress("fresh.bin")
        assert done is not None
        assert (done[0].state, done[1]) == ("done", False)

        journal.record_block("other.bin", 0, b"e" * 16, acked=False, bytes_done=10)
        journal.restart("other.bin", size=10, mtime=2.0, note="source changed")
        restarted = journal.get_with_progress("other.bin")
        assert restarted is not None and restarted[1] is False
