"""The `fsmove` command line: the Typer app, its global options and its commands.

Each command's Typer function lives with the command (fsmove/commands/*); every one runs
its body in the one entry wrapper (fsmove/command_entry.py), the one place where an
exception becomes its line and its exit code (fsmove/exitcodes.py). This module only
builds the app, and ``main`` turns Click's usage errors and signals into the same forms.
"""

from __future__ import annotations

import importlib
import os
import signal
import sys
import warnings
from collections.abc import Callable
from typing import Annotated

import typer

from fsmove import __version__, gc_settings, hung_up, plain_coercion
from fsmove.command_entry import fail
from fsmove.entry import stop_signals
from fsmove.exitcodes import EXIT_CODES_HELP, ExitCode
from fsmove.help_text import tidy_help

#: The commands, in the order `fsmove --help` lists them; each is the function
#: ``NAME_command`` of ``fsmove/commands/NAME_command.py``.
COMMANDS = ("copy", "verify", "resume", "status", "dns", "demo", "plan", "cutover", "migrate")


def _version(value: bool) -> None:
    if value:
        print(f"fsmove {__version__}")
        raise typer.Exit()


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


CommandFunctions = list[tuple[str, Callable[..., None]]]


def command_functions(only: str | None = None) -> CommandFunctions:
    """Each command's name and Typer function (every one, or only ``only``), its module
    imported."""
    return [(name, getattr(importlib.import_module(f"fsmove.commands.{name}_command"),
                           f"{name}_command"))
            for name in COMMANDS if only is None or name == only]


def build_app(only: str | None = None, *,
              functions: CommandFunctions | None = None) -> typer.Typer:
    """The Typer app: every command, or only the one named ``only``. A run builds only
    the command it runs: Typer reads each command's signature and type hints when it
    builds it, and each command's module is imported for it (measured: 0.25 -> 0.23 s
    of CPU for a whole FTP copy of two 1 MiB files, 8 alternating runs, in every run's
    start before its first byte); ``--help``, completion and an unknown name get the
    whole app. ``functions``: ``command_functions(only)``, imported already."""
    app = typer.Typer(
        name="fsmove",
        help=(
            "Move a storage bucket (FTP, FTPS, SFTP or local) to another place without "
            "losing a byte: parallel, resumable, verified.\n\n" + EXIT_CODES_HELP
        ),
        no_args_is_help=True,
        pretty_exceptions_enable=False,
        rich_markup_mode=None,
        add_completion=True,
        context_settings={"help_option_names": ["-h", "--help"]},
    )
    app.callback()(main_options)
    for name, function in functions if functions is not None else command_functions(only):
        app.command(name)(function)
    return app


def invoked_command(args: list[str]) -> str | None:
    """The command ``args`` run (after the root's ``--debug``), or None where the whole
    app must answer (a root option such as ``--help`` or ``--version``, no command, a
    name that is not a command: Click's own error then lists the commands)."""
    for arg in args:
        if arg == "--debug":
            continue
        if arg.startswith("-"):
            return None
        return arg if arg in COMMANDS else None
    return None


_whole_app: typer.Typer | None = None


def __getattr__(name: str) -> typer.Typer:
    """``fsmove.cli.app``: the whole app, built on first use (tests, documentation)."""
    global _whole_app
    if name != "app":
        raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
    if _whole_app is None:
        _whole_app = build_app()
    return _whole_app


def _sigterm(_signum: int, frame: object) -> None:
    """SIGTERM (and SIGHUP, ``entry.stop_signals``) is Ctrl-C. Inside ``asyncio.run``
    the SIGINT handler is asyncio's own: it cancels the main task, so every task unwinds
    at an await (no journal record is cut in half), the run records "interrupted" and
    the JSON stream gets its summary, then KeyboardInterrupt ends the command with 130.
    Elsewhere it raises KeyboardInterrupt at once (a second signal too: the user
    insists)."""
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
    """Notices from libraries about their own future (cryptography 51 deprecating DSA,
    printed at every asyncssh import; deprecations; user and future warnings) are for
    fsmove's developers, not its users: printed, they break the one-line error contract
    and scare people for nothing. ``--debug`` shows them, and so does an explicit ``-W``
    or ``PYTHONWARNINGS`` (the standard library's advice for applications: leave
    ``sys.warnoptions`` alone when set). A ``RuntimeWarning`` stays visible: "coroutine
    ... was never awaited" is a bug in fsmove, which the tests look for on stderr."""
    if not sys.warnoptions and "--debug" not in argv:
        for category in (DeprecationWarning, PendingDeprecationWarning, FutureWarning,
                         UserWarning):
            warnings.filterwarnings("ignore", category=category)


def _streams_that_exist() -> None:
    """A standard stream closed before fsmove started (``2>&-``, ``>&-``) is None in
    Python: the first line written to it was "internal error: AttributeError:
    'NoneType' object has no attribute 'write'" after a copy that had done its work
    (session 33). It goes nowhere instead (the exit code still says how it ended); the
    file descriptor taken is the closed one, so the children get one too."""
    for name, mode in (("stdin", "r"), ("stdout", "w"), ("stderr", "w")):
        if getattr(sys, name) is None:
            setattr(sys, name, open(os.devnull, mode, encoding="utf-8"))


def main() -> None:
    _streams_that_exist()
    hung_up.install()  # a terminal closed under ``nohup fsmove ...``: silence, not exit 1
    quiet_library_warnings(sys.argv[1:])
    plain_coercion.install()  # option values without pydantic (start-up time)
    only = invoked_command(sys.argv[1:])
    # The command's module is imported before the signal handlers go in, as every one
    # was when this module imported them all at its top: a SIGTERM handled in the
    # middle of a C extension's import (``_ssl``) made Python report an ImportError
    # with a traceback (seen in CI, session 15).
    functions = command_functions(only)
    usage_error, no_args = _usage_error_types()
    try:  # from the handlers on, a signal is an interruption with its one line
        # Ctrl-C is KeyboardInterrupt even when fsmove was started with SIGINT ignored
        # (a non-interactive shell's background job, some CI runners): Python keeps an
        # inherited SIG_IGN, and an interrupt would then be lost (a watch running to its
        # timeout, a migration going on). Inside this ``try``: a SIGINT arriving as the
        # next handler goes in raised there, uncaught (seen in tests/faults/
        # test_signals.py under load: a traceback and exit -2).
        signal.signal(signal.SIGINT, signal.default_int_handler)
        for signum in stop_signals()[1:]:  # SIGTERM, SIGHUP unless ignored (nohup)
            signal.signal(signum, _sigterm)
        command = typer.main.get_command(build_app(only, functions=functions))
        tidy_help(command)
        gc_settings.apply()
        result = command.main(prog_name="fsmove", standalone_mode=False)
    except no_args as exc:
        exc.show()  # a command given without its arguments: its help
        raise SystemExit(int(ExitCode.USAGE)) from None
    except usage_error as exc:
        ctx = getattr(exc, "ctx", None)
        where = ctx.command_path if ctx is not None else "fsmove"
        from fsmove.printable import printable

        message = printable(" ".join(exc.format_message().split()))
        print(f"fsmove: error: {message} (see '{where} --help')", file=sys.stderr)
        raise SystemExit(int(ExitCode.USAGE)) from None
    except KeyboardInterrupt as exc:
        fail(exc, command=only)
    if result == ExitCode.INTERRUPTED:
        # Every command exits through its wrapper's SystemExit, never by returning: 130
        # returned is Typer's own answer to a Ctrl-C or SIGTERM that landed in Click's
        # parsing, before the wrapper ran (Exit(130), silent). It gets fsmove's line.
        fail(KeyboardInterrupt(), command=only)
    raise SystemExit(result if isinstance(result, int) else 0)


if __name__ == "__main__":
    main()
