"""Errors raised above the backend layer, each with the exit code it maps to."""

from __future__ import annotations

from .exitcodes import ExitCode


class FsmoveError(Exception):
    """A one-line, user-facing error (what, why, what next). Never holds a secret."""

    exit_code = ExitCode.ERROR


class UsageError(FsmoveError):
    exit_code = ExitCode.USAGE


class ConfigError(FsmoveError):
    """Missing credentials, unreadable config: exit 5."""

    exit_code = ExitCode.AUTH


class JobLockedError(FsmoveError):
    """Another fsmove process runs the same job right now."""

    exit_code = ExitCode.ERROR
