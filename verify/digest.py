"""The canonical content digest of a file: xxHash (XXH3-128) per fixed-size block.

Definition (algorithm name ``ALGORITHM``):

* The file is cut into blocks of ``BLOCK_SIZE`` bytes (the last one may be shorter; an
  empty file has no block).
* Each block's digest is XXH3-128 of its bytes (16 bytes, big-endian as xxhash gives).
* The file digest is XXH3-128 of the concatenated block digests followed by the file
  size as 8 bytes little-endian, written as 32 lowercase hex digits.

The same file therefore gets the same digest whether it moved in one stream, in parallel
chunks, or across several resumed runs: each block is hashed on its own, and an
interrupted transfer keeps the digests of its finished blocks in the journal (a running
xxhash state cannot be saved to disk). The block size is also the unit of resume.
"""

from __future__ import annotations

import struct
from collections.abc import Iterable

import xxhash

BLOCK_SIZE = 4 * 1024 * 1024
ALGORITHM = "xxh3-128-blocks-4MiB"


def combine(block_digests: Iterable[bytes], size: int) -> str:
    h = xxhash.xxh3_128()
    for d in block_digests:
        h.update(d)
    h.update(struct.pack("<Q", size))
    return h.hexdigest()


def block_count(size: int) -> int:
    return (size + BLOCK_SIZE - 1) // BLOCK_SIZE


class BlockHasher:
    """Hash a stream of pieces of any size into per-block digests, starting at a block
    boundary (``start`` must be a multiple of BLOCK_SIZE)."""

    __slots__ = ("_block_fill", "_h", "digests", "position")

    def __init__(self, start: int = 0) -> None:
        if start % BLOCK_SIZE:
            raise ValueError("BlockHasher must start on a block boundary")
        self.position = start
        self._h = xxhash.xxh3_128()
        self._block_fill = 0
        #: Digests of the blocks completed so far, in order, from ``start``.
        self.digests: list[bytes] = []

    def update(self, piece: bytes | bytearray | memoryview) -> list[tuple[int, bytes]]:
        """Feed bytes; return ``(block_index, digest)`` for every block this completed."""
        done: list[tuple[int, bytes]] = []
        view = memoryview(piece)
        while view:
            room = BLOCK_SIZE - self._block_fill
            take = view[:room]
            self._h.update(take)
            self._block_fill += len(take)
            self.position += len(take)
            view = view[len(take) :]
            if self._block_fill == BLOCK_SIZE:
                d = self._h.digest()
                self.digests.append(d)
                done.append(((self.position - 1) // BLOCK_SIZE, d))
                self._h.reset()
                self._block_fill = 0
        return done

    def finish(self) -> list[tuple[int, bytes]]:
        """Close the last, short block (if any) at end of file."""
        if self._block_fill == 0:
            return []
        d = self._h.digest()
        self.digests.append(d)
        self._h.reset()
        self._block_fill = 0
        return [((self.position - 1) // BLOCK_SIZE, d)]


def digest_bytes(data: bytes) -> str:
    """The canonical digest of an in-memory byte string (tests, small files)."""
    hasher = BlockHasher()
    hasher.update(data)
    hasher.finish()
    return combine(hasher.digests, len(data))
