"""Resume: what an earlier, interrupted attempt left that this one may keep.

The journal row must match the source's size and mtime, else the file restarts and the
summary says why. Then, by destination kind:

* parallel-write destinations (local, SFTP): every acked block is kept; the missing
  blocks are read and sent again while the kept ones are read back (a kept block that
  differs stops the attempt: ``DestinationChangedError``, the file restarts). A block
  partly acknowledged keeps its acknowledged head when it equals the source's.
* stream destinations (FTP): the partial file is contiguous; its size says what
  arrived. With ``OffsetWrites.ANY`` (REST+STOR seeks) the transfer restarts at the
  last block boundary at or below that size whose blocks are all in the journal.
  With ``APPEND`` it appends exactly at the partial size, after comparing the tail of
  the partial block on both sides. With ``NONE`` the file restarts.

**Every kept block is read back** and its digest compared with the journal's; one that
differs (or cannot be read whole) restarts the file. (On FTP before the transfer goes
on: vsftpd makes a RETR of a file wait while a STOR of it runs.) The journal records what the
destination *acknowledged*, which is not what it still holds after a crash: a server
whose machine lost power drops writes it had acknowledged from its page cache, and
anything may have written to a partial file between two runs. Checking only the last
kept block (as fsmove did until session 31) let such a file be completed around the
damage and reported copied: a byte changed in the first block of a killed 64 MiB copy
came out "Copy ok" and `verify` found the file different (tests/test_resume.py). The
reading costs the kept part once, from the destination, read in ``READ_BACK_LANES``
ranges at once; it sends nothing, so what a resume *re-sends* is unchanged. Within one
run, blocks this run wrote or already read back are not read again by a retry
(``FileTransfer.checked_blocks``): the server that acknowledged them has not been seen
to lose anything, and a link that drops every few seconds must still get through.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

import xxhash

from fsmove.verify.digest import BLOCK_SIZE, block_count

from ..backend import BackendError, Entry, NotFoundError, OffsetWrites
from ..journal import Journal
from ..pool import SessionPool
from ..survey import OnSides, Sides
from ..together import run_together
from ..tree import source_time_unchanged
from .transfer import FileTransfer

#: The journal's blocks of a file: index -> (digest, acknowledged by the destination).
JournalBlocks = dict[int, tuple[bytes, bool]]

#: A resumed file's kept blocks are read back in this many ranges at once (each one
#: session of the destination's pool, one read stream).
READ_BACK_LANES = 4


@dataclass
class Segment:
    """A block-aligned range of a file moved by one reader and one writer."""

    start: int
    end: int
    #: Bytes before this were acknowledged by an earlier run: read (to hash), not sent.
    send_from: int = -1

    def __post_init__(self) -> None:
        if self.send_from < 0:
            self.send_from = self.start


@dataclass
class BlockwiseStart:
    """Where a parallel-write copy starts: the blocks kept, the acknowledged heads of
    partly sent blocks, and the partial file at the destination (None: start afresh)."""

    done: dict[int, bytes]
    partials: dict[int, int]
    present: Entry | None


@dataclass(kw_only=True)
class Resume(OnSides):
    """Decides, per file, where an attempt starts (reading back what it must check)."""

    src: SessionPool
    dst: SessionPool
    journal: Journal | None
    #: Both sides' capabilities (the destination's may still be early ones: a file is
    #: resumed only once they are final, ``Attempts.copy``).
    sides: Sides
    #: Records that a file starts over, and why (the engine's ``_restart``).
    restart: Callable[[Entry, str], None]
    #: ``--trust-partial``: only the last kept block is read back (at the destination),
    #: as before session 31; no kept block is read again from the source.
    trust_partial: bool = False

    def may_resume(self, transfer: FileTransfer) -> bool:
        """Whether an earlier attempt may have left something to keep: a partial file
        at the destination, or blocks or a partial block in the journal (how to keep
        it depends on the destination's final capabilities)."""
        if transfer.partial_at_destination:
            return True
        if self.journal is None:
            return False
        found = self.journal.get_with_progress(transfer.entry.path)
        return found is not None and bool(found[1])

    def journal_blocks(self, transfer: FileTransfer) -> JournalBlocks | None:
        """Journal blocks of an earlier, interrupted attempt that still apply ({} if it
        left only a partly acknowledged block), or None when there is nothing to resume."""
        if self.journal is None:
            return None
        entry = transfer.entry
        found = self.journal.get_with_progress(entry.path)
        if found is None:
            return None
        rec, progress = found
        if rec.state not in ("partial", "failed", "pending"):
            return None
        # One query for a fresh file (no blocks, no partial block): the common case.
        blocks = self.journal.blocks(entry.path) if progress else {}
        if not progress:
            # Nothing journaled (FTP acknowledges nothing before the end of a file, and a
            # file under one block records no digest): a stream destination may still
            # hold a partial file whose tail is checked against the source.
            stream = not (self.dst_caps.parallel_writes
                          and self.dst_caps.offset_writes is OffsetWrites.ANY)
            if not (stream and transfer.partial_at_destination):
                return None
        if rec.size != entry.size or not (
            rec.mtime == entry.mtime
            or source_time_unchanged(rec.mtime, entry.mtime,
                                     resolution=self.src_caps.mtime_resolution)
        ):
            self.restart(entry, "source changed since the interrupted run: copied again in full")
            return None
        return blocks

    # -- parallel-write destinations (local, SFTP) --------------------------------------
    async def blockwise_start(self, transfer: FileTransfer,
                              journal_blocks: JournalBlocks | None) -> BlockwiseStart:
        entry, target = transfer.entry, transfer.target
        size = entry.size
        nblocks = block_count(size)
        resumable = journal_blocks is not None and self.journal is not None
        journal_blocks = journal_blocks or {}
        done = {i: d for i, (d, acked) in journal_blocks.items() if acked and i < nblocks}
        partials = self.journal.partials(entry.path) if resumable and self.journal else {}
        present: Entry | None = None
        if done or partials:
            try:
                async with self.dst.session() as s:
                    present = await s.stat(target)
            except NotFoundError:
                present = None
            if present is None:
                # (The kept blocks are read back while the missing ones are sent:
                # ``Attempts._copy_blockwise``.)
                self.restart(entry, "partial file missing at the destination: copied "
                             "again in full")
                transfer.checked_blocks.clear()
                done, partials, present = {}, {}, None
        return BlockwiseStart(done, partials, present)

    async def skip_acknowledged(self, transfer: FileTransfer, segments: list[Segment],
                                start: BlockwiseStart) -> int:
        """Let each segment skip the acknowledged head of its first block where the
        destination's bytes equal the source's; return an estimate of the bytes the
        destination already held that are sent again: per segment, up to the end of its
        first block (what an earlier run sent there unacknowledged: a segment's writes
        in flight are well under a block). Counted to the partial file's end, as before
        session 32, it took the holes between parallel segments for bytes held (146 MB
        "re-sent" in the resume cell where the benchmark measured 8 MB)."""
        present = start.present
        if present is None:
            return 0
        for seg in segments:
            idx = seg.start // BLOCK_SIZE
            p = start.partials.get(idx, 0)
            if 0 < p < seg.end - seg.start and seg.start + p <= present.size:
                if await self.tails_match(transfer, seg.start, seg.start + p):
                    seg.send_from = seg.start + p
        return sum(max(0, min(seg.end, present.size,
                              (seg.send_from // BLOCK_SIZE + 1) * BLOCK_SIZE) - seg.send_from)
                   for seg in segments)

    # -- stream destinations (FTP) -------------------------------------------------------
    async def stream_point(
        self, transfer: FileTransfer, journal_blocks: JournalBlocks, mode: OffsetWrites,
    ) -> tuple[int, int, dict[int, bytes]]:
        """(resume_at, read_from, known block digests before read_from) for a stream
        destination, or (0, 0, {}) after recording a restart.

        A stream destination holds a contiguous prefix of the file (one STOR, in
        order), so its size says what arrived. fsmove continues exactly there (REST+STOR
        where the server seeks, APPE where it only appends) after checking the last
        whole block against the journal and the partial block against the source."""
        entry, target = transfer.entry, transfer.target

        def restart(why: str) -> tuple[int, int, dict[int, bytes]]:
            self.restart(entry, f"{why}: copied again in full")
            transfer.checked_blocks.clear()
            return 0, 0, {}

        if mode is OffsetWrites.NONE:
            return restart("the destination cannot resume a partial file")
        try:
            async with self.dst.session() as s:
                present = await s.stat(target)
        except NotFoundError:
            if not journal_blocks:
                return 0, 0, {}  # nothing had arrived: a plain start, not a restart
            return restart("partial file missing at the destination")
        have = present.size
        if have == 0 and not journal_blocks:
            return 0, 0, {}
        if have > entry.size:
            return restart("partial file at the destination is larger than the source")
        known = {i: d for i, (d, _a) in journal_blocks.items()}
        tail_block = have // BLOCK_SIZE
        if any(i not in known for i in range(tail_block)):
            return restart("journal lacks digests for the partial file")
        kept = {i: known[i] for i in range(tail_block)}
        differs = await self.kept_blocks_differ(transfer, kept)
        if differs is not None:
            return restart(differs)
        read_from = tail_block * BLOCK_SIZE
        if have > read_from and not await self.tails_match(transfer, read_from, have):
            return restart("partial block at the destination differs from the source")
        return have, read_from, kept

    # -- reading back ----------------------------------------------------------------------
    async def kept_blocks_differ(self, transfer: FileTransfer,
                                 kept: dict[int, bytes]) -> str | None:
        """None when the blocks of ``kept`` (index -> the journal's digest of the
        source's block) are still what the journal says on both sides; else why not.

        The destination: each block this run did not write or check already (and the
        last kept block always) is read back whole and digested. The source: each
        block this run has not read is read again, for a file rewritten between two
        runs at the same size with its time put back (a restore, ``touch -r``, a
        tool that keeps times) would otherwise be completed with the old bytes at its
        head: a file that never existed, recorded under the digest of what was sent.
        Both sides' contiguous runs are read in up to ``READ_BACK_LANES`` ranges each,
        all at once; reading sends nothing."""
        if not kept:
            return None
        # The last kept block is read back whatever this run knows of it (one block: the
        # cheap check fsmove always made, against a partial file changed under it).
        if self.trust_partial:
            at_dst, at_src = [max(kept)], []
        else:
            at_dst = sorted((set(kept) - transfer.checked_blocks) | {max(kept)})
            at_src = sorted(set(kept) - transfer.checked_blocks)
        entry = transfer.entry
        dst_ranges = _read_back_ranges(at_dst, READ_BACK_LANES)
        if self.src_caps.ranged_read:
            src_ranges = _read_back_ranges(at_src, READ_BACK_LANES)
        else:  # a source that reads from the first byte only: one stream from there
            src_ranges = [(0, at_src[-1] + 1)] if at_src else []
        found = await run_together([
            *(_block_digests(self.dst, transfer.target, first, end, entry.size)
              for first, end in dst_ranges),
            *(_block_digests(self.src, entry.path, first, end, entry.size)
              for first, end in src_ranges),
        ])
        for (first, end), digests in zip(src_ranges, found[len(dst_ranges):], strict=True):
            if digests is None or any(digests[i - first] != kept[i]
                                      for i in range(first, end) if i in kept):
                return ("source changed since the interrupted run (other bytes in the "
                        "part already sent, same size and time)")
        for (first, end), digests in zip(dst_ranges, found, strict=False):
            if digests is None or digests != [kept[i] for i in range(first, end)]:
                return "partial file at the destination does not match the journal"
        transfer.checked_blocks.update(at_dst)
        return None

    async def tails_match(self, transfer: FileTransfer, start: int, end: int) -> bool:
        """Whether the destination's bytes [start, end) equal the source's."""
        if end <= start:
            return True
        # Together: a retryable failure of one side's read stops the other's.
        a, b = await run_together([
            _range_digest(self.src, transfer.entry.path, start, end),
            _range_digest(self.dst, transfer.target, start, end),
        ])
        return a is not None and a == b


def _read_back_ranges(indices: list[int], lanes: int) -> list[tuple[int, int]]:
    """Sorted block indices as [first, end) ranges of consecutive blocks, the longest
    cut until there are ``lanes`` ranges (or every range is one block)."""
    ranges: list[tuple[int, int]] = []
    if not indices:
        return ranges
    for i in indices:
        if ranges and ranges[-1][1] == i:
            ranges[-1] = (ranges[-1][0], i + 1)
        else:
            ranges.append((i, i + 1))
    while len(ranges) < lanes:
        first, end = max(ranges, key=lambda r: r[1] - r[0])
        if end - first < 2:
            break
        ranges.remove((first, end))
        middle = (first + end) // 2
        ranges += [(first, middle), (middle, end)]
    return sorted(ranges)


async def _block_digests(pool: SessionPool, path: str, first: int, end: int,
                         size: int) -> list[bytes] | None:
    """XXH3-128 of each block ``first`` .. ``end - 1`` of ``path`` (the last block of
    the file may be short: ``size`` ends it), read in one stream; None when they cannot
    all be read."""
    return await _piece_digests(pool, path, first * BLOCK_SIZE, min(end * BLOCK_SIZE, size),
                                BLOCK_SIZE)


async def _range_digest(pool: SessionPool, path: str, start: int, end: int) -> bytes | None:
    """XXH3-128 of bytes [start, end) of ``path`` (``end > start``), or None when they
    cannot all be read (for a whole block, this is the block digest of
    verify/digest.py)."""
    digests = await _piece_digests(pool, path, start, end, max(1, end - start))
    if digests is None:
        return None
    return digests[0] if digests else xxhash.xxh3_128().digest()  # an empty range


async def _piece_digests(pool: SessionPool, path: str, start: int, stop: int,
                         step: int) -> list[bytes] | None:
    """XXH3-128 of each ``step`` bytes of ``path`` from ``start`` to ``stop`` (the last
    piece may be shorter), read in one stream; None when they cannot all be read.

    An error that a retry may cure (a timeout, a lost connection) is raised, not
    answered None: None means "does not match", and the file would be copied again
    in full under a false reason. Seen on vsftpd: a session of a client killed between
    its STOR and the data connection holds the partial file's write lock until
    ``accept_timeout`` (60 s by default), and a RETR of that file waits for it; the
    read timed out and the file was restarted as "partial block at the destination
    differs from the source" (tests/test_resume.py). Raised, the attempt is retried as
    any other (the job's ``--retries``), and resumes once the lock is gone."""
    digests: list[bytes] = []
    h = xxhash.xxh3_128()
    pos, boundary = start, min(start + step, stop)
    try:
        async with pool.session() as s:
            stream = s.read(path, offset=start, length=stop - start)
            try:
                async for piece in stream:
                    view = memoryview(piece)[: stop - pos]
                    while len(view):
                        n = min(len(view), boundary - pos)
                        h.update(view[:n])
                        view, pos = view[n:], pos + n
                        if pos == boundary:
                            digests.append(h.digest())
                            h = xxhash.xxh3_128()
                            boundary = min(boundary + step, stop)
                    if pos >= stop:
                        break
            finally:
                await stream.aclose()  # type: ignore[attr-defined]
    except BackendError as exc:
        if exc.retryable:
            raise
        return None
    return digests if pos >= stop else None
