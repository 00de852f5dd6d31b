"""A connection pool per endpoint: a cap per side, reuse, replacement, 421 back-off.

``async with pool.session() as s:`` lends a logged-in session. A session carries up to
``Capabilities.ops_per_session`` borrowers at once (1 for FTP, many for SFTP, whose
requests are pipelined on one channel). At most ``max_sessions`` sessions are open.

A borrower that leaves with an exception that may have broken the connection (a
retryable BackendError, or anything that is not a BackendError, cancellation included:
an FTP transfer cut in the middle leaves the control channel in an unknown state) gets
that session closed and dropped; the next borrower gets a new one. Errors that say
nothing about the connection (not found, permission denied...) keep it.

The pool alone recovers sessions (a session never logs in again by itself): a session
that says it is no longer ``usable`` (the Session protocol's health: a lost or
out-of-step connection) is dropped when its borrower leaves. A session that sat idle
for ``idle_check_after`` seconds is asked whether it still answers before it is lent
again, where its store's sessions can tell (``IdleCheck``: FTP NOOP, as rclone does):
servers and middleboxes drop idle connections, and a dead one would otherwise fail the
next file after a timeout. Sessions reused at once are never checked, so small files
on a busy side pay nothing.

How many sessions a side opens without a cap from the user is the pool's decision
(``auto_cap``), from what the store measured (transfers/session_count.py).

``open_ahead`` logs sessions in before anyone borrows one, within the pool's cap (a
store that can, ``LogsInAhead``: FTP, does it itself; for the others the pool opens
them as idle sessions): the run's first steps (the root check, the listing, the
destination's probe, the first files) then find them logged in, instead of each
waiting for a login of its own, one after the other.

When the server refuses a new connection as "too many" (FTP 421), the pool lowers its
own cap to the number of sessions that are open, so the side settles at what the
server accepts, and the borrower waits for a free session instead of failing. With no
session open at all it backs off and tries again a bounded number of times.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator
from dataclasses import dataclass, field, replace
from typing import Protocol, runtime_checkable

from .backend import (
    BackendError,
    Capabilities,
    IdleCheck,
    Session,
    SessionFeatures,
    SharesSessionsEarly,
    Store,
    TooManySessionsError,
    WatchesRoundTrip,
    WritesBeforeProbe,
)
from .policy import TOO_MANY_SESSIONS_RETRIES, RetryPolicy, pause_before_retry
from .session_count import sessions_for_files, sessions_worth_opening

#: A session idle this long (seconds) is checked before it is lent again (``IdleCheck``).
IDLE_CHECK_AFTER = 10.0
#: Sessions per side a copy or a verify logs in as soon as it starts (``open_ahead``):
#: the root check and the listing, and a second file.
SESSIONS_AHEAD = 2


@runtime_checkable
class LogsInAhead(Protocol):
    """A store that can start logins before they are asked for (``FtpStore``)."""

    def log_in_ahead(self, count: int) -> None: ...


@runtime_checkable
class HasSpares(Protocol):
    """A store that keeps sessions logged in for its next ``connect`` (``FtpStore``:
    the probe's helpers, logins started ahead and done)."""

    def has_spare(self) -> bool: ...


@dataclass(eq=False)
class _Slot:
    session: Session
    borrowers: int = 0
    broken: bool = False
    #: When its last borrower left (event loop time): how long it sat idle.
    idle_since: float = 0.0


@dataclass(frozen=True)
class PoolStats:
    opened: int
    dropped: int
    cap: int
    #: Idle sessions asked whether they still answer before being lent again.
    idle_checks: int = 0


@dataclass(eq=False)
class SessionPool:
    store: Store
    max_sessions: int
    _slots: list[_Slot] = field(default_factory=list)
    _connecting: int = 0
    _cond: asyncio.Condition = field(default_factory=asyncio.Condition)
    _caps: Capabilities | None = None
    #: ``_caps`` are the store's early capabilities, its probe still running.
    _early: bool = False
    #: One asking of the store's capabilities at a time (``capabilities``).
    _caps_lock: asyncio.Lock = field(default_factory=asyncio.Lock)
    _opened: int = 0
    _dropped: int = 0
    _closed: bool = False
    _features: SessionFeatures | None = None
    _idle_checks: int = 0
    #: Sessions being opened ahead by the pool (``open_ahead``), until they are idle.
    _ahead: set[asyncio.Future[None]] = field(default_factory=set)
    _ahead_pending: int = 0
    #: Size the side from the store's facts (the cap was not chosen by the user).
    auto_cap: bool = False
    #: The cap was lowered after the server refused more sessions: never raised again.
    _refused_more: bool = False
    #: Files (and big files among them) the run has decided to copy so far
    #: (``grow_for_files``).
    _files_decided: int = 0
    _big_files_decided: int = 0
    #: Back-off when the server refuses a connection as "too many" and none is open.
    too_many_retries: RetryPolicy = TOO_MANY_SESSIONS_RETRIES
    #: Check a session idle this long before lending it again (where it can tell).
    idle_check_after: float = IDLE_CHECK_AFTER

    #: The sessions the copy last wanted (``warm``): asked again when the cap rises.
    _wanted: int = 0

    def __post_init__(self) -> None:
        if self.max_sessions < 1:
            raise ValueError("max_sessions must be at least 1")
        if self.auto_cap and isinstance(self.store, WatchesRoundTrip):
            self.store.watch_round_trip(self._round_trip_measured)

    @property
    def display(self) -> str:
        return self.store.display

    @property
    def stats(self) -> PoolStats:
        return PoolStats(opened=self._opened, dropped=self._dropped, cap=self.max_sessions,
                         idle_checks=self._idle_checks)

    def open_ahead(self, count: int) -> None:
        """Log in up to ``count`` sessions now, in the background (never more than the
        cap). A store that can (``LogsInAhead``: FTP, whose write probe takes sessions
        of its own) starts the logins itself and ``store.connect`` hands them out, so
        every bound and the 421 back-off hold as for any login; for any other store the
        pool opens them as idle sessions. A failed login ahead is dropped: the borrower
        that then needs a session logs in and gets the error itself."""
        count = min(count, self.max_sessions)
        if isinstance(self.store, LogsInAhead):  # through decorators too (__getattr__)
            self.store.log_in_ahead(count)
            return
        for _ in range(count):
            task = asyncio.ensure_future(self._open_idle())
            self._ahead.add(task)
            task.add_done_callback(self._ahead.discard)

    @property
    def logs_in_ahead(self) -> bool:
        """The store logs several sessions in at once before they are asked for
        (``LogsInAhead``: FTP), so two borrowers at the start each find one."""
        return isinstance(self.store, LogsInAhead)

    @property
    def early_ops_per_session(self) -> int:
        """Borrowers a session carries before the capabilities are known: 1, unless the
        store's sessions pipeline requests from their login on (``SharesSessionsEarly``:
        SFTP), so that reads lent ``before_capabilities`` share a session."""
        if isinstance(self.store, SharesSessionsEarly):  # through decorators too
            return max(1, self.store.early_ops_per_session())
        return 1

    def warm(self, wanted: int) -> None:
        """Have up to ``wanted`` sessions open or logging in (never more than the cap),
        the missing ones started now in the background, where a session carries one
        operation at a time on a remote store (FTP). The copy calls it with the files
        decided and not yet done: both sides then log in together as soon as the work
        is known, instead of the destination's logins starting only once sources have
        data (measured vsftpd -> vsftpd behind the 60 ms relay, 2,000 small files: the
        destination's 61 logins began ~1.5 s after the source's; benchmarks/README.md).
        Stores whose sessions carry many requests (SFTP) open more only when busy
        (``_open_beside``)."""
        self._wanted = wanted
        caps = self._caps
        if self._closed or caps is None or not caps.remote or caps.ops_per_session != 1:
            return
        missing = min(wanted, self.max_sessions) - len(self._slots) - self._connecting
        if missing > 0:
            self.open_ahead(missing)

    async def _open_idle(self) -> None:
        """One session opened ahead, left idle for the first borrower (within the cap)."""
        async with self._cond:
            if self._closed or len(self._slots) + self._connecting >= self.max_sessions:
                return
            self._connecting += 1
            self._ahead_pending += 1
        await self._connect_ahead(beside=False)

    def _open_beside(self) -> None:
        """Start one more session in the background (the lock held, the cap checked): it
        joins the pool idle, for the next borrower."""
        self._connecting += 1
        self._ahead_pending += 1
        task = asyncio.ensure_future(self._connect_ahead(beside=True))
        self._ahead.add(task)
        task.add_done_callback(self._ahead.discard)

    async def _connect_ahead(self, *, beside: bool) -> None:
        session: Session | None = None
        try:
            session = await self.store.connect()
        except Exception:
            pass  # the borrower that needs a session logs in and gets the error
        finally:
            # Shielded: the counts must come back down even if this task is cancelled.
            await asyncio.shield(self._opened_ahead(session, beside=beside))

    async def _opened_ahead(self, session: Session | None, *, beside: bool = False) -> None:
        to_close: Session | None = None
        async with self._cond:
            self._connecting -= 1
            self._ahead_pending -= 1
            if session is None and beside and self._slots:
                # Refused (too many sessions, or any other reason) while others work:
                # the side settles at what it has rather than keep asking.
                self.max_sessions = max(1, len(self._slots) + self._connecting)
                self._refused_more = True
            if session is not None and self._closed:
                to_close = session
            elif session is not None:
                self._opened += 1
                if self._features is None:
                    self._features = SessionFeatures.of(session)
                self._slots.append(_Slot(session=session,
                                         idle_since=asyncio.get_running_loop().time()))
            # Every borrower waiting for these sessions looks again (a few times a run).
            self._cond.notify_all()
        if to_close is not None:
            with contextlib.suppress(Exception):
                await asyncio.wait_for(to_close.close(), 5)

    async def capabilities(self) -> Capabilities:
        """The store's capabilities (its probe's, final), asked once: borrowers that
        ask together wait for the first one's answer. Each asked the store itself
        before, and each store login beside the pool's made a source server that takes
        one session refuse the run with "too many sessions" even at --src-connections 1
        (session 36's second pass)."""
        if self._caps is not None and not self._early:
            return self._caps
        async with self._caps_lock:
            return await self._ask_capabilities()

    async def _ask_capabilities(self) -> Capabilities:
        if self._caps is None or self._early:
            store = self.store
            if self._early and isinstance(store, WritesBeforeProbe):
                # On a session of this pool: files are being written meanwhile, and on
                # a server that takes two sessions a login of the probe's own would be
                # refused while they hold both (the pool waits for a free one).
                async with self.session() as session:
                    caps = await store.probe_with(session)
            else:
                caps = await store.capabilities()
            self._use(caps, early=False)
        assert self._caps is not None
        return self._caps

    def early_capabilities(self) -> Capabilities | None:
        """The store's early capabilities (``WritesBeforeProbe``: what holds while its
        write probe runs), the pool sized by them; None where the store has none (then
        only ``capabilities`` tells). Sessions are lent on them until ``capabilities``
        returns the probe's."""
        if self._caps is not None and not self._early:
            return None
        store = self.store
        caps = store.early_capabilities() if isinstance(store, WritesBeforeProbe) else None
        if caps is not None:
            self._use(caps, early=True)
        return caps

    def _use(self, caps: Capabilities, *, early: bool) -> None:
        self._caps, self._early = caps, early
        wanted = sessions_worth_opening(caps) if self.auto_cap else None
        if wanted is not None and not self._refused_more:
            wanted = max(wanted, sessions_for_files(
                caps, self._files_decided, self._big_files_decided) or 0)
        if wanted is not None and self._refused_more:
            wanted = min(wanted, self.max_sessions)  # the server's bound stands
        if wanted is not None:
            self.max_sessions = max(1, wanted)
        if caps.max_sessions is not None:
            self.max_sessions = max(1, min(self.max_sessions, caps.max_sessions))

    def _round_trip_measured(self, shortest: float, samples: int) -> None:
        """A login measured the round trip again (``WatchesRoundTrip``): the cap
        follows the shortest so far and how many logins measured it, down (a first
        login that read slow while the server was busy) or up (the WAN's sessions once
        enough logins read one, session_count.SAMPLES_TO_GROW); the sessions the copy
        wanted are logged in if the cap rose."""
        caps = self._caps
        if caps is None or self._closed:
            return  # not sized yet: sized from the store's figures when it is
        before = self.max_sessions
        self._use(replace(caps, round_trip=shortest, round_trip_samples=samples),
                  early=self._early)
        if self.max_sessions > before:
            self.warm(self._wanted)

    def grow_for_files(self, files: int, big_files: int = 0) -> None:
        """The run has decided ``files`` files to copy so far, ``big_files`` of them
        streamed: a side capped for a short run may get a long run's cap
        (``session_count.sessions_for_files``: more a switch away, the WAN's over one;
        never a cap the user chose, never past the store's own bound, never after the
        server refused more sessions). The sessions are logged in by the next
        ``warm``."""
        self._files_decided = max(self._files_decided, files)
        self._big_files_decided = max(self._big_files_decided, big_files)
        caps = self._caps
        if not self.auto_cap or caps is None or self._refused_more:
            return
        wanted = sessions_for_files(caps, self._files_decided, self._big_files_decided)
        if wanted is None:
            return
        if caps.max_sessions is not None:
            wanted = min(wanted, caps.max_sessions)
        if wanted > self.max_sessions:
            self.max_sessions = wanted
            self._wake_waiters()

    def _wake_waiters(self) -> None:
        """Borrowers waiting at the old cap look again (the cap rose): there may be room
        to log in now, with no session released to wake them."""
        async def wake() -> None:
            async with self._cond:
                self._cond.notify_all()

        try:
            loop = asyncio.get_running_loop()
        except RuntimeError:
            return  # no loop running: nobody can be waiting
        task = loop.create_task(wake())
        self._ahead.add(task)
        task.add_done_callback(self._ahead.discard)

    @contextlib.asynccontextmanager
    async def session(self, *, before_capabilities: bool = False,
                      stream: bool = False, spare: int = 0,
                      settled: bool = False) -> AsyncIterator[Session]:
        """Lend a logged-in session. ``before_capabilities``: do not ask the store's
        capabilities first (they may write: the FTP probe), for a read that must come
        before any write (the destination root's ``stat`` while the source is checked);
        the session then carries this borrower alone. ``stream``: a borrower that moves
        data for a while (a big file's range) waits for a session of its own while one
        may still be opened, rather than share a busy one: each connection has its own
        window (TCP's, SSH's), which streams stacked on one would share. ``spare``: a
        borrower that can wait (the scout's listings ahead) leaves that many idle
        sessions to the others while the pool may still open one: it logs in its own
        instead (at the cap it takes what is idle, as anyone). Only where a session
        carries one operation at a time (FTP): an SFTP session is shared, not spared.
        ``settled``: among idle sessions, one that owes no replies comes first
        (``OwesReplies``: a big file's placing must not wait behind the ``EPSV`` its
        own upload's session sent ahead, which vsftpd answers only once it has closed
        the file); if every idle one owes, a session the store holds logged in
        (``HasSpares``), else the first idle. Others take the first idle, whose owed
        replies come in a round trip (small files pipeline behind them)."""
        slot = await self._acquire(before_capabilities, stream, spare, settled)
        try:
            yield slot.session
        except BaseException as exc:
            if not isinstance(exc, BackendError) or exc.retryable:
                slot.broken = True
            raise
        finally:
            # Shielded: a borrower cancelled while releasing must not leak its slot
            # (a leaked slot would make every later borrower wait forever).
            await asyncio.shield(self._release(slot))

    async def _acquire(self, before_capabilities: bool = False, stream: bool = False,
                       spare: int = 0, settled: bool = False) -> _Slot:
        if before_capabilities and self._caps is None:
            per = self.early_ops_per_session
        else:
            # Early capabilities say ``ops_per_session`` as the probe will
            # (``EARLY_FIELDS``): a borrower does not wait for the probe.
            caps = self._caps if self._caps is not None else await self.capabilities()
            per = max(1, caps.ops_per_session)
        attempt = 0
        async with self._cond:
            while True:
                if self._closed:
                    raise RuntimeError("session pool is closed")
                free = [s for s in self._slots if not s.broken and s.borrowers < per]
                idle = [s for s in free if s.borrowers == 0]
                room = len(self._slots) + self._connecting < self.max_sessions
                if spare and per == 1 and room and len(idle) <= spare:
                    idle = free = []  # left to the others: this borrower logs in
                # Sessions opened ahead come first: wait for them rather than open more.
                can_open = room and not self._ahead_pending
                # A side sized from its store's facts opens none beside the sessions
                # ahead until it knows them (the cap may be 2: session_count.py).
                sized = self._caps is not None or not self.auto_cap
                if free and not idle and room and not stream and sized:
                    # Spread the load over up to max_sessions connections (each SSH
                    # connection is one cipher stream, one core) without making anyone
                    # wait for a login (a dozen round trips over SFTP): this borrower
                    # shares a session now while another logs in beside it.
                    self._open_beside()
                # A stream (a big file's range) moves data for a while: it waits for a
                # login under way rather than share a busy session for all its length
                # (large-sftp-60ms, benchmarks/README.md "Session 19").
                waits = stream and (can_open or self._ahead_pending > 0)
                if settled and idle:
                    idle = self._settled_first(idle)
                    if can_open and self._owes(idle[0]) and self._store_has_one_ready():
                        idle = free = []  # a logged-in spare beats waiting behind them
                if idle or (free and not waits):
                    slot = min(idle or free, key=lambda s: s.borrowers)
                    slot.borrowers += 1
                    if slot.borrowers == 1 and not slot.session.usable:
                        await self._drop_held(slot)  # hung up while idle: no round trip
                        continue
                    if not self._needs_idle_check(slot) or await self._still_alive(slot):
                        return slot
                    continue  # it was dead: dropped; look again
                if can_open:
                    self._connecting += 1
                    self._cond.release()
                    try:
                        session = await self.store.connect()
                    except TooManySessionsError:
                        await self._cond.acquire()
                        self._connecting -= 1
                        open_now = len(self._slots) + self._connecting
                        if open_now > 0:
                            self.max_sessions = max(1, open_now)
                            self._refused_more = True
                            continue  # wait for one of the open sessions
                        # None open: back off, then try again (policy.py).
                        attempt += 1
                        if self.too_many_retries.gives_up(attempt):
                            raise
                        delay = self.too_many_retries.delay(attempt)
                        self._cond.release()
                        try:
                            await pause_before_retry(delay)
                        finally:
                            await self._cond.acquire()
                        continue
                    except BaseException:
                        await self._cond.acquire()
                        self._connecting -= 1
                        self._cond.notify_all()
                        raise
                    await self._cond.acquire()
                    self._connecting -= 1
                    self._opened += 1
                    if self._features is None:
                        self._features = SessionFeatures.of(session)
                    slot = _Slot(session=session, borrowers=1)
                    self._slots.append(slot)
                    return slot
                try:
                    await self._cond.wait()
                except asyncio.CancelledError:
                    # A wakeup meant for a free slot may have come to this waiter: pass
                    # it on, or another borrower could wait for a slot that is free.
                    self._cond.notify(1)
                    raise

    def _owes(self, slot: _Slot) -> bool:
        return (self._features is not None and self._features.owes_replies
                and slot.session.owes_replies)  # type: ignore[attr-defined]

    def _settled_first(self, idle: list[_Slot]) -> list[_Slot]:
        """``idle`` with the sessions that owe no replies first (order kept otherwise)."""
        return sorted(idle, key=self._owes)

    def _store_has_one_ready(self) -> bool:
        """The store holds a session logged in that no slot has yet (``HasSpares``)."""
        return isinstance(self.store, HasSpares) and self.store.has_spare()

    def _needs_idle_check(self, slot: _Slot) -> bool:
        """A session that sat idle long enough, alone on its slot, whose store's
        sessions can tell whether they still answer."""
        return (
            self._features is not None and self._features.idle_check
            and slot.borrowers == 1
            and asyncio.get_running_loop().time() - slot.idle_since >= self.idle_check_after
        )

    async def _drop_held(self, slot: _Slot) -> None:
        """Drop and close a slot this borrower holds alone (the lock released meanwhile,
        as ``_still_alive`` does)."""
        slot.broken = True
        self._cond.release()
        try:
            await asyncio.shield(self._release(slot))
        finally:
            await self._cond.acquire()

    async def _still_alive(self, slot: _Slot) -> bool:
        """Ask a held slot's session (with the lock released meanwhile: a round trip, and
        the release of a dead one takes the lock); a dead one is dropped and closed."""
        session = slot.session
        assert isinstance(session, IdleCheck)
        self._idle_checks += 1
        alive = False
        self._cond.release()
        try:
            alive = await session.still_alive()
        finally:
            if not alive:
                slot.broken = True
                await asyncio.shield(self._release(slot))
            await self._cond.acquire()
        return alive

    async def _release(self, slot: _Slot) -> None:
        to_close: Session | None = None
        async with self._cond:
            slot.borrowers -= 1
            # A session may know it is unusable without having raised (an FTP read
            # stopped early whose ABOR failed): the protocol's ``usable`` says so.
            if not slot.session.usable:
                slot.broken = True
            if slot.borrowers == 0:
                slot.idle_since = asyncio.get_running_loop().time()
            if slot.broken and slot in self._slots:
                self._slots.remove(slot)
                self._dropped += 1
            if slot.broken and slot.borrowers == 0:
                to_close = slot.session
            # One borrower freed one place (a session's op, or room for a new session):
            # one waiter can take it. Waking all of them made every release cost a scan
            # of every slot per waiter (128 workers x 32 sessions on small files).
            self._cond.notify(1)
        if to_close is not None:
            with contextlib.suppress(Exception):
                await asyncio.wait_for(asyncio.shield(to_close.close()), 5)

    async def aclose(self) -> None:
        ahead = list(self._ahead)
        for task in ahead:
            task.cancel()
        await asyncio.gather(*ahead, return_exceptions=True)
        async with self._cond:
            self._closed = True
            slots, self._slots = self._slots, []
            self._cond.notify_all()
        # All at once: each polite close (FTP QUIT) costs a round trip.
        await asyncio.gather(
            *(asyncio.wait_for(slot.session.close(), 5) for slot in slots),
            return_exceptions=True,
        )
        with contextlib.suppress(Exception):
            await self.store.aclose()
