"""The `fsmove` command line: the Typer app, its global options and its commands.

Each command's Typer function lives with the command (fsmove/commands/*); every one runs
its body in the one entry wrapper (fsmove/command_entry.py), the one place where an
exception becomes its line and its exit code (fsmove/exitcodes.py). This module only
builds the app, and ``main`` turns Click's usage errors and signals into the same forms.
"""

from __future__ import annotations

import signal
import sys
import warnings
from typing import Annotated

import typer

from fsmove import __version__, gc_settings, plain_coercion
from fsmove.command_entry import fail
from fsmove.commands.copy_command import copy_command
from fsmove.commands.cutover_command import cutover_command
from fsmove.commands.demo_command import demo_command
from fsmove.commands.dns_command import dns_command
from fsmove.commands.migrate_command import migrate_command
from fsmove.commands.plan_command import plan_command
from fsmove.commands.resume_command import resume_command
from fsmove.commands.status_command import status_command
from fsmove.commands.verify_command import verify_command
from fsmove.exitcodes import EXIT_CODES_HELP, ExitCode
from fsmove.help_text import tidy_help

app = typer.Typer(
    name="fsmove",
    help=(
        "Move a storage bucket (FTP, FTPS, SFTP or local) to another place without losing "
        "a byte: parallel, resumable, verified.\n\n" + EXIT_CODES_HELP
    ),
    no_args_is_help=True,
    pretty_exceptions_enable=False,
    rich_markup_mode=None,
    add_completion=True,
    context_settings={"help_option_names": ["-h", "--help"]},
)


def _version(value: bool) -> None:
    if value:
        print(f"fsmove {__version__}")
        raise typer.Exit()


@app.callback()
def main_options(
    version: Annotated[
        bool,
        typer.Option("--version", callback=_version, is_eager=True, help="Show the version."),
    ] = False,
    debug: Annotated[
        bool, typer.Option("--debug", help="Show tracebacks on errors (never passwords).")
    ] = False,
) -> None:
    """``--debug`` is read by the entry wrapper from the root command's parameters."""


# In the order `fsmove --help` lists them.
for _name, _function in (("copy", copy_command), ("verify", verify_command),
                         ("resume", resume_command), ("status", status_command),
                         ("dns", dns_command), ("demo", demo_command), ("plan", plan_command),
                         ("cutover", cutover_command), ("migrate", migrate_command)):
    app.command(_name)(_function)


def _sigterm(_signum: int, frame: object) -> None:
    """SIGTERM is Ctrl-C. Inside ``asyncio.run`` the SIGINT handler is asyncio's own: it
    cancels the main task, so every task unwinds at an await (no journal record is cut
    in half), the run records "interrupted" and the JSON stream gets its summary, then
    KeyboardInterrupt ends the command with 130. Elsewhere it raises KeyboardInterrupt
    at once (a second signal too: the user insists)."""
    handler = signal.getsignal(signal.SIGINT)
    if callable(handler) and handler is not signal.default_int_handler:
        handler(signal.SIGINT, frame)
        return
    raise KeyboardInterrupt


def _usage_error_types() -> tuple[type[BaseException], type[BaseException]]:
    """Click's UsageError and NoArgsIsHelpError: vendored by Typer >= 0.2x, the click
    package before."""
    try:
        from typer._click import exceptions as click_exceptions
    except ImportError:  # Typer with click as a separate package
        from click import exceptions as click_exceptions  # type: ignore[no-redef]
    return click_exceptions.UsageError, click_exceptions.NoArgsIsHelpError


def quiet_library_warnings(argv: list[str]) -> None:
    """Python warnings raised inside libraries (cryptography 51 deprecating DSA, seen
    by every asyncssh import, say) are for fsmove's developers, not its users: printed,
    they break the one-line error contract and scare people for nothing. ``--debug``
    shows them, and so does an explicit ``-W`` or ``PYTHONWARNINGS`` (the standard
    library's advice for applications: leave ``sys.warnoptions`` alone when set)."""
    if not sys.warnoptions and "--debug" not in argv:
        warnings.simplefilter("ignore")


def main() -> None:
    quiet_library_warnings(sys.argv[1:])
    plain_coercion.install()  # option values without pydantic (start-up time)
    # Ctrl-C is KeyboardInterrupt even when fsmove was started with SIGINT ignored (a
    # non-interactive shell's background job, some CI runners): Python keeps an inherited
    # SIG_IGN, and an interrupt would then be lost (a watch running to its timeout, a
    # migration going on).
    signal.signal(signal.SIGINT, signal.default_int_handler)
    signal.signal(signal.SIGTERM, _sigterm)
    try:  # a signal while the command is still being built is an interruption too
        usage_error, no_args = _usage_error_types()
        command = typer.main.get_command(app)
        tidy_help(command)
    except KeyboardInterrupt as exc:
        fail(exc)
    gc_settings.apply()
    try:
        result = command.main(prog_name="fsmove", standalone_mode=False)
    except no_args as exc:
        exc.show()  # a command given without its arguments: its help
        raise SystemExit(int(ExitCode.USAGE)) from None
    except usage_error as exc:
        ctx = getattr(exc, "ctx", None)
        where = ctx.command_path if ctx is not None else "fsmove"
        message = " ".join(exc.format_message().split())
        print(f"fsmove: error: {message} (see '{where} --help')", file=sys.stderr)
        raise SystemExit(int(ExitCode.USAGE)) from None
    except KeyboardInterrupt as exc:
        fail(exc)
    if result == ExitCode.INTERRUPTED:
        # Every command exits through its wrapper's SystemExit, never by returning: 130
        # returned is Typer's own answer to a Ctrl-C or SIGTERM that landed in Click's
        # parsing, before the wrapper ran (Exit(130), silent). It gets fsmove's line.
        fail(KeyboardInterrupt())
    raise SystemExit(result if isinstance(result, int) else 0)


if __name__ == "__main__":
    main()
