"""One attempt at one file: resume what can be kept, move the bytes, place the file.

* The file is written under a temporary name (``tree.TempNames``) and renamed into
  place only once every byte is acknowledged and its digest is known, so nothing at a
  final name ever looks complete when it is not. (A store that cannot rename gets the
  final name directly and only the journal says when it is complete.)
* Bytes are hashed while they stream (``verify.digest.BlockHasher``: XXH3-128 per 4 MiB
  block). Block digests go to the journal as blocks complete: ``acked=1`` once the
  destination acknowledged the block (SFTP replies, local pwrite), ``acked=0`` while
  only sent (FTP acknowledges nothing before its final 226).
* A big file is cut into segments moved in parallel when the source can read ranges
  and the destination can write ranges in parallel (local, SFTP). Otherwise it is one
  stream (FTP destinations: FACTS.md shows parallel ranged STOR corrupts or serialises).
  The segments of one attempt live and die together (``transfers/together.py``): a
  retry reopens the file only once every writer of the failed attempt has returned.
* While the destination's write probe runs (FTP, ``survey.py``), a new file is written
  under its temporary name all the same; placing it waits for the probe's answers
  (whether rename replaces, how to set an mtime), and so does a file with something
  to resume. A server the probe then finds cannot rename gets such a file written
  again under its own name.
* Once every byte of a file was read (whatever its size), the source is stat'ed again
  (``pipe.SourceReader``); ``--checksum`` also re-reads it before the rename.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections import deque
from collections.abc import AsyncIterator, Callable
from dataclasses import dataclass

from fsmove.verify.digest import BLOCK_SIZE, BlockHasher, block_count, combine

from ..backend import (
    AttributesNotKeptError,
    BackendError,
    NotFoundError,
    OffsetWrites,
    PlacesInBackground,
    hides_from_others,
    parent_of,
    placed_mode,
)
from ..events import Event, FileStarted, ModeNotKept, TimeNotKept
from ..journal import Journal
from ..policy import Limits
from ..pool import SessionPool
from ..survey import OnSides, Sides
from ..together import run_together
from .folders import DestinationFolders
from .options import CopyOptions
from .pipe import Pipe, SourceReader, empty
from .resume import JournalBlocks, Resume, Segment
from .stats import RunStats
from .transfer import DestinationChangedError, FileTransfer


@dataclass(frozen=True)
class Placed:
    """A file copied and placed at its final name."""

    digest: str
    resumed_from: int
    #: The mtime the destination was given and took (None: not set, or refused).
    dst_mtime: float | None = None


@dataclass(kw_only=True)
class Attempts(OnSides):
    """Runs attempts at files, for one job once both sides are surveyed."""

    dst: SessionPool
    journal: Journal | None
    options: CopyOptions
    limits: Limits
    #: Both sides' capabilities; the destination's may be early ones while its write
    #: probe runs (FTP): a new file is written under its temporary name meanwhile, and
    #: waits for the probe's answers only to be placed (or, with something to resume,
    #: before it starts).
    sides: Sides
    #: Stream slots (``Limits.streams_at_once``): a file's extra segments borrow idle ones.
    streams: asyncio.Semaphore
    folders: DestinationFolders
    reader: SourceReader
    resume: Resume
    stats: RunStats
    emit: Callable[[Event], None]

    async def copy(self, transfer: FileTransfer) -> Placed:
        entry = transfer.entry
        if self.sides.dst_failure is not None:
            raise self.sides.dst_failure  # no byte sent to a file that cannot be placed
        await self.folders.ensure(parent_of(entry.path))
        if not self.sides.dst_settled and self.resume.may_resume(transfer):
            # How to keep a partial file depends on how the server writes at an offset.
            await self.sides.final_dst_caps()
        caps = self.dst_caps  # how to write: the early ones say it as the final will
        blocks = self.resume.journal_blocks(transfer)
        try:
            if caps.parallel_writes and caps.offset_writes is OffsetWrites.ANY:
                digests, resumed_from = await self._copy_blockwise(transfer, blocks)
            else:
                digests, resumed_from = await self._copy_stream(transfer, blocks)
        except BackendError as exc:
            # Refused under its temporary name while the probe ran, which then found
            # the server takes no temporary names (one refusing names that start with
            # a dot: pure-ftpd --prohibitdotfileswrite, vsftpd deny_file={.*}).
            if exc.retryable or transfer.target == entry.path \
                    or (await self.sides.final_dst_caps()).rename:
                raise
            return await self._in_place(transfer, "the destination refused its temporary "
                                        "name: written under its own name")
        digest = combine(digests, entry.size)
        if self.options.checksum:
            await self.reader.check_content(entry, digest)
        caps = await self.sides.final_dst_caps()  # how to place: the probe's answers
        target = transfer.target
        if target != entry.path and not caps.rename:
            # Written under a temporary name while the probe ran, which then found the
            # server cannot rename: written again under its own name (a rare server).
            return await self._in_place(transfer, "the destination cannot rename: "
                                        "written again under its own name")
        use_temp = target != entry.path
        set_mtime = self.options.preserve_mtime and caps.set_mtime and entry.mtime is not None
        given = entry.mtime if set_mtime else None
        placing = None
        # A big file's placing takes an idle session that owes no replies if there is
        # one: its own upload's session waits for the server to close the file
        # (pool.py ``settled``; ~0.25 s after 512 MiB on vsftpd over ext4).
        try:
            async with self.dst.session(settled=entry.size > BLOCK_SIZE) as s:
                if use_temp and not caps.rename_replaces:
                    with contextlib.suppress(NotFoundError):
                        await s.remove(entry.path)
                if use_temp:
                    mtime = entry.mtime if set_mtime else None
                    mode = placed_mode(entry.mode, keep=self.options.keep_perms)
                    if isinstance(s, PlacesInBackground):
                        # The session goes back to the pool with the replies on their
                        # way (FTP); the file counts as done only once they all said yes.
                        placing = await s.place_started(target, entry.path, mtime=mtime,
                                                        mode=mode, size=entry.size)
                    else:
                        await s.place(target, entry.path, mtime=mtime, mode=mode,
                                      size=entry.size)
                elif set_mtime:
                    assert entry.mtime is not None
                    await s.set_mtime(target, entry.mtime)
            if placing is not None:
                await placing()
        except AttributesNotKeptError as exc:
            # In place and complete, only its time or its mode is off: copied, and
            # said. (Failing it meant failing it again on every run: proftpd refuses a
            # time before 1970, SFTP cannot carry one, a server may refuse SETSTAT.)
            if not exc.time_kept:
                self.stats.times_not_kept.append((entry.path, str(exc)))
                self.emit(TimeNotKept(path=entry.path, reason=str(exc)))
                given = None
            if not exc.mode_kept:
                self.stats.modes_not_kept.append((entry.path, str(exc)))
                self.emit(ModeNotKept(path=entry.path, reason=str(exc)))
        return Placed(digest=digest, resumed_from=resumed_from, dst_mtime=given)

    async def _in_place(self, transfer: FileTransfer, why: str) -> Placed:
        """Write ``transfer`` again under its own name (the probe found the destination
        takes no temporary names), its temporary file removed if it was made."""
        entry, target = transfer.entry, transfer.target
        async with self.dst.session() as s:
            with contextlib.suppress(BackendError):
                await s.remove(target)
        transfer.target, transfer.partial_at_destination = entry.path, False
        self.resume.restart(entry, why)
        return await self.copy(transfer)

    # -- parallel-write destinations (local, SFTP) --------------------------------------
    async def _copy_blockwise(
        self, transfer: FileTransfer, journal_blocks: JournalBlocks | None
    ) -> tuple[list[bytes], int]:
        entry, target = transfer.entry, transfer.target
        size = entry.size
        nblocks = block_count(size)
        start = await self.resume.blockwise_start(transfer, journal_blocks)
        present = start.present
        missing = [i for i in range(nblocks) if i not in start.done]
        segments = self._segments(missing, size)
        self.stats.bytes_resent += await self.resume.skip_acknowledged(
            transfer, segments, start)
        resumed_from = (
            (min(seg.send_from for seg in segments) if segments else size)
            if present is not None else 0
        )
        self.emit(FileStarted(path=entry.path, size=size, resume_from=resumed_from,
                               segments=len(segments)))
        if present is None:
            # Create (truncate) the temp file; for a one-block file, write it whole.
            if nblocks <= 1:
                transfer.begin_attempt(reads=1)
                digests = await self._move_range(transfer, Segment(0, size), create=True)
                return digests, 0
            async with self.dst.session() as s:
                await s.write(target, empty(), create=True)
        digests = dict(start.done)
        transfer.begin_attempt(reads=len(segments))
        lanes = await self._extra_lanes(len(segments))
        queue = deque(segments)

        async def check_kept() -> None:
            """The blocks an earlier run left, read back (both sides) while the missing
            ones go."""
            differs = await self.resume.kept_blocks_differ(transfer, start.done)
            if differs is not None:
                raise DestinationChangedError(
                    f"{entry.path}: {differs} (a kept block differs): copied again in full",
                    path=entry.path)

        async def lane() -> None:
            while queue:
                seg = queue.popleft()
                got = await self._move_range(transfer, seg, create=False)
                for k, d in enumerate(got):
                    digests[seg.start // BLOCK_SIZE + k] = d

        try:
            # One segment failing stops the others, and the retry waits until none of
            # them can write any more (transfer.py).
            await run_together([*(lane() for _ in range(1 + lanes)), check_kept()])
        finally:
            for _ in range(lanes):
                self.streams.release()
        async with self.dst.session() as s:
            placed = await s.stat(target)
        if placed.size != size:
            # Never expected (every writer of this attempt has ended): another writer,
            # or a store that lost bytes. The file starts over rather than be placed.
            raise DestinationChangedError(
                f"{entry.path}: the temporary file holds {placed.size} bytes, "
                f"expected {size}", path=entry.path)
        return [digests[i] for i in range(nblocks)], resumed_from

    def _segments(self, missing: list[int], size: int) -> list[Segment]:
        """Contiguous runs of missing blocks, cut into segments of at most segment_size
        (only when the source can read bounded ranges)."""
        runs: list[Segment] = []
        for i in missing:
            start, end = i * BLOCK_SIZE, min((i + 1) * BLOCK_SIZE, size)
            if runs and runs[-1].end == start:
                runs[-1].end = end
            else:
                runs.append(Segment(start, end))
        if not (self.src_caps.ranged_read and self.src_caps.bounded_read):
            return runs
        seg = max(BLOCK_SIZE, self.options.segment_size // BLOCK_SIZE * BLOCK_SIZE)
        if size >= self.options.segment_threshold:
            per = -(-size // self.limits.segments_per_file)
            seg = max(BLOCK_SIZE, min(seg, -(-per // BLOCK_SIZE) * BLOCK_SIZE))
        else:
            seg = max(seg, size)
        out: list[Segment] = []
        for r in runs:
            pos = r.start
            while pos < r.end:
                out.append(Segment(pos, min(pos + seg, r.end)))
                pos += seg
        return out

    async def _extra_lanes(self, wanted: int) -> int:
        """Borrow idle stream slots for more segments, without waiting for any (the
        file's own slot is its first lane), and never more than half of all the slots:
        another big file can always start beside this one."""
        got = 0
        half = max(1, self.limits.streams_at_once // 2)
        limit = min(wanted, self.limits.segments_per_file, half) - 1
        while got < limit and not self.streams.locked():
            await self.streams.acquire()
            got += 1
        return got

    async def _move_range(self, transfer: FileTransfer, seg: Segment, *,
                          create: bool) -> list[bytes]:
        """Stream source [seg.start, seg.end) through the hasher and send it from
        ``seg.send_from`` into the destination; return the digests of its blocks
        (``seg.start`` is block aligned). Blocks are journaled as acked when the
        destination acknowledges them (or when the write returns); the acknowledged
        part of an unfinished block is journaled too, so a resume re-sends only what
        was in flight."""
        entry = transfer.entry
        start, end, send_from = seg.start, seg.end, seg.send_from
        hasher = BlockHasher(start)
        journaled: set[int] = set()
        path = entry.path
        first = start // BLOCK_SIZE
        acked_upto = send_from
        # A file of one block is not journaled block by block: after a kill it is sent
        # again whole, at most one block (the bound on re-sent bytes per file in flight),
        # and recording it cost a synchronous journal commit per small file.
        journal = self.journal if entry.size > BLOCK_SIZE else None

        def journal_acked(upto: int) -> None:
            nonlocal acked_upto
            if upto <= acked_upto and upto != end:
                return
            acked_upto = max(acked_upto, upto)
            if journal is None:
                return
            for k, d in enumerate(hasher.digests):
                idx = first + k
                block_end = min((idx + 1) * BLOCK_SIZE, entry.size)
                if idx not in journaled and block_end <= acked_upto:
                    journaled.add(idx)
                    journal.record_block(path, idx, d, acked=True, bytes_done=block_end)
                    transfer.checked_blocks.add(idx)
            idx = acked_upto // BLOCK_SIZE
            within = acked_upto - idx * BLOCK_SIZE
            if within and acked_upto < end:
                journal.record_partial(path, idx, within)

        def acked(n: int) -> None:
            journal_acked(send_from + n)

        async with self.reader.open(transfer, start, end, hasher,
                                     send_from=send_from) as pieces:
            if self.dst_caps.ops_per_session > 1 and self.dst_caps.remote:
                await self._write_beside_source(transfer, pieces, offset=send_from,
                                                create=create, acked=acked,
                                                stream=end - start > BLOCK_SIZE)
            else:
                # A session carries one transfer (FTP): borrowed only once the source
                # has data, never held idle while the source opens its file. (A local
                # destination has no round trip to save: it opens after the source.)
                await pieces.first()
                async with self.dst.session() as s:
                    await s.write(transfer.target, pieces, offset=send_from, create=create,
                                  acked=acked)
        hasher.finish()
        journal_acked(end)
        return hasher.digests

    async def _write_beside_source(self, transfer: FileTransfer, pieces: Pipe, *,
                                   offset: int, create: bool, stream: bool,
                                   acked: Callable[[int], None]) -> None:
        """Write while the source opens its file: the destination's open goes out beside
        the source's (one round trip less per file over a WAN). Only where a session
        carries many requests at once (SFTP), so none is held from anyone.

        A source failure is not the destination session's: it stays in the pool (a
        lost SFTP session costs a login) and, when no byte had come yet, the empty
        temporary file made for the source is removed, not left behind."""
        failure: BaseException | None = None
        async with self.dst.session(stream=stream) as s:
            try:
                await s.write(transfer.target, pieces, offset=offset, create=create,
                              acked=acked)
            except Exception as exc:
                if exc is not pieces.flow.source_error:
                    raise
                failure = exc
                if create and not pieces.flow.delivered and transfer.target != transfer.path:
                    with contextlib.suppress(BackendError):
                        await s.remove(transfer.target)
        if failure is not None:
            raise failure

    # -- stream destinations (FTP) -------------------------------------------------------
    async def _copy_stream(
        self, transfer: FileTransfer, journal_blocks: JournalBlocks | None
    ) -> tuple[list[bytes], int]:
        entry = transfer.entry
        size = entry.size
        resume_at = 0
        read_from = 0
        known: dict[int, bytes] = {}
        if journal_blocks is not None:
            resume_at, read_from, known = await self.resume.stream_point(
                transfer, journal_blocks, self.dst_caps.offset_writes
            )
        self.emit(FileStarted(path=entry.path, size=size, resume_from=resume_at, segments=1))
        hasher = BlockHasher(read_from)
        first_idx = read_from // BLOCK_SIZE
        path = entry.path
        journal = self.journal
        #: How many of ``hasher.digests`` (which only grows) are journaled: each piece
        #: records the blocks finished since the last one. (A scan of every digest at
        #: each piece made a 100 GiB file cost ~10^9 steps.)
        journaled = 0

        def journal_sent(done_through: int) -> None:
            nonlocal journaled
            if journal is None:
                return
            digests = hasher.digests
            while journaled < len(digests):
                journal.record_block(path, first_idx + journaled, digests[journaled],
                                     acked=False, bytes_done=done_through)
                transfer.checked_blocks.add(first_idx + journaled)
                journaled += 1

        async def pieces(source: AsyncIterator[bytes]) -> AsyncIterator[bytes]:
            async for piece in source:
                journal_sent(hasher.position)
                yield piece

        transfer.begin_attempt(reads=1)
        async with self.reader.open(transfer, read_from, size, hasher,
                                     send_from=resume_at) as source:
            await source.first()
            async with self.dst.session() as s:
                await s.write(transfer.target, pieces(source), offset=resume_at,
                              create=resume_at == 0,
                              private=hides_from_others(transfer.entry.mode,
                                                        transfer.entry.size))
        hasher.finish()
        digests = [known[i] for i in range(first_idx)] + hasher.digests
        return digests, resume_at
