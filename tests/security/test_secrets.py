"""No password anywhere: every test of the fault and security suites ends with the leak
check of its ``fsmove`` runner (stdout, stderr, every file fsmove wrote: journal with its
WAL, reports, logs; the argv of every child process). These tests drive the paths where
a secret could slip out on purpose: a full copy with verification and reports, status,
resume, failed logins. The demo, which starts fsmove children with passwords, is checked
the same way by its end-to-end test (tests/test_demo.py: one demo run for both)."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

from tests.faults.fsmove_run import FsmoveRunner
from tests.servers import RunningServer, make_tree


def test_copy_verify_status_resume_leak_nothing(
    fsmove: FsmoveRunner, tmp_path: Path, vsftpd_server: RunningServer,
    sshd_server: RunningServer, fresh_subdir: Callable[[RunningServer], RunningServer],
) -> None:
    src = fresh_subdir(vsftpd_server)
    make_tree(src, {"a.txt": b"alpha", "dir/b.bin": bytes(range(256)) * 40})
    dst = tmp_path / "dst"
    journal = fsmove.workdir / "job.db"
    reports = [fsmove.workdir / "report.json", fsmove.workdir / "report.html"]
    env = {"FSMOVE_SRC_PASSWORD": src.password}
    fsmove.secret(src.password)
    run = fsmove.run("copy", src.url(), str(dst), "--journal", str(journal), "--verify",
                     *(x for r in reports for x in ("--report", str(r))), "--json", env=env)
    assert run.code == 0, str(run)
    assert all(r.exists() for r in reports)
    for args in (("status",), ("status", str(journal)), ("status", str(journal), "--json")):
        assert fsmove.run(*args).code == 0
    assert fsmove.run("resume", str(journal), "-q", env=env).code == 0
    # The default journal location (XDG state dir) too, and verify on its own.
    assert fsmove.run("copy", src.url(), str(dst), "-q", env=env).code == 0
    assert fsmove.run("verify", src.url(), str(dst), "--json", env=env).code == 0
    # Refused logins, with tracebacks on (--debug must not print the password either).
    wrong = "Leak-" + src.password[::-1]
    fsmove.secret(wrong)
    assert fsmove.run("--debug", "copy", src.url(), str(tmp_path / "x"), "-q",
                      env={"FSMOVE_SRC_PASSWORD": wrong}).code == 5
    sftp = fresh_subdir(sshd_server)
    bad = fsmove.run("--debug", "copy", sftp.url(), str(tmp_path / "y"), "--known-hosts",
                     str(sshd_server.known_hosts), "-q",
                     env={"FSMOVE_SRC_PASSWORD": wrong})
    assert bad.code == 5, str(bad)
    assert fsmove.run("verify", src.url(), str(dst), "--quick",
                      env={"FSMOVE_SRC_PASSWORD": wrong}).code == 5
    fsmove.scanned.append(dst)
    fsmove.check_no_leaks()
