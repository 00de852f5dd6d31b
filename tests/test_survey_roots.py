"""The survey's destination root: listed when it is there, made (not listed) when it is
missing, on real local stores (the survey's own logic: which listing the march gets)."""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from pathlib import Path

import pytest

from fsmove.transfers.backend import Capabilities, Entry, Store, TransientError
from fsmove.transfers.decorators import StoreDecorator
from fsmove.transfers.endpoint import parse_endpoint
from fsmove.transfers.local import LocalStore
from fsmove.transfers.policy import NO_RETRIES, RetryPolicy
from fsmove.transfers.pool import SessionPool
from fsmove.transfers.survey import Sides, open_sides
from fsmove.transfers.walk import list_folder

#: Bounds a wait that only a hang reaches (never a time that decides a test).
_BOUND_S = 20.0


async def survey(src: Path, dst: Path, *, sessions: int = 1,
                 wrap_dst: Callable[[Store], Store] = lambda store: store,
                 retry: RetryPolicy = NO_RETRIES,
                 ) -> tuple[Sides, list[str] | None]:
    """``open_sides`` between two local folders (``sessions`` a side; the destination's
    store wrapped by ``wrap_dst``): the sides and the names of the destination root's
    listing the march would get (None: none)."""
    s = SessionPool(LocalStore(parse_endpoint(str(src))), max_sessions=sessions)
    d = SessionPool(wrap_dst(LocalStore(parse_endpoint(str(dst)))), max_sessions=sessions)
    try:
        async with asyncio.timeout(_BOUND_S):
            sides = await open_sides(
                s, d, dry_run=False, retry=retry,
                list_dst_root=lambda: list_folder(d, "", before_capabilities=True))
            listing = sides.take_dst_root_listing()
            names = None if listing is None else [
                e.path for e in await listing if isinstance(e, Entry)]
            return sides, names
    finally:
        await asyncio.gather(s.aclose(), d.aclose())


def test_an_existing_destination_root_is_listed_during_the_survey(tmp_path: Path) -> None:
    src, dst = tmp_path / "src", tmp_path / "dst"
    src.mkdir()
    dst.mkdir()
    (dst / "there.txt").write_bytes(b"x")
    sides, names = asyncio.run(survey(src, dst))
    assert sides.dst_root_exists and names == ["there.txt"]


@pytest.mark.parametrize("sessions", [1, 2])
def test_a_missing_destination_root_is_made_and_not_listed(tmp_path: Path,
                                                           sessions: int) -> None:
    """First run into a root that is not there yet (one or two sessions a side): it is
    made on the session that looked at it, nothing is listed, no error escapes."""
    src, dst = tmp_path / "src", tmp_path / "new" / "deep"
    src.mkdir()
    sides, names = asyncio.run(survey(src, dst, sessions=sessions))
    assert not sides.dst_root_exists and names is None
    assert dst.is_dir()


class _ProbeLosesItsConnectionOnce(StoreDecorator):
    """The first capability probe meets a connection reset (as a proftpd data
    connection did once in CI); the next is the store's own."""

    probes = 0

    async def capabilities(self) -> Capabilities:
        type(self).probes += 1
        if type(self).probes == 1:
            raise TransientError("probe capabilities on 127.0.0.1: connection lost "
                                 "(ConnectionResetError)")
        return await self.inner.capabilities()


@pytest.mark.parametrize("retries", [0, 2])
def test_a_probe_that_lost_its_connection_is_run_again_as_a_file_is(
        tmp_path: Path, retries: int) -> None:
    """Before session 35 only the early FTP probe was retried: a reset during any
    other side's probe (SFTP, a dry run) failed the whole run. Now the job's retry
    policy applies; without retries the error is the run's, as before."""
    src, dst = tmp_path / "src", tmp_path / "dst"
    src.mkdir()

    class Wrapped(_ProbeLosesItsConnectionOnce):
        probes = 0

    policy = RetryPolicy(retries=retries, first_delay=0.0, max_delay=0.0)
    if retries == 0:
        with pytest.raises(TransientError):
            asyncio.run(survey(src, dst, wrap_dst=Wrapped, retry=policy))
        assert Wrapped.probes == 1
        return
    sides, _names = asyncio.run(survey(src, dst, wrap_dst=Wrapped, retry=policy))
    assert Wrapped.probes == 2 and sides.dst_settled and dst.is_dir()
