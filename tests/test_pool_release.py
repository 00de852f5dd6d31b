"""A borrower's return to the pool (``SessionPool.session``'s release), under
cancellation: whatever point a borrower is cancelled at (waiting for a session, holding
one, returning it while others wait for the pool's lock), every session comes back and
the next borrower gets one. The release is shielded only where it can suspend; the
usual return runs to its end at once (transfers/pool.py), and these tests cover both.

Real local stores; no timing: cancellations land after a counted number of event-loop
turns, so each run takes the same path."""

from __future__ import annotations

import asyncio
from pathlib import Path

import pytest

from fsmove.transfers.endpoint import parse_endpoint
from fsmove.transfers.local import LocalStore
from fsmove.transfers.pool import SessionPool


async def _turns(n: int) -> None:
    for _ in range(n):
        await asyncio.sleep(0)


@pytest.mark.parametrize("turns", range(8))
@pytest.mark.parametrize("sessions", [1, 3])
def test_cancelled_borrowers_return_every_session(tmp_path: Path, turns: int,
                                                  sessions: int) -> None:
    async def go() -> None:
        pool = SessionPool(LocalStore(parse_endpoint(str(tmp_path))), max_sessions=sessions)
        done = 0

        async def borrower(hold: int) -> None:
            nonlocal done
            async with pool.session() as session:
                await session.stat("")  # a real operation on the lent session
                await _turns(hold)
            done += 1

        try:
            tasks = [asyncio.create_task(borrower(i % 3)) for i in range(40)]
            await _turns(turns)
            for task in tasks[::3]:
                task.cancel()
            results = await asyncio.gather(*tasks, return_exceptions=True)
            failures = [r for r in results if isinstance(r, BaseException)
                        and not isinstance(r, asyncio.CancelledError)]
            assert failures == []
            assert done >= len(tasks) - len(tasks[::3])
            assert pool.stats.opened <= sessions
            # every session is back: as many borrowers as sessions get one at once
            async with asyncio.timeout(10):
                held = [pool.session() for _ in range(sessions)]
                for cm in held:
                    await cm.__aenter__()
                for cm in held:
                    await cm.__aexit__(None, None, None)
        finally:
            await pool.aclose()

    asyncio.run(go())
