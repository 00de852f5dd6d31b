"""A plain `pip install .` into a fresh venv (not an editable install) gives a working
`fsmove`, and installs `fsmove.transfers` / `fsmove.verify` without the top-level names
`transfers` and `verify` (PyPI has other distributions by those names)."""

from __future__ import annotations

import shutil
import subprocess
import sys
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]


def run(*argv: str | Path, cwd: Path | None = None) -> subprocess.CompletedProcess[str]:
    return subprocess.run([str(a) for a in argv], capture_output=True, text=True,
                          timeout=600, check=False, cwd=cwd)


def test_pip_install_into_fresh_venv(tmp_path: Path) -> None:
    # Install from a copy of the tracked tree, so build leftovers never touch the repo.
    source = tmp_path / "src"
    files = run("git", "ls-files", "-z", cwd=REPO).stdout.split("\0")
    for rel in filter(None, files):
        if (REPO / rel).is_file():
            (source / rel).parent.mkdir(parents=True, exist_ok=True)
            shutil.copy2(REPO / rel, source / rel)
    venv = tmp_path / "venv"
    made = run(sys.executable, "-m", "venv", venv)
    assert made.returncode == 0, made.stderr
    py = venv / "bin" / "python"
    installed = run(py, "-m", "pip", "install", "-q", str(source))
    assert installed.returncode == 0, installed.stderr[-3000:]

    version = run(venv / "bin" / "fsmove", "--version")
    assert version.returncode == 0 and version.stdout.startswith("fsmove "), version.stderr
    helptext = run(venv / "bin" / "fsmove", "--help")
    assert helptext.returncode == 0
    for command in ("copy", "verify", "status", "resume", "demo"):
        assert command in helptext.stdout

    elsewhere = tmp_path / "elsewhere"  # not the repo: its folders must not be importable
    elsewhere.mkdir()
    for name in ("transfers", "verify"):
        probe = run(py, "-c", f"import {name}", cwd=elsewhere)
        assert probe.returncode != 0 and "ModuleNotFoundError" in probe.stderr, name
    ok = run(py, "-c", "import fsmove.transfers.engine, fsmove.verify.verifier, fsmove.demo",
             cwd=elsewhere)
    assert ok.returncode == 0, ok.stderr
