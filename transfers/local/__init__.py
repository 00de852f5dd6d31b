"""The local disk as a store (``file://`` URLs and plain paths).

File I/O runs in worker threads (``asyncio.to_thread``) in pieces of ``PIECE_SIZE`` so
the event loop never blocks on the disk. Symlinks are never followed when listing: a
symlink is reported as ``EntryKind.LINK`` (the engine reports and skips it), so a
symlink loop cannot make the walk run forever and a link cannot lead the copy outside
the source root.

**No link is followed below the root, ever.** Every operation walks its path from the
root one folder at a time with ``openat``-style calls (``dir_fd``, ``O_NOFOLLOW``): a
symlink in place of a folder is refused with ``LinkRefusedError`` naming it, whether a
listing saw it or it was put there during the copy. The root itself is the user's
choice and may be a link. A new file is created with ``O_CREAT | O_EXCL | O_NOFOLLOW``
after removing whatever had its name (a link planted as a temporary file is removed,
not written through), private (0600) until ``place`` gives it its final bits; a file
written into again (resume) must be a regular file with one link (a hard link to a file
elsewhere is refused). ``read(expect=...)`` opens without following a link (and without
blocking on a fifo) and compares ``fstat`` with the listed entry: type, size, mtime,
device and inode.

Where each job lives: ``nofollow.py`` (opening a path below the root one folder at a time
without following a link, and the OS errors translated), ``session.py`` (``LocalStore``
and ``LocalSession``: the Session protocol on top of it).
"""

from .session import LocalSession, LocalStore

__all__ = ["LocalSession", "LocalStore"]
