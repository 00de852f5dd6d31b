"""The survey: both sides' capabilities and roots, before the march lists anything.

Each side is a chain (capabilities, root) and the two chains run at once: the
destination's write probe (dozens of round trips on FTP) overlaps the source's root
check. If either fails, the other is cancelled. Nothing is written at the destination
before the source proved readable; a dry run writes nothing at all (a missing
destination root is then an empty destination).

The listings themselves are the march's (``march.py``): folder by folder, both sides
paired, so the first file is decided (and can be copied) long before the last folder
is listed.
"""

from __future__ import annotations

import asyncio
from dataclasses import dataclass, field

from .backend import Capabilities, NotFoundError
from .pool import SessionPool
from .roots import check_root, make_root
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

    async def src_side() -> None:
        found.src_caps = await src.capabilities()
        await check_root(src, "source")
        source_ok.set()

    async def dst_side() -> None:
        await source_ok.wait()  # not even a probe file on a wrong source password
        found.dst_caps = await dst.capabilities()
        if not dry_run:
            if await make_root(dst):
                # The probe could not test writes in a folder that did not exist: now
                # it can (else mtimes and resume would stay off for the first run).
                found.dst_caps = await dst.refresh_capabilities()
            return
        try:
            async with dst.session() as s:
                await s.stat("")
        except NotFoundError:
            found.dst_root_exists = False

    await run_together([src_side(), dst_side()])
    return found
