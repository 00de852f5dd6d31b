"""A user's first runs: destination folders that cannot be made end the copy with one
error line, never with stray "Task exception was never retrieved" tracebacks; a source
that fails its check leaves the destination as it was."""

from __future__ import annotations

import os
from collections.abc import Callable
from dataclasses import replace
from pathlib import Path

import pytest

from tests.copy_harness import Side, put_files, run_copy_subprocess, side_for
from tests.servers import RunningServer

pytestmark = pytest.mark.interop


@pytest.mark.parametrize("server_fixture", ["sshd_server", "vsftpd_server", "proftpd_server"])
def test_folders_that_cannot_be_made_give_one_line_and_no_traceback(
    request: pytest.FixtureRequest,
    server_fixture: str,
    fresh_subdir: Callable[[RunningServer], RunningServer],
    tmp_path: Path,
) -> None:
    server = fresh_subdir(request.getfixturevalue(server_fixture))
    src = tmp_path / "tree"
    put_files(None, src, {f"d{i}/e/f.txt": b"x" for i in range(60)})
    locked = server.root / "locked"
    locked.mkdir()
    os.chown(locked, 0, 0)  # the server's account cannot create anything in it
    dst = side_for(server_fixture, replace(server, root=locked,
                                           url_path=server.path("locked")), locked, "dst")
    result = run_copy_subprocess(Side(kind="local", url=str(src), root=src), dst,
                                 journal=tmp_path / "job.db")
    assert result.exit_code == 1, result.output[-3000:]
    assert "never retrieved" not in result.output
    assert "Traceback" not in result.output
    errors = [line for line in result.output.splitlines() if line.startswith("fsmove: error:")]
    assert len(errors) == 1, result.output[-3000:]


@pytest.mark.parametrize("server_fixture", ["sshd_server", "vsftpd_server"])
def test_a_source_that_fails_its_check_leaves_the_destination_untouched(
    request: pytest.FixtureRequest,
    server_fixture: str,
    fresh_subdir: Callable[[RunningServer], RunningServer],
    tmp_path: Path,
) -> None:
    """The destination's root is looked at while the source is checked, but nothing is
    written there (no root made, no probe file) until the source proved readable."""
    server = fresh_subdir(request.getfixturevalue(server_fixture))
    (server.root / "kept.txt").write_bytes(b"k")
    os.chown(server.root / "kept.txt", *server.owner)
    before = sorted(p.name for p in server.root.iterdir())
    dst_new = side_for(server_fixture, replace(server, root=server.root / "new",
                                               url_path=server.path("new")),
                       server.root / "new", "dst")
    dst_old = side_for(server_fixture, server, server.root, "dst")
    missing = tmp_path / "no-such-source"
    for n, dst in enumerate((dst_new, dst_old)):
        result = run_copy_subprocess(Side(kind="local", url=str(missing), root=missing), dst,
                                     journal=tmp_path / f"job{n}.db")
        assert result.exit_code == 1, result.output[-3000:]
        assert "the source folder" in result.output and "does not exist" in result.output
        assert sorted(p.name for p in server.root.iterdir()) == before


@pytest.mark.parametrize("where", ["state", "journal"])
def test_a_state_folder_that_cannot_be_written_is_said_in_one_line(
        tmp_path: Path, where: str) -> None:
    """A HOME or XDG_STATE_HOME that cannot be written (a container's read-only home,
    a path under a file) and a --journal under a file: before, the copy ended with
    "fsmove: error: No such file or directory: /proc/.local"; now one line names the
    folder and what to set (exit 5, configuration), and nothing is copied."""
    import subprocess
    import sys

    src = tmp_path / "src"
    src.mkdir()
    (src / "a.txt").write_bytes(b"a")
    blocker = tmp_path / "a-file"
    blocker.write_bytes(b"")
    env = {k: v for k, v in os.environ.items() if not k.startswith("FSMOVE_")}
    args = [sys.executable, "-m", "fsmove.cli", "copy", str(src), str(tmp_path / "dst")]
    if where == "state":
        env["XDG_STATE_HOME"] = str(blocker / "state")
        word = "XDG_STATE_HOME"
    else:
        env["XDG_STATE_HOME"] = str(tmp_path / "state")
        args += ["--journal", str(blocker / "job.sqlite")]
        word = "--journal"
    run = subprocess.run(args, env=env, capture_output=True, text=True, timeout=120,
                         check=False, stdin=subprocess.DEVNULL)
    assert run.returncode == 5, run.stderr
    lines = run.stderr.splitlines()
    assert len(lines) == 1 and lines[0].startswith("fsmove: error:"), run.stderr
    assert str(blocker) in lines[0] and word in lines[0]
    assert not (tmp_path / "dst" / "a.txt").exists()



def test_an_account_whose_home_does_not_exist_gets_the_setting_to_give(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """A system account (``nobody``: HOME=/nonexistent, and the same in its passwd
    entry): fsmove never makes that folder (run as root it did, session 35's leftover);
    the run stops before anything, exit 2, naming XDG_STATE_HOME, and with it the copy
    runs. (The account's passwd entry is this test's: the suite runs as root, whose home
    exists.)"""
    import pwd

    from typer.testing import CliRunner

    from fsmove.cli import app

    missing = tmp_path / "nonexistent"
    real = pwd.getpwuid(os.getuid())
    entry = pwd.struct_passwd((*real[:5], str(missing), *real[6:]))
    monkeypatch.setattr(pwd, "getpwuid", lambda _uid: entry)
    monkeypatch.delenv("XDG_STATE_HOME", raising=False)
    monkeypatch.setenv("HOME", str(missing))
    (tmp_path / "src").mkdir()
    (tmp_path / "src" / "a.txt").write_bytes(b"alpha")
    args = ["copy", str(tmp_path / "src"), str(tmp_path / "dst"), "-q"]
    refused = CliRunner().invoke(app, args)
    assert refused.exit_code == 2, refused.output
    assert refused.stderr.strip() == (
        f"fsmove: error: the home folder {missing} does not exist, and fsmove keeps its "
        "state (copy journals, locks) in ~/.local/state: set XDG_STATE_HOME to a folder "
        "for it"), refused.stderr
    assert not missing.exists() and not (tmp_path / "dst").exists()
    monkeypatch.setenv("XDG_STATE_HOME", str(tmp_path / "state"))
    done = CliRunner().invoke(app, args)
    assert done.exit_code == 0, done.output
    assert (tmp_path / "dst" / "a.txt").read_bytes() == b"alpha"
