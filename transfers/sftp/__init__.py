"""SFTP stores on asyncssh: pipelined reads and writes, strict host-key checking.

**Sessions and connections.** Each ``connect()`` opens its own SSH connection carrying
one SFTP channel, and the engine may run ``Capabilities.ops_per_session`` (32)
operations on it at once: asyncssh's SFTP client matches replies to request ids, so
concurrent opens, reads and writes interleave on one channel. One connection per
session keeps failure simple (the pool drops a broken session and only its
connection), spreads the server's work over several sshd processes, and gives each
session its own TCP and channel windows. Measured against OpenSSH 9.2 on loopback
(2,000 files of 16 KiB, 2 shared cores): several SFTP channels on one shared connection
were never faster than the same number of connections (2 x 8, three runs each, a noisy
shared machine: 170-1,200 files/s up and 280-670 down shared; 390-1,260 / 240-800 with
a connection each); at 0 RTT one session with 8, 16 or 32 operations in flight ran at
the same 580-960 files/s up and 480-730 down (the client's CPU is the limit), while
through a 60 ms RTT relay a session's rate grows with the operations in flight
(8 / 16 / 32: 38 / 82 / 161 files/s up, 35 / 82 / 116 down), hence 32. Each file
costs three round trips: open, read or write (with ``fstat`` sent alongside the first
read to learn where the file ends), close.

**Pipelining.** ``read`` keeps ``requests_in_flight`` (12) read requests of the
server's ``limits@openssh.com`` size (255 KiB on OpenSSH; we never force 256 KiB) in
flight and yields the replies in order; ``write`` re-cuts the stream into requests of
the server's write limit, keeps as many in flight, each at its own offset, and returns
once every one was acknowledged and the handle closed. Memory is bounded by
operations x requests in flight x 255 KiB. The SSH channel window is 8 MiB (asyncssh's
2 MiB caps one session at ~15 MB/s down at 60 ms RTT; 8 MiB gave 39 MB/s, with no
change at 0 RTT). aes128-gcm@openssh.com is offered first, compression is off.

**Speed, asyncssh vs paramiko** (256 MiB file on /dev/shm, loopback, the same minute,
medians of 3; the machine was shared with other test runs, load ~5 on 2 cores, so
OpenSSH's own ``sftp -c aes128-gcm`` is given as the yardstick: 167 MB/s get, 86 MB/s
put). This backend: 142 MB/s down, 77 MB/s up (raw asyncssh writing one 256 MiB buffer
with its own pipelining used 1.35 s CPU, this backend 1.46-1.51 s); paramiko 5.1
``getfo``/``putfo`` with prefetch: 63 MB/s down, 50 MB/s up (5 MB/s down when its
prefetch is capped at 64 requests). Small files: this backend 747 up / 568 down
files/s (one session, 32 in flight); paramiko, one file at a time, 742 up / 158 down.
FACTS.md's quieter measurement had asyncssh at 506 / 328 MB/s and paramiko ~200 / ~210,
which is why asyncssh is the SFTP library (the original design card named paramiko).

**Listing**: ``readdir`` attributes are ``lstat``'s, so a symlink is reported as
``EntryKind.LINK`` and never followed (like the local store); ``stat`` uses ``lstat``
too, except on the root itself, which may well be a symlinked home directory.
mtimes are whole seconds on SFTPv3 (OpenSSH), ``set_mtime`` truncates.

**Links at the destination**: SFTP has no ``openat``, so before writing into a folder
every level of it is ``lstat``'ed (together, one round trip, once per folder per store:
folders a listing or a ``mkdir`` of this store showed to be real are not asked again);
a link there is refused (``LinkRefusedError``) and so is a link where ``mkdir`` needs a
folder. A new file is opened with ``CREAT | EXCL`` (never through a link planted at its
name: the open fails, the name is removed, the open retried), private (0600) until
``place`` sets its bits; a file written into again must be a regular file. A swap of a
checked folder for a link between the check and the write is the one window left
(closing it would need the server to open without following links).
``read(expect=...)`` sends an ``lstat`` beside the ``open`` and reads nothing unless the
name is still the regular file listed (same size and mtime).

**Errors**: NO_SUCH_FILE -> NotFoundError, PERMISSION_DENIED -> PermissionDeniedError,
a FAILURE that names space or quota, or a failed write on a filesystem whose
``statvfs@openssh.com`` shows no room (OpenSSH maps ENOSPC to a bare FAILURE) ->
NoSpaceError, other FAILUREs -> PermanentError, lost connections and timeouts ->
TransientError; at connect: refused / DNS / timeout -> ConnectError, login refused ->
AuthError, host keys -> HostKeyError. Every request is bounded by ``timeout``. Writes
are not fsync'ed on the server (``fsync@openssh.com`` would cost a disk flush per
file): an acknowledged write is in the server's cache, and ``verify`` re-reads it.

Where each job lives: ``store.py`` (``SftpStore``: SSH connections, options, host keys
at connect, the capabilities), ``channel.py`` (one SFTP channel: requests bounded and
translated, stat, list, remove, health, close), ``file_io.py`` (pipelined read and
write, the folder checks before a write), ``session.py`` (``SftpSession``: mkdir,
rename, place, set mtime), ``errors.py`` (asyncssh and socket errors to the backend
taxonomy), ``lean.py`` (each connection without asyncssh's per-packet IGNORE message
and log formatting), ``write_request.py`` (a WRITE request with one copy of its data),
``quick_start.py`` (a login and SFTP start in fewer round trips), ``handles.py`` (the
handle OpenSSH's sftp-server gives the next OPENDIR, so a folder listed alone asks its
READDIRs with it).

**Why asyncssh and not OpenSSH's ``ssh`` as a child** (measured 2026-12-04, see
benchmarks/README.md "Profile: SFTP large files"): an ``ssh -s sftp`` child with
asyncssh's SFTP client over its pipes halves this process's CPU per GB, but the child
spends as much again, so the client's total is no lower; on a machine shared with the
servers the total is what decides the rate.
"""

from . import library_lookup

# Before anything here imports asyncssh: its searches for optional libraries start no
# subprocess where the library is absent (library_lookup.py).
library_lookup.install()

from .session import SftpSession  # noqa: E402
from .store import SftpStore  # noqa: E402

__all__ = ["SftpSession", "SftpStore"]
