"""The survey: both sides' capabilities and roots, before the march lists anything.

The two sides run at once: the source's capabilities and root check together; the
destination's root looked at meanwhile (a read), then, once the source proved readable,
made if missing and probed (the write probe: dozens of round trips on FTP). A root that
was there is listed while the probe runs (``list_dst_root``: the march takes that
listing for the root instead of waiting for the probe, then listing); a root this run
made is empty and not listed at all. If either side fails, the other is cancelled.
Nothing is written at the destination before the source proved readable; a dry run
writes nothing at all (a missing destination root is then an empty destination).

The listings themselves are the march's (``march.py``): folder by folder, both sides
paired, so the first file is decided (and can be copied) long before the last folder
is listed.
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from typing import Any

from .backend import Capabilities
from .pool import SessionPool
from .roots import check_root, create_root, root_exists
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

    def take_dst_root_listing(self) -> asyncio.Future[Any] | None:
        """The root listing made during the survey, handed over once."""
        listing, self.dst_root_listing = self.dst_root_listing, None
        return listing

    def drop(self) -> None:
        """Cancel a root listing nobody took (a failed survey or march)."""
        listing = self.take_dst_root_listing()
        if listing is None:
            return
        if not listing.done():
            listing.cancel()
        elif not listing.cancelled():
            listing.exception()  # retrieved: the run's own error is the one raised

    @property
    def mtime_tolerance(self) -> float:
        """How far two mtimes may differ and still be the same (both stores'
        resolution, at least one second)."""
        return max(self.src_caps.mtime_resolution, self.dst_caps.mtime_resolution, 1.0)


async def open_sides(src: SessionPool, dst: SessionPool, *, dry_run: bool,
                     list_dst_root: Callable[[], Awaitable[Any]] | None = None) -> Sides:
    """Both sides' capabilities and roots (the source's checked readable, the
    destination's made unless ``dry_run``). ``list_dst_root``: lists an existing
    destination root meanwhile (a read, on a session lent before the capabilities);
    its future is ``Sides.dst_root_listing``."""
    found = Sides()
    source_ok = asyncio.Event()

    async def src_caps() -> None:
        found.src_caps = await src.capabilities()

    async def src_side() -> None:
        # One round trip, not two: the root's stat goes out with the capabilities' own
        # requests (SFTP's rename probe) on the sessions logged in ahead.
        await run_together([src_caps(), check_root(src, "source")])
        source_ok.set()

    async def dst_side() -> None:
        # Looking at the destination root writes nothing: it overlaps the source's checks.
        exists = await root_exists(dst)
        if exists and list_dst_root is not None:
            # Listed while the source is checked and the probe runs (the probe's own
            # files are left out of it: ``tree.is_own_probe_file``).
            found.dst_root_listing = asyncio.ensure_future(list_dst_root())
        await source_ok.wait()  # not even a probe file on a wrong source password
        if not exists:
            # A dry run leaves it missing; a copy makes it (before the probe, which
            # then tests writes in it at once): either way there is nothing to list.
            found.dst_root_exists = False
            if not dry_run:
                await create_root(dst)
        found.dst_caps = await dst.capabilities()

    try:
        await run_together([src_side(), dst_side()])
    except BaseException:
        found.drop()
        raise
    return found
