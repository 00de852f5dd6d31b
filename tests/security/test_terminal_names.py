"""Names from a tree are shown, never obeyed: a file name can hold an escape sequence
(ESC ``[2J`` clears the screen, OSC sets a terminal's title), a bell, or a bidi override
that shows ``gpj.exe`` reversed. Every line meant for people shows them escaped
(``fsmove/printable.py``); the JSON events keep the exact names.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest


def _env(tmp_path: Path) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("FSMOVE_")}
    env["XDG_STATE_HOME"] = str(tmp_path / "state")
    return env


def _fsmove(tmp_path: Path, *args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", "fsmove.cli", *args], env=_env(tmp_path),
                          capture_output=True, text=True, timeout=120, check=False,
                          stdin=subprocess.DEVNULL)


@pytest.mark.parametrize("name", ["a\x1b[2Jb", "bell\x07", "rlo\u202egpj.exe"])
def test_names_are_shown_escaped_never_obeyed(tmp_path: Path, name: str) -> None:
    """A name holding an escape sequence (or a bidi override) is printed escaped on
    stderr and in the log file, and kept exactly in the JSON events."""
    src, dst = tmp_path / "src", tmp_path / "dst"
    src.mkdir()
    (src / name).write_bytes(b"x")
    (src / (name + "-link")).symlink_to("nowhere")  # a refusal line names it
    log = tmp_path / "run.log"
    run = _fsmove(tmp_path, "copy", str(src), str(dst), "-v", "--log-file", str(log))
    assert run.returncode == 0, run.stderr
    assert (dst / name).read_bytes() == b"x"
    shown = name.encode("unicode_escape").decode("ascii")
    for text in (run.stderr, log.read_text(encoding="utf-8")):
        assert shown in text
        assert not any(ch in text for ch in "\x1b\x07\u202e")
    as_json = _fsmove(tmp_path, "copy", str(src), str(tmp_path / "dst2"), "--json")
    events = [json.loads(line) for line in as_json.stdout.splitlines()]
    refused = next(e for e in events if e.get("type") == "summary")["refused"]
    assert [path for path, _why in refused] == [name + "-link"]


def test_an_error_line_shows_a_path_escaped(tmp_path: Path) -> None:
    missing = tmp_path / "no\x1b]0;title\x07such"
    run = _fsmove(tmp_path, "copy", str(missing), str(tmp_path / "dst"))
    assert run.returncode == 1, run.stderr
    lines = run.stderr.splitlines()
    assert len(lines) == 1 and lines[0].startswith("fsmove: error:"), run.stderr
    assert "no\\x1b]0;title\\x07such" in lines[0]
    assert "\x1b" not in run.stderr and "\x07" not in run.stderr
