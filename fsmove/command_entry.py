"""The one entry wrapper every command runs in (httpie's ``core.main`` model): the
command's body returns an exit code or raises, and here, once, any exception becomes one
line on stderr (``fsmove: error: …``, a traceback only with ``--debug``) and its exit
code (fsmove/exitcodes.py). A command that streams (copy, resume, verify) opens its
output through the run, so that a fatal error or Ctrl-C first erases the live display and
ends the JSON stream and the log file with the outcome."""

from __future__ import annotations

import contextlib
import sys
from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING, NoReturn

import typer

from fsmove.errors import FsmoveError, UsageError
from fsmove.exitcodes import ExitCode, exit_code_for_error
from fsmove.printable import printable
from fsmove.transfers.backend import BackendError
from fsmove.transfers.state_dir import StateDirError

if TYPE_CHECKING:  # imported when a streaming command runs (start-up time)
    from fsmove.output import CommandOutput


#: Commands that change nothing: an interruption has nothing to resume.
READ_ONLY_COMMANDS = frozenset({"verify", "dns", "plan", "status"})


def error_message(exc: BaseException, command: str | None = None) -> str:
    """The one line a user sees for ``exc`` (after ``fsmove: error: ``); ``command``: the
    command that was running, when known."""
    if isinstance(exc, KeyboardInterrupt) and command in READ_ONLY_COMMANDS:
        # (Before session 32 an interrupted verify spoke of a journal to resume.)
        msg = "interrupted: nothing was changed; rerun the same command to start again"
    elif isinstance(exc, KeyboardInterrupt):
        msg = "interrupted: the journal is saved; rerun the same command to resume"
    elif getattr(exc, "stops_the_run", False) and command in READ_ONLY_COMMANDS:
        msg = f"{exc}; nothing was changed, rerun the same command to start again"
    elif getattr(exc, "stops_the_run", False):
        msg = f"{exc}; rerun the same command to resume"
    elif isinstance(exc, FsmoveError | BackendError | StateDirError):
        msg = str(exc)
    elif isinstance(exc, OSError):
        msg = f"{exc.strerror or exc}" + (f": {exc.filename}" if exc.filename else "")
    else:
        msg = f"internal error: {exc.__class__.__name__}: {exc} (rerun with --debug for details)"
    return printable(" ".join(msg.split()))


def fail(exc: BaseException, output: CommandOutput | None = None, *,
         debug: bool = False, command: str | None = None) -> NoReturn:
    """Print ``exc`` as one line and exit with its code. ``output``, the command's
    output, erases its live display first (the error never lands on a bar's line) and
    ends its JSON stream and log file with the outcome. ``debug``: the traceback too."""
    code = exit_code_for_error(exc)
    if isinstance(exc, KeyboardInterrupt):
        from fsmove.event_loop import exit_on_further_interrupts

        exit_on_further_interrupts()
    msg = error_message(exc, command or (output.command if output is not None else None))
    if output is not None:
        output.fatal(msg, int(code), interrupted=isinstance(exc, KeyboardInterrupt))
    if debug:
        import traceback

        traceback.print_exception(exc)
    if sys.stderr is not None:
        # (stderr gone too: the exit code says it)
        with contextlib.suppress(OSError, ValueError):
            print(f"fsmove: error: {msg}", file=sys.stderr, flush=True)
    raise SystemExit(int(code))


class CommandRun:
    """One command being run: the output it opened, if any (closed with the exit code,
    or told the fatal error)."""

    def __init__(self) -> None:
        self.output: CommandOutput | None = None

    def open_output(self, *, command: str, quiet: bool, verbose: bool, json_output: bool,
                    stats: str | None, log_file: Path | None) -> CommandOutput:
        """The command's output, from the options every streaming command shares."""
        from fsmove.output import CommandOutput, OutputSettings, parse_interval

        if quiet and verbose:
            raise UsageError("--quiet and --verbose exclude each other")
        self.output = CommandOutput(
            OutputSettings(quiet=quiet, verbose=verbose, json=json_output,
                           stats=parse_interval(stats) if stats is not None else None,
                           log_file=log_file),
            command=command,
        )
        return self.output


def debug_asked(ctx: typer.Context) -> bool:
    """Whether ``fsmove --debug`` was given (an option of the root command)."""
    return bool(ctx.find_root().params.get("debug"))


def run_command(ctx: typer.Context, body: Callable[[CommandRun], ExitCode]) -> NoReturn:
    """Run a command's ``body`` and exit with its code; every exception, Ctrl-C
    included, ends here as one line and its exit code."""
    run = CommandRun()
    try:
        code = body(run)
    except (Exception, KeyboardInterrupt) as exc:
        fail(exc, run.output, debug=debug_asked(ctx), command=ctx.info_name)
    if run.output is not None:
        try:
            run.output.close(code)
        except (Exception, KeyboardInterrupt) as exc:
            # Its last lines could not be written (``--json | head -c 10``): before
            # session 33 a traceback. The command itself had ended.
            fail(exc, None, debug=debug_asked(ctx), command=ctx.info_name)
    raise SystemExit(int(code))
