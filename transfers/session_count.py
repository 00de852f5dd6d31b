"""How many sessions a side opens when the user did not choose (``--src-connections`` /
``--dst-connections``), and how many big-file streams a copy runs at once: policies
from facts the stores report.

A store only measures (``Capabilities.round_trip``, ``tls_per_transfer``); it never
decides how many of its sessions are worth opening. FTP measures its round trip at each
login, SFTP with two requests on each new session (transfers/sftp/round_trip.py); the
tiers below differ for a store whose sessions carry one operation at a time (FTP: the
figures up to ``WAN_TLS_SESSIONS``) and one whose sessions pipeline many (SFTP: the
``PIPELINED_*`` figures). A store that reports no round trip keeps the per-scheme
default. The copy tells the pools how many files it has decided to copy
(``sessions_for_files``): a long run repays more logins than a short one.
"""

from __future__ import annotations

from .backend import Capabilities
from .policy import DEFAULT_SESSIONS

#: A login round trip under this means a LAN. The figure is the client's wait for a
#: USER reply, which also counts both ends' scheduling: at RTT 0 on this 2-core machine
#: shared with both servers, logins read 0.2-9 ms at a run's start and up to 89 ms
#: later, the servers' CPU busy with the other logins' password checks (session 22,
#: 20 runs of the real tree). With 5 ms here a run took the WAN's 64 sessions a side
#: for one slow first reply, and the ~80 more logins (~19 ms of yescrypt each) stalled
#: both servers. A real link under 15 ms (a region's data centres) still moves small
#: files at ~500 files/s with 16 sessions (a file waits about two round trips), about
#: what one client process handles.
LAN_ROUND_TRIP = 0.015
#: Sessions worth opening on a LAN: a file costs CPU there, not waiting, and more sessions
#: only add overhead (measured: 16 sessions moved small files 15 % faster than 32 at
#: RTT 0).
LAN_SESSIONS = 16
#: A login round trip under this means the same machine or a switch away (loopback
#: measures ~0.1 ms idle). A file's few round trips there cost less than its CPU at
#: either end, and every login costs the server a password check: ~40 ms of CPU on
#: vsftpd's PAM here, so 16 + 16 logins took ~1.3 s of CPU from a 1.6 s copy of 353
#: files on two cores shared with both servers. 8 sessions carry ~2,500 files/s at 1 ms
#: (about 3 ms per file and session) and still ~900 at 3 ms, more than one client
#: process moves (~600 files/s, the 100,000-file benchmark). The line was 1 ms until
#: session 22: a loaded loopback read over it in one run in two (16 + 16 logins).
LOCAL_ROUND_TRIP = 0.003
#: More than the local tier's sessions only once this many logins read the round trip
#: (``round_trip_samples``, where the store counts them), the shortest deciding: one
#: slow reading does not buy 16 or 64 logins. The pool asks again after each login
#: (pool.py): a WAN's logins, started together, all read its round trip, so the wait is
#: one login's, and a side logs in two at its start (``pool.SESSIONS_AHEAD``).
SAMPLES_TO_GROW = 2
#: The local tier (from ``MANY_FILES`` files decided; ``LOCAL_START_SESSIONS`` before).
#: Measured vsftpd -> vsftpd at RTT 0, benchmarks/run.py cells, 4 alternating rounds
#: (session 16): the real tree 1.59-1.75 s with 16 sessions, 1.24-1.52 s with 8,
#: 1.19-1.30 s with 6; 2,000 small files within noise (3.9-4.9 s, 4.3-4.7 s, 4.3-4.7 s).
LOCAL_SESSIONS = 8
#: ...until a run has decided this many files to copy: then the LAN's ``LAN_SESSIONS``.
#: In a run that long the 8 more logins (~0.3 s of a vsftpd's CPU) pay for themselves:
#: 100,000 files of 64 B-2 KiB SFTP -> vsftpd at RTT 0, 3 alternating rounds, moved
#: 707 / 579 / 692 files/s with 16 sessions and 632 / 604 / 623 with 8 (session 16).
#: 2,000 small files (the benchmark's ``small``) stay under it: neutral there.
LOCAL_MANY_FILES = 3_000
#: A side a switch away starts with this many sessions, the local tier's from
#: ``MANY_FILES`` files decided (as a WAN side's 32 and 64). Measured on session 27's
#: machine at RTT 0, ``--src/dst-connections 4`` against 8, alternating rounds
#: (medians): the real tree (353 files) 199 -> 240 files/s and its first byte 0.75 ->
#: 0.56 s (session 26's machine: 124 -> 169 files/s), 2,000 small files 404 -> 378 (6
#: rounds, within their spread), medium 396 -> 381 MB/s, large the same.
LOCAL_START_SESSIONS = 4
#: Over a WAN each file waits several round trips and only more files in flight hide them
#: (Little's law; 64 sessions: +33 % at 60 ms, what rclone's --ftp-concurrency allows)...
WAN_SESSIONS = 64
#: ...once a run has decided this many files to copy (``MANY_FILES``); until then
#: ``WAN_START_SESSIONS``.
#: Every login costs the server a password check (vsftpd's PAM: ~20-40 ms of CPU here)
#: and the client a few round trips; a login pays for itself only over enough files.
#: vsftpd -> vsftpd behind the 60 ms relay, ``--src/dst-connections`` forced, 2
#: alternating rounds each (session 27, benchmarks/README.md): the real tree (353
#: files) 76 files/s with 64, 81 with 48, **98 with 32**, 89 with 24, 80 with 16;
#: 2,000 small files 196-201 with 64, 205 with 48, 178-180 with 32. This rule against
#: 64 from the start, alternating rounds: the real tree 67-71 -> 87-94 files/s, the
#: small tree the same (medians 197-207 / 204 files/s); with 1,000 here instead the
#: small tree's median fell to 181 (its 64 came a wave later).
MANY_FILES = 500
#: A WAN side's sessions until ``MANY_FILES`` files are decided.
WAN_START_SESSIONS = 32
#: FTPS over a WAN: each data connection is a TLS handshake, so fewer.
WAN_TLS_SESSIONS = 32


#: Sessions worth opening where each carries many operations at once (SFTP: 32 files in
#: flight per session) and the round trip is under ``LAN_ROUND_TRIP``: a session there
#: waits for no window (8 MiB per SSH channel / 15 ms = 560 MB/s) and its files wait no
#: more than a few round trips, while every SSH session costs an sshd process its own
#: cipher stream, on the cores the client needs too. Measured at RTT 0 (session 26,
#: benchmarks/README.md, ``--src-connections``/``--dst-connections`` 2 against the
#: default 8, alternating runs, medians): small 291-299 -> 352-369 files/s, real
#: 145-179 -> 249, large 98-108 -> 128 MB/s, medium 97-106 -> 160 (one run), the first
#: byte 0.1-0.3 s sooner; this policy against the code before it: small +8-15 %, real
#: +18-21 %. Until a request has measured a round trip the side stays here too: a
#: WAN's sessions follow one round trip later.
PIPELINED_LOCAL_SESSIONS = 2
#: ... and over a longer round trip: the per-scheme default (``policy.DEFAULT_SESSIONS``
#: for SFTP): each session's window and files in flight are a bound there, so more
#: sessions carry more (small-sftp-60ms 257 with 8 against 224 files/s with 2).
PIPELINED_WAN_SESSIONS = DEFAULT_SESSIONS["sftp"]


def sessions_worth_opening(caps: Capabilities) -> int | None:
    """The cap for a side from its store's facts; None: no fact to go by (keep the
    default)."""
    if caps.round_trip is None:
        return None
    settled = (caps.round_trip_samples is None
               or caps.round_trip_samples >= SAMPLES_TO_GROW)
    if caps.ops_per_session > 1:
        # One reading is enough here: no WAN reads under LAN_ROUND_TRIP, and a short
        # link read slow (a busy start) only gets the default, as before the tiers.
        if caps.round_trip < LAN_ROUND_TRIP or caps.round_trip_samples == 0:
            return PIPELINED_LOCAL_SESSIONS
        return PIPELINED_WAN_SESSIONS
    if caps.round_trip < LOCAL_ROUND_TRIP or not settled:
        return LOCAL_START_SESSIONS
    if caps.round_trip < LAN_ROUND_TRIP:
        return LAN_SESSIONS
    return WAN_TLS_SESSIONS if caps.tls_per_transfer else WAN_START_SESSIONS


def sessions_for_files(caps: Capabilities, files: int, big_files: int = 0) -> int | None:
    """The cap for a side once the run has decided ``files`` files to copy, where a long
    run repays more logins than ``sessions_worth_opening`` gives: a switch away the
    local tier's from ``MANY_FILES`` and the LAN's from ``LOCAL_MANY_FILES``, the WAN's
    from ``MANY_FILES`` over a WAN (plain FTP: FTPS's data connections keep their own
    cap). A switch away each of the first ``LAN_STREAMS`` big files (``big_files``:
    streamed, segments) adds a session up to the local tier's: a stream holds its
    session for long, and the small files need theirs (medium-ftp-0ms, 48 files of
    1-64 MiB: 441 -> 412 MB/s with 4 sessions, session 27). None: no change (a
    pipelined store's sessions already carry many files each,
    a side not measured or not settled yet)."""
    if caps.ops_per_session != 1 or caps.round_trip is None:
        return None
    if caps.round_trip < LOCAL_ROUND_TRIP:
        if files >= LOCAL_MANY_FILES:
            return LAN_SESSIONS
        if files >= MANY_FILES:
            return LOCAL_SESSIONS
        if big_files > 0:
            return min(LOCAL_SESSIONS, LOCAL_START_SESSIONS + min(big_files, LAN_STREAMS))
        return None
    settled = (caps.round_trip_samples is None
               or caps.round_trip_samples >= SAMPLES_TO_GROW)
    if (settled and caps.round_trip >= LAN_ROUND_TRIP and not caps.tls_per_transfer
            and files >= MANY_FILES):
        return WAN_SESSIONS
    return None


#: Streams (files of at least ``stream_threshold``, and segments) worth running at once
#: when every remote side is on a LAN: a stream there is limited by CPU and disk, not
#: by a window waiting for acknowledgements, so more only interleave. Measured
#: vsftpd -> vsftpd at RTT 0, 32 x 16 MiB (benchmarks/profile_ftp_large.py, 3 rounds
#: each): 4 streams 1.91 s, 8 2.20 s, 16 2.63 s, the same client CPU; 2 x 256 MiB was
#: the same for all three. rclone's default is 4 transfers.
LAN_STREAMS = 4


def streams_worth_running(src: Capabilities, dst: Capabilities, default: int) -> int:
    """Streams at once for a copy between these sides: ``default`` (the job's bound)
    unless every remote side measured a LAN round trip; then at most LAN_STREAMS. A
    side that measured nothing, one whose sessions pipeline (SFTP: LAN_STREAMS was
    measured on FTP only) and one on a WAN keep the default: over a WAN only more
    streams in flight fill the link."""
    remote = [caps for caps in (src, dst) if caps.remote]
    if not remote:
        return default
    for caps in remote:
        if (caps.round_trip is None or caps.ops_per_session != 1
                or caps.round_trip >= LAN_ROUND_TRIP):
            return default
    return min(default, LAN_STREAMS)


def sessions_for_work(small_files: int, big_files: int, *, streams: int,
                      files_at_once: int) -> int:
    """Sessions a side may log in ahead for the files decided and not done yet
    (``SessionPool.warm``): every small file can run at once up to the job's bound, a
    big file only in one of the ``streams`` (a session logged in for a big file that
    waits for a stream would sit idle)."""
    return max(0, min(max(0, small_files) + min(max(0, big_files), streams), files_at_once))
