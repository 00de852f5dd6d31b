"""The ``fsmove`` script's first lines: Ctrl-C, SIGTERM or SIGHUP while Python is still importing
fsmove (its first ~50 ms, longer on a loaded machine) ends the process with fsmove's
one line and exit 130, nothing having been done yet. Before session 33 such a signal
printed a 20-30 line traceback of whichever import it landed in and exited 1, -2 or
-15 (4 runs in 22 in an adversarial pass). ``cli.main`` installs the real handlers
(an interruption of a running command) as soon as the command is imported."""

from __future__ import annotations

import os
import signal

_LINE = b"fsmove: error: interrupted: nothing was changed; rerun the same command\n"


def stop_signals() -> tuple[int, ...]:
    """The signals that interrupt a run as Ctrl-C does: SIGINT, SIGTERM, and SIGHUP (the
    terminal or the ssh session closed under a foreground copy) unless fsmove was
    started with it ignored (``nohup``, ``trap '' HUP``: the user asked to outlive the
    terminal, and that stays so). Before session 35 a hang-up ended the process as its
    default does: exit 129, no line, the run never recorded "interrupted" (safe as a
    kill -9 is, but a log that says nothing)."""
    wanted = [signal.SIGINT, signal.SIGTERM]
    try:
        if signal.getsignal(signal.SIGHUP) is not signal.SIG_IGN:
            wanted.append(signal.SIGHUP)
    except (OSError, ValueError):
        pass
    return tuple(wanted)


def _while_starting(_signum: int, _frame: object) -> None:
    try:
        os.write(2, _LINE)
    except OSError:
        pass
    os._exit(130)


def main() -> None:
    for signum in stop_signals():
        try:
            signal.signal(signum, _while_starting)
        except (OSError, ValueError):
            pass
    from fsmove.cli import main as run

    run()
