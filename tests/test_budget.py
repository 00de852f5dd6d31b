"""``transfers/budget.py``: small files in flight bounded by their sizes, first come
first served, and never a byte leaked by a cancelled waiter. Event-driven: no test
waits on time."""

from __future__ import annotations

import asyncio

import pytest

from fsmove.transfers.budget import ByteBudget


async def _turns(n: int = 5) -> None:
    for _ in range(n):
        await asyncio.sleep(0)


def test_holds_stay_under_the_limit_and_come_in_order() -> None:
    async def go() -> None:
        budget = ByteBudget(100)
        order: list[str] = []
        a = await budget.acquire(60)
        b = asyncio.ensure_future(budget.acquire(50))  # does not fit beside a
        c = asyncio.ensure_future(budget.acquire(10))  # would fit, but b came first
        b.add_done_callback(lambda _: order.append("b"))
        c.add_done_callback(lambda _: order.append("c"))
        await _turns()
        assert not b.done() and not c.done() and budget.held == 60
        budget.release(a)
        await _turns()
        assert order == ["b", "c"] and budget.held == 60
        budget.release(await b)
        budget.release(await c)
        assert budget.held == 0

    asyncio.run(go())


def test_a_hold_bigger_than_the_budget_runs_alone() -> None:
    async def go() -> None:
        budget = ByteBudget(10)
        small = await budget.acquire(5)
        big = asyncio.ensure_future(budget.acquire(50))
        await _turns()
        assert not big.done()
        budget.release(small)
        assert await big == 50 and budget.held == 50
        budget.release(50)
        assert await budget.acquire(0) == 0  # an empty file takes nothing

    asyncio.run(go())


@pytest.mark.parametrize("granted_first", [False, True])
def test_a_cancelled_waiter_leaks_nothing(granted_first: bool) -> None:
    """Cancelled while waiting, or right after its grant (before it ran): the bytes
    come back and the next waiter gets in."""
    async def go() -> None:
        budget = ByteBudget(100)
        first = await budget.acquire(80)
        waiter = asyncio.ensure_future(budget.acquire(50))
        after = asyncio.ensure_future(budget.acquire(40))
        await _turns()
        if granted_first:
            budget.release(first)  # grants the waiter: it has not run yet
            waiter.cancel()
        else:
            waiter.cancel()
            await _turns()
            budget.release(first)
        with pytest.raises(asyncio.CancelledError):
            await waiter
        assert await after == 40
        assert budget.held == 40

    asyncio.run(go())
