"""FTP replies mapped to the error taxonomy (pure: no server needed)."""

from __future__ import annotations

from fsmove.transfers.backend import (
    AuthError,
    NoSpaceError,
    NotFoundError,
    PermanentError,
    TooManySessionsError,
    TransientError,
)
from fsmove.transfers.ftp.client import Reply
from fsmove.transfers.ftp.errors import reply_error


def err(code: int, text: str) -> Exception:
    return reply_error(Reply(code, (text,)), where="host:21", action="write", path="a.txt")


def test_reply_codes_map_to_the_taxonomy() -> None:
    assert isinstance(err(421, "Too many users"), TooManySessionsError)
    assert isinstance(err(530, "Login incorrect."), AuthError)
    assert isinstance(err(452, "Insufficient storage"), NoSpaceError)
    assert isinstance(err(550, "No such file"), NotFoundError)
    assert isinstance(err(450, "Busy"), TransientError)
    assert type(err(500, "Syntax error")) is PermanentError


def test_vsftpd_oops_is_transient() -> None:
    """vsftpd ends the session after '500 OOPS' (e.g. no free passive port): retry."""
    e = err(500, "OOPS: vsf_sysutil_bind")
    assert isinstance(e, TransientError) and e.retryable
    assert "OOPS" in str(e)
