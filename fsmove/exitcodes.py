"""The one list of exit codes (shown in ``fsmove --help`` and the README)."""

from __future__ import annotations

import enum

from fsmove.verify.results import Outcome


class ExitCode(enum.IntEnum):
    OK = 0
    #: An error that stopped the run (network, server refused, disk full...).
    ERROR = 1
    #: Bad command line: unknown option, malformed URL, invalid value.
    USAGE = 2
    #: The run finished but some files failed (they are listed; rerun to retry them).
    PARTIAL = 3
    #: Verification found differences between source and destination.
    MISMATCH = 4
    #: Authentication or configuration: wrong password, unknown host key, no credentials.
    AUTH = 5
    #: Interrupted (Ctrl-C, SIGTERM, SIGHUP unless ignored); the journal is kept, rerun.
    INTERRUPTED = 130


#: What a verification's outcome means for the command that ran it.
_VERIFICATION_EXIT_CODES = {
    Outcome.MATCH: ExitCode.OK,
    Outcome.MISMATCH: ExitCode.MISMATCH,
    # Nothing differs, some paths could not be read: the run is partial.
    Outcome.UNREADABLE: ExitCode.PARTIAL,
}


def verification_exit_code(outcome: Outcome) -> ExitCode:
    """0 when everything matched, 4 on any mismatch, 3 when paths could not be read."""
    return _VERIFICATION_EXIT_CODES[outcome]


EXIT_CODES_HELP = (
    "Exit codes: 0 ok; 1 error; 2 usage; 3 partial (some files failed); "
    "4 verification mismatch; 5 auth/config; 130 interrupted (journal flushed, rerun to resume)."
)


def exit_code_for_error(exc: BaseException) -> ExitCode:
    """The exit code of the exception that ended a command: the one mapping (the CLI's
    entry wrapper, fsmove/command_entry.py, is its only caller)."""
    # Imported here: the error types import this module.
    from fsmove.errors import FsmoveError
    from fsmove.transfers.backend import AuthError, UnsafePathError
    from fsmove.transfers.endpoint import EndpointError
    from fsmove.transfers.state_dir import StateDirError

    if isinstance(exc, KeyboardInterrupt):
        return ExitCode.INTERRUPTED
    if isinstance(exc, FsmoveError):
        return exc.exit_code
    if isinstance(exc, EndpointError | UnsafePathError | StateDirError):
        return ExitCode.USAGE
    if isinstance(exc, AuthError):
        return ExitCode.AUTH
    return ExitCode.ERROR
