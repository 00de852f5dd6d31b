"""``run(coro)``: ``asyncio.run`` for every command, with one change: a second interrupt
(Ctrl-C twice, Ctrl-C then SIGTERM) stops the process at once.

asyncio's own answer to a second SIGINT is to raise KeyboardInterrupt from its signal
handler, that is anywhere in the main thread, asyncio's internals included. Raised in
the middle of a future's callbacks it lost a task's wake-up, and the runner's closing
then waited for that task for ever: session 33's adversarial pass hung 3 copies in 18
(Ctrl-C, then SIGTERM 60 ms later, 100,000 small files), printed up to 137 lines of
"Task was destroyed" and "There is no current event loop" in others, and one exited
143. The user asked twice: the process now ends there, as a kill -9 would, which fsmove
is built to survive (nothing at a final name is ever incomplete; the journal's commits
are in its WAL; a rerun resumes), with one line and exit 130.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import signal
import sys
import threading
from collections.abc import Coroutine, Iterator
from typing import Any, TypeVar

from fsmove.entry import stop_signals
from fsmove.exitcodes import ExitCode

T = TypeVar("T")

#: How long the last line may take to leave (a reader that stopped reading a full pipe:
#: ``-v 2>&1 | less`` left alone) before the process ends without it.
LAST_LINE_WITHIN = 0.5

_stopping = False


def stop_at_once() -> None:
    """One line, the cursor shown again (a live display hides it), exit 130 now. The
    line is written by a thread given ``LAST_LINE_WITHIN``: written here, a full pipe
    blocked the process in ``write`` for ever, and every later signal entered here and
    blocked too (the pass on session 33's own changes). A signal while it waits ends
    the process at once."""
    global _stopping
    if _stopping:
        os._exit(int(ExitCode.INTERRUPTED))
    _stopping = True
    from fsmove.cli import invoked_command
    from fsmove.command_entry import READ_ONLY_COMMANDS

    if invoked_command(sys.argv[1:]) in READ_ONLY_COMMANDS:
        rest = "nothing was changed; rerun the same command to start again"
    else:
        rest = "what the journal recorded is kept; rerun the same command to resume"
    line = f"fsmove: error: interrupted again: stopped at once; {rest}\n"
    with contextlib.suppress(OSError, ValueError):
        if sys.stderr is not None and sys.stderr.isatty():
            line = "\x1b[?25h\r\n" + line
    writer = threading.Thread(target=_write_last_line, args=(line,), daemon=True)
    writer.start()
    writer.join(LAST_LINE_WITHIN)
    os._exit(int(ExitCode.INTERRUPTED))


def _write_last_line(line: str) -> None:
    with contextlib.suppress(OSError, ValueError):
        os.write(2, line.encode("utf-8", "replace"))  # no stderr: the exit code says it


class _Runner(asyncio.Runner):
    """asyncio's runner; the first interrupt cancels the main task as before (every
    task unwinds, the journal records "interrupted", the JSON stream ends), a second
    one stops at once."""

    def _on_sigint(self, signum: int, frame: object, main_task: asyncio.Task[Any]) -> None:
        if getattr(self, "_interrupt_count", 0) >= 1 or main_task.done():
            stop_at_once()
        super()._on_sigint(signum, frame, main_task)  # type: ignore[misc]


def run(main: Coroutine[Any, Any, T]) -> T:
    """``asyncio.run(main)``, a second interrupt stopping at once (module docstring).
    An interrupt while the loop closes (its tasks cancelled, its async generators
    finalised) stops at once too: arriving as KeyboardInterrupt there, it left "Task was
    destroyed but it is pending!" behind the run's one line."""
    runner = _Runner()
    interrupted = False
    try:
        return runner.run(main)
    except KeyboardInterrupt:
        interrupted = True
        raise
    finally:
        with _closing_interrupts():
            runner.close()
        if interrupted:
            exit_on_further_interrupts()


def exit_on_further_interrupts() -> None:
    """The run is ending as interrupted, its line about to be printed: another signal
    from here on only ends the process at once, with that code and nothing more.
    (Arriving as KeyboardInterrupt it was "Exception ignored in ..." with a traceback
    inside a weakref callback; ignored outright, a last line blocked on a full pipe
    could never be stopped but by kill -9.)"""
    if threading.current_thread() is not threading.main_thread():
        return
    for signum in stop_signals():
        with contextlib.suppress(ValueError, OSError):
            signal.signal(signum, _exit_interrupted)


def _exit_interrupted(_signum: int, _frame: object) -> None:
    os._exit(int(ExitCode.INTERRUPTED))


@contextlib.contextmanager
def _closing_interrupts() -> Iterator[None]:
    main = threading.current_thread() is threading.main_thread()
    if not main or signal.getsignal(signal.SIGINT) is not signal.default_int_handler:
        yield
        return
    signal.signal(signal.SIGINT, lambda _signum, _frame: stop_at_once())
    try:
        yield
    finally:
        signal.signal(signal.SIGINT, signal.default_int_handler)
