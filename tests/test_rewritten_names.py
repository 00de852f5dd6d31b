"""Names an FTP destination would store under another name (``transfers/ftp/names.py``).

pure-ftpd (Debian's 1.0.50, as started by tests/servers) stores a tab, another control
character or a trailing space as "_" and refuses a backslash. Before the check, a copy
of ``tab<TAB>name`` landed on ``tab_name`` (another file of the same tree, overwritten
after it was copied), each such file was retried five times (31 s), a folder ``inner ``
became ``inner_`` and the next run stopped at once ("cannot create it"). Now such names
are refused before any byte is sent, the rest is copied, nothing else is touched, and a
rerun says the same; a server that keeps those names (vsftpd) gets them all.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from collections.abc import Callable
from pathlib import Path

from fsmove.transfers.tree import (
    is_probe_leftover,
    probe_scratch_name,
    risky_name_features,
)
from tests.servers import RunningServer

TREE = {
    "tab\tname": b"the file with a tab",
    "tab_name": b"the file with an underscore",
    "trailing ": b"trailing space",
    "trailing_": b"trailing underscore",
    "back\\slash": b"backslash",
    "ctl\x01x": b"control character",
    "inner /f": b"in a folder whose name ends with a space",
    "plain/ok.txt": b"an ordinary file",
    "dot.": b"a trailing dot",
}
#: What pure-ftpd cannot hold as it is (the folder counts once: its file is not listed).
REWRITTEN = {"tab\tname", "trailing ", "back\\slash", "ctl\x01x", "inner "}


def make_tree(root: Path) -> None:
    for rel, data in TREE.items():
        path = root / rel
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_bytes(data)


def files_under(root: Path) -> dict[str, bytes]:
    return {p.relative_to(root).as_posix(): p.read_bytes()
            for p in sorted(root.rglob("*")) if p.is_file()}


def copy(src: Path, server: RunningServer, tmp_path: Path
         ) -> tuple[subprocess.CompletedProcess[str], dict[str, object]]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("FSMOVE_")}
    env.update(FSMOVE_DST_PASSWORD=server.password, XDG_STATE_HOME=str(tmp_path / "state"))
    run = subprocess.run(
        [sys.executable, "-m", "fsmove.cli", "copy", str(src), server.url(), "--json",
         "--journal", str(tmp_path / "job.sqlite"), "--retries", "1"],
        env=env, capture_output=True, text=True, timeout=300, check=False,
        stdin=subprocess.DEVNULL)
    events = [json.loads(line) for line in run.stdout.splitlines() if line.startswith("{")]
    summary = next(e for e in events if e.get("type") == "summary")
    return run, summary


def copy_the_tree(server: RunningServer, tmp_path: Path
                  ) -> tuple[Path, subprocess.CompletedProcess[str], dict[str, object]]:
    """``TREE`` made under ``tmp_path`` and copied to ``server`` (the source, the run,
    its summary)."""
    src = tmp_path / "src"
    make_tree(src)
    return (src, *copy(src, server, tmp_path))


def test_names_a_server_rewrites_are_refused_before_a_byte_is_sent(
        pureftpd_server: RunningServer,
        fresh_subdir: Callable[[RunningServer], RunningServer], tmp_path: Path) -> None:
    server = fresh_subdir(pureftpd_server)
    src, run, summary = copy_the_tree(server, tmp_path)
    assert run.returncode == 3, run.stderr
    refused = {path for path, _why in summary["refused"]}  # type: ignore[attr-defined]
    assert refused == REWRITTEN, summary
    assert "Traceback" not in run.stderr
    # Every other file is there with its own bytes: nothing landed on another's name,
    # no scratch or temporary file is left, no file under a rewritten name.
    expected = {rel: data for rel, data in TREE.items()
                if rel not in REWRITTEN and rel.split("/")[0] not in REWRITTEN}
    assert files_under(server.root) == expected
    # No time spent retrying what cannot change.
    assert summary["files_restarted"] == 0
    assert "retry" not in run.stderr

    again, summary2 = copy(src, server, tmp_path)
    assert again.returncode == 3, again.stderr
    assert summary2["files_copied"] == 0 and summary2["files_skipped"] == len(expected)
    assert {path for path, _why in summary2["refused"]} == REWRITTEN  # type: ignore[attr-defined]
    assert files_under(server.root) == expected


def test_a_server_that_keeps_such_names_gets_them_all(
        vsftpd_server: RunningServer,
        fresh_subdir: Callable[[RunningServer], RunningServer], tmp_path: Path) -> None:
    server = fresh_subdir(vsftpd_server)
    _src, run, summary = copy_the_tree(server, tmp_path)
    assert run.returncode == 0, run.stderr
    assert summary["refused"] == []
    assert files_under(server.root) == TREE


def test_risky_features_and_the_check_s_leftovers() -> None:
    assert risky_name_features("photo.jpg") == ()
    assert risky_name_features(" leading space is fine") == ()
    assert [label for _s, label in risky_name_features("a\tb\x01 ")] == [
        "the control character U+0001", "a tab", "a trailing space"]
    assert [label for _s, label in risky_name_features("x\\y.")] == [
        "a backslash", "a trailing dot"]
    # A killed check's scratch file is fsmove's at the root, whatever the server made
    # of its name; the same name in a folder, or with a bad check, is the user's.
    scratch = probe_scratch_name()
    for suffix in (".na\tb", ".na_b", ".na ", ".na\\b"):
        assert is_probe_leftover(scratch + suffix)
    assert not is_probe_leftover(f"sub/{scratch}.na_b")
    assert not is_probe_leftover(scratch + ".na/b")
    assert not is_probe_leftover(".fsmove-probe-0123456789ab-00000000.na_b")


def test_a_folder_name_the_server_will_not_make_fails_only_that_folder(
        proftpd_server: RunningServer,
        fresh_subdir: Callable[[RunningServer], RunningServer], tmp_path: Path) -> None:
    """proftpd refuses MKD of a name with "*" ("550 ...: Invalid directory name"; it
    stores such a file name). Before, that stopped the whole copy (exit 1, nothing
    else copied); now that folder (and an empty one) fails, the rest is copied."""
    server = fresh_subdir(proftpd_server)
    src = tmp_path / "src"
    (src / "star*dir").mkdir(parents=True)
    (src / "star*dir" / "in.txt").write_bytes(b"below a refused folder")
    (src / "empty*").mkdir()
    (src / "ok").mkdir()
    (src / "ok" / "fine.txt").write_bytes(b"fine")
    (src / "file*name.txt").write_bytes(b"a file may have one")
    run, summary = copy(src, server, tmp_path)
    assert run.returncode == 3, run.stderr
    failed = dict(summary["failed"])  # type: ignore[arg-type]
    assert set(failed) == {"star*dir/in.txt", "empty*"}
    assert all("will not make a folder of this name" in why for why in failed.values())
    assert files_under(server.root) == {"ok/fine.txt": b"fine",
                                         "file*name.txt": b"a file may have one"}
