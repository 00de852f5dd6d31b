"""Read a whole file once and return its canonical digest (``fsmove.verify.digest``).

Copy (``--checksum``: is the destination's file the same?) and verify (is it
identical?) read whole files the same way, through a pool's sessions, retrying a
dropped connection on a fresh session as the caller's ``RetryPolicy`` says.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

from fsmove.verify.digest import BlockHasher, combine

from .backend import BackendError
from .policy import NO_RETRIES, RetryPolicy, pause_before_retry
from .pool import SessionPool


@dataclass(frozen=True, slots=True)
class FileDigest:
    digest: str
    #: Bytes read (a file that changed while being read differs from its listed size).
    size: int


async def read_file_digest(
    pool: SessionPool,
    path: str,
    *,
    retries: RetryPolicy = NO_RETRIES,
    on_bytes: Callable[[int], None] | None = None,
) -> FileDigest:
    """The digest of the whole of ``path``, read through one session of ``pool``.

    A retryable error (a dropped connection, a timeout) reads the file again from its
    start on a fresh session, as ``retries`` allows; any other error, or the last one,
    is raised. ``on_bytes(n)`` is told of each piece read, and ``on_bytes(-n)`` takes
    back the ``n`` bytes of an attempt that is read again."""
    retry = 0
    while True:
        hasher = BlockHasher()
        size = 0
        try:
            async with pool.session() as session:
                async for piece in session.read(path):
                    hasher.update(piece)
                    size += len(piece)
                    if on_bytes is not None:
                        on_bytes(len(piece))
        except BackendError as exc:
            retry += 1
            if not exc.retryable or retries.gives_up(retry):
                raise
            if size and on_bytes is not None:
                on_bytes(-size)
            delay = retries.delay(retry)
            if delay:
                await pause_before_retry(delay)
            continue
        hasher.finish()
        return FileDigest(digest=combine(hasher.digests, size), size=size)
