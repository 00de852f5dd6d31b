"""The retry policy and the limits (transfers/policy.py): today's values, in one place."""

from __future__ import annotations

import asyncio
import dataclasses
from pathlib import Path

import pytest

from fsmove.transfers.backend import Session, TooManySessionsError
from fsmove.transfers.decorators import StoreDecorator
from fsmove.transfers.endpoint import parse_endpoint
from fsmove.transfers.local import LocalStore
from fsmove.transfers.policy import (
    DEFAULT_SESSIONS,
    FILE_RETRIES,
    READ_RETRIES,
    TOO_MANY_SESSIONS_RETRIES,
    Limits,
    RetryPolicy,
)
from fsmove.transfers.pool import SessionPool


def test_file_retries_are_the_engines_five_retries_doubling_from_1s_to_30s() -> None:
    assert FILE_RETRIES == RetryPolicy()
    assert [FILE_RETRIES.delay(n) for n in range(1, 8)] == [1, 2, 4, 8, 16, 30, 30]
    assert not FILE_RETRIES.gives_up(5)
    assert FILE_RETRIES.gives_up(6)
    assert FILE_RETRIES.attempts == 6
    with pytest.raises(ValueError):
        FILE_RETRIES.delay(0)  # retries are counted from 1


def test_a_chosen_first_delay_doubles_up_to_the_cap() -> None:
    policy = RetryPolicy(retries=3, first_delay=0.25, max_delay=1.0)
    assert [policy.delay(n) for n in (1, 2, 3, 4)] == [0.25, 0.5, 1.0, 1.0]
    assert policy.delay(10_000) == 1.0  # no overflow on a run that goes on all night
    # A first delay above the cap (--retry-delay 60) is capped from the first retry.
    assert RetryPolicy(first_delay=60.0).delay(1) == 30.0


def test_the_count_of_failures_restarts_when_an_attempt_got_further() -> None:
    policy = RetryPolicy(retries=2)
    retry = 0
    # Two failures that got nowhere, then one that moved: the count starts over.
    for progressed in (False, False, True, False):
        retry = policy.next_attempt(retry, progressed=progressed)
        assert not policy.gives_up(retry)
    assert retry == 2
    retry = policy.next_attempt(retry, progressed=False)
    assert policy.gives_up(retry)


def test_verify_reads_three_times_at_once() -> None:
    assert READ_RETRIES.attempts == 3
    assert [READ_RETRIES.delay(n) for n in (1, 2)] == [0, 0]
    assert READ_RETRIES.gives_up(3)


def test_too_many_sessions_backs_off_half_a_second_doubling_to_8s_five_times() -> None:
    delays = [TOO_MANY_SESSIONS_RETRIES.delay(n) for n in range(1, 6)]
    assert delays == [0.5, 1.0, 2.0, 4.0, 8.0]
    assert TOO_MANY_SESSIONS_RETRIES.gives_up(6)


@pytest.mark.parametrize(
    "kwargs", [{"retries": -1}, {"first_delay": -1.0}, {"max_delay": -1.0}]
)
def test_a_retry_policy_refuses_nonsense(kwargs: dict[str, float]) -> None:
    with pytest.raises(ValueError):
        RetryPolicy(**kwargs)  # type: ignore[arg-type]


def test_the_default_limits_are_todays_bounds() -> None:
    limits = Limits()
    assert limits.files_at_once == 512
    assert limits.small_bytes_at_once == 96 * 1024 * 1024
    assert limits.streams_at_once == 16
    assert limits.segments_per_file == 4
    assert limits.pieces_per_pipe == 8
    assert limits.bytes_per_pipe == 4 * 1024 * 1024
    assert limits.folders_made_at_once == 8
    assert limits.listings_at_once == 16
    assert limits.files_verified_at_once == 8
    assert limits.verify_listings_at_once == 8
    assert limits.big_files_at_once == 4
    assert dict(DEFAULT_SESSIONS) == {"ftp": 32, "ftps": 32, "sftp": 8, "file": 16}


def test_session_caps_are_the_chosen_ones_or_the_schemes_default() -> None:
    limits = Limits(dst_sessions=3)
    assert limits.session_cap("src", "sftp") == 8
    assert limits.session_cap("dst", "sftp") == 3
    assert not limits.session_cap_chosen("src")
    assert limits.session_cap_chosen("dst")


def test_limits_are_frozen_and_refuse_zero() -> None:
    with pytest.raises(dataclasses.FrozenInstanceError):
        Limits().files_at_once = 1  # type: ignore[misc]
    with pytest.raises(ValueError, match="streams_at_once"):
        Limits(streams_at_once=0)
    assert Limits(files_at_once=1, streams_at_once=1).big_files_at_once == 1


class RefusingStore(StoreDecorator):
    """A real local store that refuses its first ``refusals`` connections as "too many"
    (what an FTP server at its connection cap answers: 421)."""

    def __init__(self, inner: LocalStore, refusals: int) -> None:
        super().__init__(inner)
        self.refusals = refusals

    async def connect(self) -> Session:
        if self.refusals > 0:
            self.refusals -= 1
            raise TooManySessionsError("421 too many connections")
        return await super().connect()


@pytest.mark.parametrize("refusals", [2, 3])
def test_the_pool_retries_a_too_many_refusal_as_its_policy_says(
    tmp_path: Path, refusals: int
) -> None:
    (tmp_path / "f.txt").write_bytes(b"x")
    store = RefusingStore(LocalStore(parse_endpoint(str(tmp_path))), refusals)
    # Two retries with no wait: a third refusal in a row is final.
    pool = SessionPool(store, max_sessions=2,
                       too_many_retries=RetryPolicy(retries=2, first_delay=0, max_delay=0))

    async def go() -> int:
        try:
            async with pool.session() as s:
                return (await s.stat("f.txt")).size
        finally:
            await pool.aclose()

    if refusals == 2:
        assert asyncio.run(go()) == 1
    else:
        with pytest.raises(TooManySessionsError):
            asyncio.run(go())
    assert store.refusals == 0
    assert SessionPool(store, max_sessions=1).too_many_retries is TOO_MANY_SESSIONS_RETRIES


def test_a_retry_pause_ends_at_once_in_a_task_being_cancelled() -> None:
    """A library that swallowed a cancel (asyncio.wait_for before 3.12, under asyncssh's
    connect) handed back a refused connection instead; the retry then slept its backoff
    (~30 s) before the failing run could stop (session 32)."""
    import asyncio
    import contextlib

    from fsmove.transfers.policy import pause_before_retry

    async def swallows_then_retries() -> None:
        with contextlib.suppress(asyncio.CancelledError):  # swallowed, as the library did
            await asyncio.sleep(10)
        await pause_before_retry(30)

    async def go() -> bool:
        task = asyncio.ensure_future(swallows_then_retries())
        await asyncio.sleep(0)
        task.cancel()
        for _ in range(3):  # loop turns, not time: a 30 s sleep would still be pending
            await asyncio.sleep(0)
        done = task.done()
        task.cancel()
        with pytest.raises(asyncio.CancelledError):
            await task
        return done

    assert asyncio.run(go())
