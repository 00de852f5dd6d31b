"""A pytest plugin: with FSMOVE_NO_SKIPS=1 (CI and `bash run.sh test`), any skipped
test fails the run. Interoperability tests skip only when a server is not installed,
and a green run that silently did not talk to a server would hide exactly that."""

from __future__ import annotations

import os

import pytest

_skipped: list[str] = []


def pytest_runtest_logreport(report: pytest.TestReport) -> None:
    if report.skipped:
        _skipped.append(report.nodeid)


def pytest_sessionfinish(session: pytest.Session, exitstatus: int) -> None:
    if os.environ.get("FSMOVE_NO_SKIPS") == "1" and _skipped and exitstatus == 0:
        session.exitstatus = 1


def pytest_terminal_summary(terminalreporter: pytest.TerminalReporter) -> None:
    if os.environ.get("FSMOVE_NO_SKIPS") == "1" and _skipped:
        terminalreporter.write_line(
            f"FSMOVE_NO_SKIPS=1: {len(_skipped)} test(s) were skipped, which fails this run "
            "(install the servers with `bash .ci/install-servers.sh` as root):",
            red=True,
        )
        for nodeid in _skipped[:50]:
            terminalreporter.write_line(f"  skipped: {nodeid}", red=True)
