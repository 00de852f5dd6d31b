"""The ``fsmove`` script's first lines: Ctrl-C or SIGTERM while Python is still importing
fsmove (its first ~50 ms, longer on a loaded machine) ends the process with fsmove's
one line and exit 130, nothing having been done yet. Before session 33 such a signal
printed a 20-30 line traceback of whichever import it landed in and exited 1, -2 or
-15 (4 runs in 22 in an adversarial pass). ``cli.main`` installs the real handlers
(an interruption of a running command) as soon as the command is imported."""

from __future__ import annotations

import os
import signal

_LINE = b"fsmove: error: interrupted: nothing was changed; rerun the same command\n"


def _while_starting(_signum: int, _frame: object) -> None:
    try:
        os.write(2, _LINE)
    except OSError:
        pass
    os._exit(130)


def main() -> None:
    for signum in (signal.SIGINT, signal.SIGTERM):
        try:
            signal.signal(signum, _while_starting)
        except (OSError, ValueError):
            pass
    from fsmove.cli import main as run

    run()
