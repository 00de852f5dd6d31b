"""The survey: both sides' capabilities and roots, before the march lists anything.

The two sides run at once: the source's capabilities and root check together; the
destination's root looked at meanwhile (a read), then, once the source proved readable,
made if missing and probed (the write probe: dozens of round trips on FTP). If either
side fails, the other is cancelled. Nothing is written at the destination before the
source proved readable; a dry run writes nothing at all (a missing destination root is
then an empty destination).

The listings themselves are the march's (``march.py``): folder by folder, both sides
paired, so the first file is decided (and can be copied) long before the last folder
is listed.
"""

from __future__ import annotations

import asyncio
from dataclasses import dataclass, field

from .backend import Capabilities
from .pool import SessionPool
from .roots import check_root, create_root, root_exists
from .together import run_together


@dataclass
class Sides:
    src_caps: Capabilities = field(default_factory=Capabilities)
    dst_caps: Capabilities = field(default_factory=Capabilities)
    #: Whether the destination root exists (False only in a dry run: a copy makes it).
    dst_root_exists: bool = True

    @property
    def mtime_tolerance(self) -> float:
        """How far two mtimes may differ and still be the same (both stores'
        resolution, at least one second)."""
        return max(self.src_caps.mtime_resolution, self.dst_caps.mtime_resolution, 1.0)


async def open_sides(src: SessionPool, dst: SessionPool, *, dry_run: bool) -> Sides:
    """Both sides' capabilities and roots (the source's checked readable, the
    destination's made unless ``dry_run``)."""
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
        await source_ok.wait()  # not even a probe file on a wrong source password
        if not exists:
            if dry_run:
                found.dst_root_exists = False
            else:
                # Made before the probe, which can then test writes in it at once.
                await create_root(dst)
        found.dst_caps = await dst.capabilities()

    await run_together([src_side(), dst_side()])
    return found
