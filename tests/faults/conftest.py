"""The ``fsmove`` fixture: a runner whose every output and file is checked for leaked
secrets when the test ends (see ``fsmove_run``)."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.faults.fsmove_run import FsmoveRunner

#: Where tests/servers/account.py keeps the test account's password.
ACCOUNT_SECRET = Path("/var/lib/fsmove-servers/fsmovetest.password")


@pytest.fixture
def fsmove(tmp_path: Path) -> Iterator[FsmoveRunner]:
    runner = FsmoveRunner(tmp_path / "fsmove")
    yield runner
    if ACCOUNT_SECRET.exists():
        runner.secret(ACCOUNT_SECRET.read_text().strip())
    runner.check_no_leaks()
