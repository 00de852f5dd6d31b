"""A producer task's items as an async iterator, safe to leave early.

The walk and the march both run their listings in a task that puts results on a
bounded queue, and hand the queue's items to one consumer. The consumer may stop
early (a copy whose destination refused a folder stops taking the march's folders):
its ``aclose()`` then cancels the producer, and the producer must end at once. It must
never wait to tell the consumer anything then, because nobody reads the queue any more
and it may be full: such a wait hung ``fsmove copy`` for good on a slow machine (a
vsftpd destination refusing MKD, ``tests/test_first_runs.py``).
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Awaitable
from typing import TypeVar

T = TypeVar("T")

__all__ = ["produced"]


async def produced(
    out: asyncio.Queue[T | BaseException | None], work: Awaitable[None]
) -> AsyncIterator[T]:
    """Run ``work`` (which puts items on ``out``) in a task and yield what it puts; its
    error is raised here, in the consumer. Leaving early cancels ``work`` and waits
    until it has ended."""

    async def run() -> None:
        try:
            await work
        except asyncio.CancelledError:
            raise  # the consumer left: waiting on its (maybe full) queue would hang
        except BaseException as exc:
            await out.put(exc)  # the consumer raises it and reads no further
            return
        await out.put(None)

    task = asyncio.create_task(run())
    try:
        while True:
            item = await out.get()
            if item is None:
                break
            if isinstance(item, BaseException):
                raise item
            yield item
    finally:
        if not task.done():
            task.cancel()
            try:
                await task
            except asyncio.CancelledError:
                me = asyncio.current_task()
                if me is not None and me.cancelling():
                    raise  # the consumer is cancelled itself, not only its producer
            except BaseException:  # the consumer left: nobody wants the error
                pass
