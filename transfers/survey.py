"""The survey: both sides' capabilities and roots, before the march lists anything.

The two sides run at once: the source's capabilities and root check together; the
destination's root looked at meanwhile (a read), then, once the source proved readable,
made if missing (on the session that looked at it) and probed (the write probe: dozens
of round trips on FTP). The root is listed (``list_dst_root``: the march takes that
listing for the root instead of waiting for the probe, then listing) beside that look,
on another session where the store logs several in at once (FTP), on the look's own
where a session carries several requests from its login on (SFTP), else after it; the
listing is kept only if the root was there (a root this run made is empty: its
listing is dropped). If either side fails, the other is cancelled. Nothing is written at the
destination before the source proved readable; a dry run writes nothing at all (a
missing destination root is then an empty destination).

A copy does not wait for the probe's answers (``early_dst``): where the destination
offers early capabilities (``WritesBeforeProbe``: FTP, once a login told its FEAT),
the survey returns with them as soon as the probe has started, and the probe runs on
(``Sides.dst_probe``) while the march lists and the first new files are written under
their temporary names (no offset write, no mtime, nothing placed). ``settle_dst``
takes its answers; a file is placed, or resumed, only then (``Attempts.copy``). About
half a second at 60 ms of round trip: the probe's offset-write chain is three
transfers in a row.

The listings themselves are the march's (``march.py``): folder by folder, both sides
paired, so the first file is decided (and can be copied) long before the last folder
is listed.
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from typing import Any

from .backend import BackendError, Capabilities, early_fields_differ
from .nested_roots import check_not_nested
from .policy import NO_RETRIES, RetryPolicy, pause_before_retry
from .pool import SessionPool
from .roots import check_root, find_or_make_root
from .together import run_together


@dataclass
class Sides:
    src_caps: Capabilities = field(default_factory=Capabilities)
    dst_caps: Capabilities = field(default_factory=Capabilities)
    #: Whether the destination root held anything before this run: False when it is
    #: missing (a dry run) or this run made it (empty: nothing there to list).
    dst_root_exists: bool = True
    #: The destination root's listing, started during the survey (``list_dst_root``);
    #: the march takes it for the root (``take_dst_root_listing``).
    dst_root_listing: asyncio.Future[Any] | None = None
    #: The destination's write probe, still running (``early_dst``): ``dst_caps`` are
    #: its early capabilities until ``settle_dst`` has its answers.
    dst_probe: asyncio.Future[Capabilities] | None = None
    #: Why the destination's probe could not answer (a lost connection, after the
    #: job's retries): every file not placed yet fails with it (a partial run, as
    #: when the server goes away mid-copy; a rerun resumes).
    dst_failure: BackendError | None = None
    #: Runs the probe again after a lost connection (``open_sides``).
    _reprobe: Callable[[], Awaitable[Capabilities]] | None = None
    _retry: RetryPolicy = NO_RETRIES
    _dst_settled: asyncio.Event = field(default_factory=asyncio.Event)

    @property
    def dst_settled(self) -> bool:
        """Whether ``dst_caps`` are the destination's final capabilities."""
        return self.dst_probe is None

    async def settle_dst(self) -> None:
        """Wait for the destination's probe and take its capabilities (the copy runs
        this beside its files). A lost connection is retried as a file is (the job's
        ``RetryPolicy``), then left to the files (``dst_failure``); any other failure
        fails the run, as it did the survey."""
        probe = self.dst_probe
        if probe is None:
            return
        tries = 0
        while True:
            try:
                caps = await probe
                break
            except BackendError as exc:
                tries = self._retry.next_attempt(tries, progressed=False)
                if not exc.retryable or self._reprobe is None:
                    raise
                if self._retry.gives_up(tries):
                    self.dst_failure = exc
                    self._dst_settled.set()
                    return
            await pause_before_retry(self._retry.delay(tries))
            probe = self.dst_probe = asyncio.ensure_future(self._reprobe())
        differ = early_fields_differ(self.dst_caps, caps)
        if differ:
            raise RuntimeError(f"the destination's early capabilities were wrong about "
                               f"{', '.join(differ)} (a bug in its backend)")
        self.dst_caps, self.dst_probe = caps, None
        self._dst_settled.set()

    async def final_dst_caps(self) -> Capabilities:
        """The destination's capabilities once its probe has answered (``dst_failure``
        raised if it could not)."""
        if self.dst_probe is not None:
            await self._dst_settled.wait()
        if self.dst_failure is not None:
            raise self.dst_failure
        return self.dst_caps

    def take_dst_root_listing(self) -> asyncio.Future[Any] | None:
        """The root listing made during the survey, handed over once."""
        listing, self.dst_root_listing = self.dst_root_listing, None
        return listing

    def drop(self) -> None:
        """Cancel a root listing nobody took and a probe nobody waited for (a failed
        survey or march)."""
        probe, self.dst_probe = self.dst_probe, None
        for future in (self.take_dst_root_listing(), probe):
            if future is None:
                continue
            if not future.done():
                future.cancel()
            elif not future.cancelled():
                future.exception()  # retrieved: the run's own error is the one raised

    @property
    def mtime_tolerance(self) -> float:
        """How far two mtimes may differ and still be the same (both stores'
        resolution, at least one second)."""
        return max(self.src_caps.mtime_resolution, self.dst_caps.mtime_resolution, 1.0)


class OnSides:
    """Both sides' capabilities read from ``self.sides`` at each use (the
    destination's early ones until its probe has answered: ``Sides.settle_dst``)."""

    sides: Sides

    @property
    def src_caps(self) -> Capabilities:
        return self.sides.src_caps

    @property
    def dst_caps(self) -> Capabilities:
        return self.sides.dst_caps


async def _ended(future: asyncio.Future[Any] | None) -> None:
    """Wait for ``future`` to end, whatever its outcome (retrieved, dropped)."""
    if future is not None:
        await asyncio.wait([future])
        if not future.cancelled():
            future.exception()


async def _dropped(future: asyncio.Future[Any] | None) -> None:
    """Cancel ``future`` (the run is failing) and wait for it to end."""
    if future is not None:
        future.cancel()
        await _ended(future)


async def probed(pool: SessionPool, retry: RetryPolicy) -> Capabilities:
    """``pool.capabilities()``, a probe that lost its connection run again as a file
    is (``retry``: the job's policy), as ``Sides.settle_dst`` does for the early one.
    Before session 35 only that early FTP probe was: one connection reset during an
    SFTP destination's probe, or in a dry run, failed the whole run."""
    tries = 0
    while True:
        try:
            return await pool.capabilities()
        except BackendError as exc:
            tries = retry.next_attempt(tries, progressed=False)
            if not exc.retryable or retry.gives_up(tries):
                raise
        await pause_before_retry(retry.delay(tries))


async def open_sides(src: SessionPool, dst: SessionPool, *, dry_run: bool,
                     list_dst_root: Callable[[], Awaitable[Any]] | None = None,
                     early_dst: bool = False, retry: RetryPolicy = NO_RETRIES,
                     same_server: bool = False) -> Sides:
    """Both sides' capabilities and roots (the source's checked readable, the
    destination's made unless ``dry_run``). ``list_dst_root``: lists an existing
    destination root meanwhile (a read, on a session lent before the capabilities);
    its future is ``Sides.dst_root_listing``. ``early_dst``: where the destination
    has early capabilities (``WritesBeforeProbe``: FTP), return with them once its
    probe has started, the probe left running (``Sides.dst_probe``, which the caller
    settles or drops; ``retry``: how often a probe that lost its connection is run
    again). ``same_server``: both sides are on one server: their roots are compared
    as the server resolves them before anything is written (``nested_roots.py``)."""
    found = Sides()
    source_ok = asyncio.Event()

    async def src_caps() -> None:
        found.src_caps = await probed(src, retry)

    async def src_side() -> None:
        # One round trip, not two: the root's stat goes out with the capabilities' own
        # requests (SFTP's rename probe) on the sessions logged in ahead.
        await run_together([src_caps(), check_root(src, "source")])
        source_ok.set()

    async def dst_side() -> None:
        # Looking at the destination root writes nothing: it overlaps the source's
        # checks. The root is listed while the source is checked and the probe runs
        # (the probe's own files are left out of it: ``tree.is_own_probe_file``). The
        # listing (a read) goes out beside the look, not a round trip after it: the
        # first files' decisions wait for it (~60 ms of first byte at 60 ms); kept
        # only if the root is a folder. Where the store logs several sessions in at
        # once (FTP), on a session of its own; where a session carries several
        # requests from its login on (SFTP: ``SharesSessionsEarly``), on the look's
        # session (the second login comes ~0.2 s after the first at 60 ms). Elsewhere
        # (a local folder) it follows the look.
        # (Reverted once, session 21: the extra login at the start made the first
        # login's round trip read as a WAN's at RTT 0, and the pools took 64 sessions a
        # side; they now size from every login's reading, session_count.SAMPLES_TO_GROW.
        # Session 22, 5 alternating rounds: real-ftp-60ms first byte median 0.90 ->
        # 0.84 s, the other FTP cells the same.)
        beside = list_dst_root is not None and (
            dst.logs_in_ahead or dst.early_ops_per_session > 1)
        listing = asyncio.ensure_future(list_dst_root()) if beside else None

        async def may_write() -> bool:
            await source_ok.wait()  # not even a folder on a wrong source password
            return not dry_run

        try:
            if same_server:
                await check_not_nested(src, dst)
            # A dry run leaves a missing root missing; a copy makes it (before the
            # probe, which then tests writes in it at once).
            exists = await find_or_make_root(dst, may_write)
        except BaseException:
            await _dropped(listing)
            raise
        if exists:
            if listing is None and list_dst_root is not None:
                listing = asyncio.ensure_future(list_dst_root())
            found.dst_root_listing = listing
        else:
            # Nothing there to list. By now the listing of the missing root has most
            # often ended by itself (a session of its own, one round trip); one still
            # under way is cancelled.
            found.dst_root_exists = False
            await _dropped(listing)
        await source_ok.wait()  # not even a probe file on a wrong source password
        if early_dst and not dry_run:
            early = dst.early_capabilities()
            if early is not None:
                # The probe runs on while the march lists and the first files are
                # written under their temporary names (only placing them, or resuming
                # one, needs its answers: ``Attempts``).
                found.dst_caps = early
                found.dst_probe = asyncio.ensure_future(dst.capabilities())
                found._reprobe, found._retry = dst.capabilities, retry
                return
        found.dst_caps = await probed(dst, retry)

    try:
        await run_together([src_side(), dst_side()])
    except BaseException:
        found.drop()
        raise
    return found
