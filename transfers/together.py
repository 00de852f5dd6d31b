"""Run awaitables together; the first failure stops the others and is raised as itself.

Copy (both sides' listings, a file's segments) and verify (both roots, both reads of a
file, the listings and the comparing workers) all need "await these; if one fails,
cancel the rest, wait until every one has ended, raise the first error". asyncio's
``gather`` does not cancel the others; ``TaskGroup`` raises an ExceptionGroup, which the
CLI would have to open before it maps the error to an exit code. This does both.
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Iterable
from typing import Any, TypeVar

T = TypeVar("T")

__all__ = ["mark_seen", "run_together"]


def mark_seen(future: asyncio.Future[Any]) -> None:
    """A done callback: mark a finished future's failure as retrieved, so Python never
    prints it as "exception was never retrieved" (whoever awaits it still gets it)."""
    if not future.cancelled():
        future.exception()


async def run_together(aws: Iterable[Awaitable[T]]) -> list[T]:
    """Await all; on the first failure (or a cancel of the caller) cancel the others and
    wait until every one has ended, then raise the first error (a plain exception, not
    an ExceptionGroup: the CLI maps plain errors to exit codes)."""
    tasks = [asyncio.ensure_future(a) for a in aws]
    if not tasks:
        return []
    errors: list[BaseException] = []  # in the order the tasks failed

    def note(t: asyncio.Future[T]) -> None:
        if not t.cancelled() and t.exception() is not None:
            errors.append(t.exception())  # type: ignore[arg-type]

    for t in tasks:
        t.add_done_callback(note)
    try:
        await asyncio.wait(tasks, return_when=asyncio.FIRST_EXCEPTION)
    finally:
        for t in tasks:
            if not t.done():
                t.cancel()
        await _until_all_ended(tasks)
    errors += [t.exception() for t in tasks  # type: ignore[misc]
               if not t.cancelled() and t.exception() is not None and t.exception() not in errors]
    if errors:
        raise errors[0]
    if any(t.cancelled() for t in tasks):
        raise asyncio.CancelledError()
    return [t.result() for t in tasks]


async def _until_all_ended(tasks: list[asyncio.Future[T]]) -> None:
    """Wait for every task to end, even if the caller is cancelled meanwhile (then the
    cancel is passed on to the tasks and raised once they all ended)."""
    cancelled = False
    while pending := [t for t in tasks if not t.done()]:
        try:
            await asyncio.wait(pending)
        except asyncio.CancelledError:
            cancelled = True
            for t in pending:
                t.cancel()
    if cancelled:
        raise asyncio.CancelledError()
