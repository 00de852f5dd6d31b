"""FTP replies mapped to the error taxonomy (pure, no server), and one server's limit."""

from __future__ import annotations

import os
from collections.abc import Callable
from pathlib import Path

import pytest

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
from tests.copy_harness import run_copy_subprocess, side_for, tree_digests
from tests.servers import RunningServer, start_proftpd


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


def test_a_per_file_size_limit_is_not_a_full_disk() -> None:
    """proftpd ``MaxStoreFileSize``: "552 Transfer aborted. File too large" fails that
    file; a quota or a full disk (552 "Quota exceeded", "Exceeded storage allocation")
    still stops new files (``NoSpaceError``)."""
    too_large = err(552, "Transfer aborted. File too large")
    assert type(too_large) is PermanentError and "limit per file" in str(too_large)
    assert isinstance(err(552, "Quota exceeded: file too large for the quota"), NoSpaceError)
    assert isinstance(err(552, "Requested file action aborted. Exceeded storage allocation"),
                      NoSpaceError)


@pytest.mark.interop
def test_a_file_over_the_servers_size_limit_fails_alone(
        own_server: Callable[..., RunningServer], tmp_path: Path) -> None:
    """Before session 33 the 552 of proftpd's ``MaxStoreFileSize`` read as "the
    destination is full": the copy stopped starting files (3 of 203 copied, "free space
    and rerun"), and each rerun copied a few more."""
    server = own_server(start_proftpd, extra_config=["MaxStoreFileSize 4 Mb"])
    dst = side_for("proftpd", server, server.root, "dst")
    src = side_for("local", None, tmp_path / "src", "src")
    small = {f"d{i % 7}/f{i:03d}.txt": os.urandom(300) for i in range(60)}
    src.put({"big.bin": os.urandom(6 * 1024 * 1024), **small}, mtime=1_600_000_000)
    result = run_copy_subprocess(src, dst, "--workers", "2", journal=tmp_path / "job.db")
    assert result.exit_code == 3, result.output
    failed = dict(result.summary["failed"])  # type: ignore[arg-type]
    assert list(failed) == ["big.bin"], result.output
    assert "limit per file" in failed["big.bin"]
    assert result.summary["stopped"] is None, result.output
    copied = tree_digests(dst.root)
    assert sorted(copied) == sorted(small)
