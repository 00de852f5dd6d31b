"""Names as people see them: shown, never obeyed, never guessed (session 33's pass)."""

from __future__ import annotations

import json
import os
from pathlib import Path

import pytest
from typer.testing import CliRunner

from fsmove.cli import app
from fsmove.printable import printable
from fsmove.transfers.state_dir import state_dir


def test_a_byte_of_a_name_that_is_not_utf8_is_shown_as_that_byte() -> None:
    """``lat\\xe9`` (latin-1), not ``lat\\udce9``, a code point that is not there."""
    assert printable(b"lat\xe9".decode("utf-8", "surrogateescape")) == "lat\\xe9"
    assert printable("a\u202egpj.exe") == "a\\u202egpj.exe"


def test_the_html_report_shows_a_right_to_left_override_escaped(tmp_path: Path) -> None:
    """A name holding U+202E rendered reversed in the HTML report ("gpj.exe" read as
    "exe.jpg") while the text output escaped it; the JSON report keeps it exactly."""
    src, dst = tmp_path / "src", tmp_path / "dst"
    src.mkdir()
    dst.mkdir()
    name = "invoice\u202egpj.exe"
    (src / name).write_bytes(b"MZ")
    html, js = tmp_path / "r.html", tmp_path / "r.json"
    result = CliRunner().invoke(app, ["verify", str(src), str(dst), "--no-journal",
                                      "--report", str(html), "--report", str(js)])
    assert result.exit_code == 4, result.output
    page = html.read_text(encoding="utf-8")
    assert "\u202e" not in page
    assert "invoice\\\\u202egpj.exe" in page  # the escape, as JSON inside the page
    assert name in json.dumps(json.loads(js.read_text(encoding="utf-8")), ensure_ascii=False)


def test_a_relative_xdg_state_home_is_ignored(monkeypatch: pytest.MonkeyPatch,
                                              tmp_path: Path) -> None:
    """The XDG spec: a relative ``XDG_STATE_HOME`` is invalid and ignored. It was taken
    from the current folder: another set of jobs for every folder a run started in."""
    (tmp_path / "home").mkdir()  # a home that exists (a missing one is never made)
    monkeypatch.setenv("HOME", str(tmp_path / "home"))
    monkeypatch.chdir(tmp_path)
    monkeypatch.setenv("XDG_STATE_HOME", "relative/state")
    assert state_dir("jobs") == tmp_path / "home" / ".local" / "state" / "fsmove" / "jobs"


@pytest.mark.parametrize("home", ["", "relative/home"])
def test_an_empty_or_relative_home_is_the_accounts_home(monkeypatch: pytest.MonkeyPatch,
                                                        tmp_path: Path, home: str) -> None:
    """``HOME=`` put the state in ``./.local`` (another one in every folder a run
    started in): the account's home folder is taken instead, as for an unset HOME."""
    import pwd

    monkeypatch.setenv("HOME", home)
    monkeypatch.delenv("XDG_STATE_HOME", raising=False)
    monkeypatch.chdir(tmp_path)
    account_home = pwd.getpwuid(os.getuid()).pw_dir
    assert state_dir("jobs") == Path(account_home) / ".local" / "state" / "fsmove" / "jobs"
