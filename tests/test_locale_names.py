"""Local names under a locale whose charset is not UTF-8.

Local names are read and written in the locale's charset, as every POSIX tool does, and
stored as UTF-8 on servers (SFTP, FTP with UTF8): under ``LC_ALL=en_US.ISO-8859-1`` a
legacy tree named in latin-1 (``caf\xe9``) reaches a server as ``café``. A remote name
that charset cannot hold (``日本.txt``) was an internal error in a copy to the local disk
(session 33's adversarial pass): it is now refused by name, the rest copied. Since
fsmove cannot know which charset the bytes meant (a UTF-8 tree under a latin-1 locale
arrives as ``cafÃ©``), a run with a local side says the charset it reads names in.
(Session 33 first tried Python's UTF-8 mode whatever the locale: latin-1 passwords
and remote paths typed in such a terminal then broke; reverted.)
"""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

from tests.copy_harness import Served


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


def _fsmove(*args: str, env: dict[str, str]) -> subprocess.CompletedProcess[bytes]:
    return subprocess.run([sys.executable, "-m", "fsmove.cli", *args],
                          env={**os.environ, **env}, capture_output=True, timeout=120,
                          check=False)


@pytest.mark.interop
def test_a_latin1_tree_reaches_a_server_in_utf8_and_back(
        latin1_locale: dict[str, str], served: Served, tmp_path: Path) -> None:
    server, dst = served("sshd_server", "dst")
    src = os.fsencode(tmp_path / "src")
    os.makedirs(os.path.join(src, b"caf\xe9"))
    for name in (b"caf\xe9/na\xefve.txt", b"plain.txt"):
        with open(os.path.join(src, name), "wb") as fh:
            fh.write(name)
    env = {**latin1_locale, **dst.env}
    journal = str(tmp_path / "job.db")
    copied = _fsmove("copy", os.fsdecode(src), dst.url, *dst.options(), "--journal",
                     journal, env=env)
    err = copied.stderr.decode("latin-1")
    assert copied.returncode == 0, err
    assert "this locale's charset is iso8859-1" in err  # said once, before anything
    assert err.count("fsmove: warning: this locale") == 1
    landed = sorted(p.relative_to(dst.root).as_posix() for p in dst.root.rglob("*")
                    if p.is_file())
    assert landed == ["café/naïve.txt", "plain.txt"]  # UTF-8 on the server
    checked = _fsmove("verify", os.fsdecode(src), dst.url, *dst.options(), "--no-journal",
                      env=env)
    assert checked.returncode == 0, checked.stderr.decode("latin-1")

    (dst.root / "日本.txt").write_bytes(b"ni hon")  # a name latin-1 cannot hold
    os.chown(dst.root / "日本.txt", *server.owner)
    back = tmp_path / "back"
    down = _fsmove("copy", dst.url, str(back), *dst.options(), "--journal",
                   str(tmp_path / "down.db"),
                   env={**latin1_locale, "FSMOVE_SRC_PASSWORD": server.password})
    out = (down.stdout + down.stderr).decode("latin-1")
    assert down.returncode == 3, out
    assert "cannot be written in this system's file name charset" in out
    assert "internal error" not in out and "Traceback" not in out
    assert sorted(os.listdir(os.fsencode(back))) == [b"caf\xe9", b"plain.txt"]


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


def test_a_password_that_is_not_text_in_this_locale_is_said(tmp_path: Path) -> None:
    """``FSMOVE_DST_PASSWORD=$'p\\xe4ss'`` (set in a latin-1 shell) read under a UTF-8
    locale: "internal error: UnicodeEncodeError ... surrogates not allowed" before
    session 33 (the SSH and FTP libraries encode passwords as UTF-8). Now one line
    naming the variable, exit 5, before any connection."""
    src = tmp_path / "src"
    src.mkdir()
    (src / "a.txt").write_text("a")
    env = {**os.environb, b"FSMOVE_DST_PASSWORD": b"p\xe4ss",
           b"XDG_STATE_HOME": os.fsencode(tmp_path / "state")}
    done = subprocess.run([sys.executable, "-m", "fsmove.cli", "copy", str(src),
                           "sftp://someone@127.0.0.1:9/x"], env=env, capture_output=True,
                          text=True, timeout=60, check=False)
    assert done.returncode == 5, done.stderr
    assert done.stderr.startswith("fsmove: error: FSMOVE_DST_PASSWORD holds bytes that "
                                  "are not"), done.stderr
    assert "internal error" not in done.stderr
