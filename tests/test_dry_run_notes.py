"""A dry run cannot ask the destination what only a write answers (whether it holds two
names as one, whether it keeps a name as it is: ``transfers/copy/name_gate.py``), so
it says which names the real run will ask about instead of promising their copy.

Before: ``fsmove copy SRC DST --dry-run`` into a destination that ignores case said
"would copy: 2 files" for ``Logo.png`` and ``logo.png``; the real run then copied one
and refused the other (exit 3). Real servers: aioftp's serving its folder as NTFS does
(``tests/servers/aioftpd.py``), vsftpd for a name some servers rewrite.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

from tests.servers import RunningServer
from tests.servers.aioftpd import start_aioftp


@pytest.fixture
def folding_server(tmp_path: Path) -> Iterator[RunningServer]:
    with start_aioftp(tmp_path / "folding", ignore=("case",)) as server:
        yield server


def _copy(src: Path, dst: str, tmp_path: Path, *more: str, password: str = ""
          ) -> tuple[subprocess.CompletedProcess[str], dict[str, object]]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("FSMOVE_")}
    env.update(FSMOVE_DST_PASSWORD=password, XDG_STATE_HOME=str(tmp_path / "state"))
    run = subprocess.run(
        [sys.executable, "-m", "fsmove.cli", "copy", str(src), dst, "--retries", "1",
         *more], env=env, capture_output=True, text=True, timeout=300, check=False,
        stdin=subprocess.DEVNULL)
    events = [json.loads(line) for line in run.stdout.splitlines() if line.startswith("{")]
    summary = next((e for e in events if e.get("type") == "summary"), {})
    return run, summary


def _twins(src: Path) -> None:
    src.mkdir()
    (src / "Logo.png").write_bytes(b"upper")
    (src / "logo.png").write_bytes(b"lower")
    (src / "plain.txt").write_bytes(b"p")


def test_a_dry_run_names_the_twins_the_real_run_will_ask_about(
        folding_server: RunningServer, tmp_path: Path) -> None:
    src = tmp_path / "src"
    _twins(src)
    (folding_server.root / "REPORT.TXT").write_bytes(b"the destination's own")
    (src / "report.txt").write_bytes(b"the source's")
    url = folding_server.url()

    dry, summary = _copy(src, url, tmp_path, "--dry-run", "--delete", "--json",
                         password=folding_server.password)
    assert dry.returncode == 0, dry.stderr
    notes = dict(summary["notes"])  # type: ignore[arg-type]
    # Which of the two source twins is second depends on the listing's order.
    [second] = [p for p in notes if p in ("Logo.png", "logo.png")]
    first = ({"Logo.png", "logo.png"} - {second}).pop()
    assert f"differs from {first!r} in the same folder by case alone" in notes[second]
    assert f"there copies only {first!r}" in notes[second]
    assert "never deleted" in notes["REPORT.TXT"]
    assert set(notes) == {second, "REPORT.TXT"}
    # Nothing written: not even the question's scratch file.
    assert sorted(p.name for p in folding_server.root.iterdir()) == ["REPORT.TXT"]

    told, _ = _copy(src, url, tmp_path, "--dry-run", "--delete",
                    password=folding_server.password)
    assert told.returncode == 0, told.stderr
    assert ("not asked:    2 names the real run asks the destination about first (a dry "
            "run writes nothing)") in told.stderr
    assert f"    {second}: it differs from {first!r}" in told.stderr

    # The real run does what the notes said: the second twin refused, the destination's
    # REPORT.TXT taken as the source's report.txt (overwritten, not deleted).
    real, summary = _copy(src, url, tmp_path, "--delete", "--json",
                          password=folding_server.password)
    assert real.returncode == 3, real.stderr
    assert [p for p, _why in summary["refused"]] == [second]  # type: ignore[union-attr]
    assert summary["notes"] == []
    [report] = [p for p in folding_server.root.iterdir() if p.name.lower() == "report.txt"]
    assert report.read_bytes() == b"the source's"


def test_a_plain_dry_run_has_no_notes(tmp_path: Path) -> None:
    src = tmp_path / "src"
    src.mkdir()
    (src / "a.txt").write_bytes(b"a")
    run, summary = _copy(src, str(tmp_path / "dst"), tmp_path, "--dry-run", "--json")
    assert run.returncode == 0, run.stderr
    assert summary["notes"] == []
    told, _ = _copy(src, str(tmp_path / "dst"), tmp_path, "--dry-run")
    assert "not asked" not in told.stderr
    assert not (tmp_path / "dst").exists()


def test_a_dry_run_names_a_name_an_ftp_server_may_rewrite(
        vsftpd_server: RunningServer, fresh_subdir: Callable[[RunningServer], RunningServer],
        tmp_path: Path) -> None:
    """A trailing dot: some FTP servers (on Windows) drop it. The real run asks this
    server with a scratch file; a dry run cannot, and says so."""
    dst = fresh_subdir(vsftpd_server)
    src = tmp_path / "src"
    src.mkdir()
    (src / "draft.").write_bytes(b"d")
    (src / "ok.txt").write_bytes(b"o")
    run, summary = _copy(src, dst.url(), tmp_path, "--dry-run", "--json",
                         password=dst.password)
    assert run.returncode == 0, run.stderr
    notes = dict(summary["notes"])  # type: ignore[arg-type]
    assert list(notes) == ["draft."]
    assert "its name has a trailing dot" in notes["draft."]
    assert summary["would_copy"] == 2
    assert list(dst.root.iterdir()) == []
    real, summary = _copy(src, dst.url(), tmp_path, "--json", password=dst.password)
    assert real.returncode == 0, real.stderr  # vsftpd keeps it: nothing refused
    assert (dst.root / "draft.").read_bytes() == b"d"
