"""Where every task of a running fsmove is waiting, on demand (a debugging aid).

With ``FSMOVE_TASK_DUMP=1`` in the environment, ``kill -USR1 <pid>`` prints the stack
of every asyncio task to stderr. It is how a stalled transfer is diagnosed without
stopping it; nothing is printed otherwise (and stacks never hold passwords: they show
code lines, not values)."""

from __future__ import annotations

import asyncio
import io
import os
import signal
import sys


def _dump() -> None:
    out = io.StringIO()
    tasks = asyncio.all_tasks()
    print(f"--- fsmove task dump: {len(tasks)} tasks ---", file=out)
    for task in tasks:
        print(f"* {task.get_name()} {task.get_coro()!r}", file=out)
        task.print_stack(limit=30, file=out)
        # The awaits below the task's own frame (print_stack shows that frame only).
        awaited = getattr(task.get_coro(), "cr_await", None)
        depth = 0
        while awaited is not None and depth < 30:
            frame = getattr(awaited, "cr_frame", None) or getattr(awaited, "gi_frame", None)
            if frame is not None:
                print(f"    awaits {frame.f_code.co_qualname} "
                      f"({frame.f_code.co_filename}:{frame.f_lineno})", file=out)
            else:
                print(f"    awaits {awaited!r:.200}", file=out)
            awaited = (getattr(awaited, "cr_await", None)
                       or getattr(awaited, "gi_yieldfrom", None))
            depth += 1
    sys.stderr.write(out.getvalue())
    sys.stderr.flush()


def install() -> None:
    """Register the SIGUSR1 handler on the running loop, when asked for."""
    if os.environ.get("FSMOVE_TASK_DUMP") != "1":
        return
    asyncio.get_running_loop().add_signal_handler(signal.SIGUSR1, _dump)
