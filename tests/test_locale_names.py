"""Local names under a locale whose charset is not UTF-8.

Session 33's adversarial pass: under ``LC_ALL=en_US.ISO-8859-1`` a local ``café/naïve.txt``
arrived at an SFTP destination as ``cafÃ©/naÃ¯ve.txt``, "Copy ok", and ``verify`` in the
same locale said "Everything matched" (both sides mis-decoded the same way); an SFTP
source's ``日本.txt`` made a local copy fail with an internal error. fsmove now runs in
Python's UTF-8 mode whatever the locale (``cli._in_utf8_mode``): names keep their bytes,
and a local name that is not UTF-8 is refused by name, as the tree rules refuse it on any
store.
"""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

from tests.copy_harness import Served

NAMES = ["café/naïve.txt", "日本.txt", "plain.txt"]


@pytest.fixture(scope="module")
def latin1_locale(tmp_path_factory: pytest.TempPathFactory) -> dict[str, str]:
    """An ISO-8859-1 locale made for the test (``localedef``, package ``locales``)."""
    folder = tmp_path_factory.mktemp("locales")
    made = subprocess.run(["localedef", "-i", "en_US", "-f", "ISO-8859-1",
                           str(folder / "en_US.ISO-8859-1")],
                          capture_output=True, text=True, check=False)
    assert made.returncode in (0, 1), made.stderr  # 1: warnings only
    env = {"LOCPATH": str(folder), "LC_ALL": "en_US.ISO-8859-1"}
    probe = subprocess.run([sys.executable, "-c", "import sys; print(sys.getfilesystemencoding())"],
                           env={**os.environ, **env}, capture_output=True, text=True,
                           check=True)
    assert probe.stdout.strip() == "iso8859-1", probe.stdout  # the case is real
    return env


def _fsmove(*args: str, env: dict[str, str]) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", "fsmove.cli", *args],
                          env={**os.environ, **env}, capture_output=True, text=True,
                          timeout=120, check=False)


@pytest.mark.interop
def test_names_keep_their_bytes_under_a_latin1_locale(
        latin1_locale: dict[str, str], served: Served, tmp_path: Path) -> None:
    server, dst = served("sshd_server", "dst")
    src = tmp_path / "src"
    for i, name in enumerate(NAMES):
        path = Path(os.fsencode(src).decode() + "/" + name)
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_bytes(f"file {i}\n".encode())
    not_utf8 = os.path.join(os.fsencode(src), b"lat\xe9.txt")
    with open(not_utf8, "wb") as fh:
        fh.write(b"a latin-1 name\n")
    env = {**latin1_locale, **dst.env}
    journal = str(tmp_path / "job.db")
    copied = _fsmove("copy", str(src), dst.url, *dst.options(), "--journal", journal, env=env)
    assert copied.returncode in (0, 3), copied.stdout + copied.stderr
    assert "not valid UTF-8" in copied.stdout + copied.stderr  # refused by name, said
    assert "Traceback" not in copied.stderr and "internal error" not in copied.stderr
    landed = sorted(os.fsdecode(p.relative_to(dst.root)) for p in dst.root.rglob("*")
                    if p.is_file())
    assert landed == sorted(NAMES), landed  # the bytes of each name, no mojibake
    os.unlink(not_utf8)
    checked = _fsmove("verify", str(src), dst.url, *dst.options(), "--no-journal", env=env)
    assert checked.returncode == 0, checked.stdout + checked.stderr
    back = tmp_path / "back"
    down = _fsmove("copy", dst.url, str(back), *dst.options(), "--journal",
                   str(tmp_path / "down.db"),
                   env={**latin1_locale, "FSMOVE_SRC_PASSWORD": server.password})
    assert down.returncode == 0, down.stdout + down.stderr
    assert sorted(os.fsdecode(p.relative_to(back)) for p in back.rglob("*")
                  if p.is_file()) == sorted(NAMES)


def test_a_local_root_whose_name_is_not_utf8_is_copied_and_verified(tmp_path: Path) -> None:
    """``fsmove copy $'src\\xe9' d``: an internal error (UnicodeEncodeError in the job's
    id) before session 33. The root is the folder the user named, whatever its bytes;
    only names *inside* a tree must be UTF-8 (they travel to other stores)."""
    root = os.path.join(os.fsencode(tmp_path), b"src\xe9")
    os.mkdir(root)
    with open(os.path.join(root, b"a.txt"), "wb") as fh:
        fh.write(b"alpha\n")
    dst = tmp_path / "dst"
    for command in ("copy", "verify"):
        done = subprocess.run([sys.executable.encode(), b"-m", b"fsmove.cli",
                               command.encode(), root, os.fsencode(dst)],
                              env={**os.environ, "XDG_STATE_HOME": str(tmp_path / "state")},
                              capture_output=True, text=True, timeout=120, check=False)
        assert done.returncode == 0, (command, done.stdout + done.stderr)
    assert (dst / "a.txt").read_bytes() == b"alpha\n"
